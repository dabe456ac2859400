/*
 * throttle.h
 *		Hold a backup to aibackup.max_rate megabytes of table data a second.
 */
#ifndef AIBACKUP_THROTTLE_H
#define AIBACKUP_THROTTLE_H

#include "portability/instr_time.h"

typedef struct AbThrottle
{
	double		rate_mb;		/* the rate the window was started with */
	instr_time	start;			/* the window's start (a monotonic clock) */
	uint64		bytes;			/* bytes counted since then */
	uint64		unchecked;		/* bytes since the last look at the clock */
} AbThrottle;

/* start counting (a backup's first table) */
extern void ab_throttle_init(AbThrottle *t);

/* count len more bytes; sleeps while the backup is ahead of the rate */
extern void ab_throttle(AbThrottle *t, uint64 len);

/* this process's aibackup.max_rate (see throttle.c for which one) */
extern int	ab_throttle_rate(void);

/* take the rate (MB/s, 0 = none) from source instead: a table worker's */
extern void ab_throttle_set_source(double (*source) (void));

#endif							/* AIBACKUP_THROTTLE_H */
