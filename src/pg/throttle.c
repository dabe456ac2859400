/*-------------------------------------------------------------------------
 *
 * throttle.c
 *		Hold a backup to aibackup.max_rate megabytes of table data (the CSV
 *		COPY writes, before compression) a second.
 *
 * The backup counts the bytes it has read since a window started; when
 * they are ahead of rate x elapsed time it sleeps on its latch, in naps of
 * at most 100 ms so that cancel and shutdown are seen at once.  Time spent
 * not reading (a slow upload, a table copied inside S3) earns at most one
 * second of credit: the count is raised to one second behind, so a limit
 * stays a limit and never becomes an average.  The clock is monotonic (a
 * stepped wall clock neither stalls nor bursts the backup) and read once
 * per 64 kB counted.  A change of the rate starts a new window.
 *
 * The rate: a backend's own (a superuser may SET it), and in a scheduled
 * backup's worker the one the launcher last read from the settings file
 * (state.c), so a reload reaches a running worker without the worker
 * reloading the settings a run depends on (its prefix) in mid-run.  A
 * table worker takes its share of its backup's rate from the backup
 * (ab_throttle_set_source).
 *
 * IDENTIFICATION
 *	  src/pg/throttle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#include "pg/settings.h"
#include "pg/state.h"
#include "pg/throttle.h"

#define AB_THROTTLE_CHECK	(64 * 1024)
#define AB_THROTTLE_NAP_MS	100
#define AB_THROTTLE_CREDIT	1.0 /* seconds of rate saved up, at most */

static double (*rate_source) (void) = NULL;

int
ab_throttle_rate(void)
{
	return MyBackendType == B_BG_WORKER ? ab_state_rate() : ab_max_rate_mb;
}

void
ab_throttle_set_source(double (*source) (void))
{
	rate_source = source;
}

static double
current_rate(void)
{
	return rate_source ? rate_source() : (double) ab_throttle_rate();
}

void
ab_throttle_init(AbThrottle *t)
{
	t->rate_mb = current_rate();
	INSTR_TIME_SET_CURRENT(t->start);
	t->bytes = 0;
	t->unchecked = 0;
}

void
ab_throttle(AbThrottle *t, uint64 len)
{
	t->bytes += len;
	t->unchecked += len;
	if (t->unchecked < AB_THROTTLE_CHECK)
		return;
	t->unchecked = 0;

	for (;;)
	{
		instr_time	now;
		double		rate;
		double		ahead;		/* seconds the bytes are ahead of the rate */

		if (current_rate() != t->rate_mb)
		{
			ab_throttle_init(t);
			return;
		}
		if (t->rate_mb <= 0)
			return;

		rate = t->rate_mb * 1000000.0;
		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, t->start);
		ahead = (double) t->bytes / rate - INSTR_TIME_GET_DOUBLE(now);
		if (ahead < -AB_THROTTLE_CREDIT)
		{
			/* behind by more than the credit: count as if one second behind */
			t->bytes = (uint64) ((INSTR_TIME_GET_DOUBLE(now) - AB_THROTTLE_CREDIT) * rate);
			return;
		}
		if (ahead < 0.001)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min((long) (ahead * 1000.0) + 1, AB_THROTTLE_NAP_MS),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
