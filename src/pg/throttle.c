/*-------------------------------------------------------------------------
 *
 * throttle.c
 *		Hold a backup to aibackup.max_rate megabytes of table data (the CSV
 *		COPY writes, before compression) a second.
 *
 * The backup counts the bytes it has read since a window started; when
 * they are ahead of rate x elapsed time it sleeps on its latch, in naps of
 * at most 100 ms so that cancel, shutdown and a new rate are seen at once.
 * A change of the rate starts a new window: neither a burst to make up for
 * the slower past nor a penalty for the faster one.  The clock is read once
 * per 64 kB counted.
 *
 * A new rate reaches a background worker at its next nap (it processes
 * SIGHUP here, as it has no idle loop of its own), and a backend through
 * SET; a backend sees a reload only at its next command, as any backend.
 *
 * IDENTIFICATION
 *	  src/pg/throttle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "pg/settings.h"
#include "pg/throttle.h"

#define AB_THROTTLE_CHECK	(64 * 1024)
#define AB_THROTTLE_NAP_MS	100

void
ab_throttle_init(AbThrottle *t)
{
	t->rate_mb = ab_max_rate_mb;
	t->start = GetCurrentTimestamp();
	t->bytes = 0;
	t->unchecked = 0;
}

/* a worker's reload: the settings file may have a new rate */
static void
throttle_reload(void)
{
	if (MyBackendType == B_BG_WORKER && ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

void
ab_throttle(AbThrottle *t, uint64_t len)
{
	t->bytes += len;
	t->unchecked += len;
	if (t->unchecked < AB_THROTTLE_CHECK)
		return;
	t->unchecked = 0;

	for (;;)
	{
		TimestampTz now;
		double		ahead_ms;

		throttle_reload();
		if (ab_max_rate_mb != t->rate_mb)
		{
			ab_throttle_init(t);
			return;
		}
		if (t->rate_mb == 0)
			return;

		/* how long the bytes counted should have taken, less the time spent */
		now = GetCurrentTimestamp();
		ahead_ms = (double) t->bytes * 1000.0 / ((double) t->rate_mb * 1000000.0) -
			(double) (now - t->start) / 1000.0;
		if (ahead_ms < 1.0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min((long) ahead_ms + 1, AB_THROTTLE_NAP_MS),
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
