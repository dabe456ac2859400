/*
 * throttle.h
 *		Hold a backup to aibackup.max_rate megabytes of table data a second.
 */
#ifndef AIBACKUP_THROTTLE_H
#define AIBACKUP_THROTTLE_H

#include <stdint.h>

typedef struct AbThrottle
{
	int			rate_mb;		/* the rate the window was started with */
	int64_t		start;			/* TimestampTz of the window's start */
	uint64_t	bytes;			/* bytes counted since then */
	uint64_t	unchecked;		/* bytes since the last look at the clock */
} AbThrottle;

/* start counting (a backup's first table) */
extern void ab_throttle_init(AbThrottle *t);

/* count len more bytes; sleeps while the backup is ahead of the rate */
extern void ab_throttle(AbThrottle *t, uint64_t len);

#endif							/* AIBACKUP_THROTTLE_H */
