/*
 * s3_session.h
 *		PostgreSQL side of the S3 client: settings -> S3Config, client
 *		lifetime tied to a memory context, S3Error -> ereport.
 */
#ifndef AIBACKUP_S3_SESSION_H
#define AIBACKUP_S3_SESSION_H

#include "core/s3.h"
#include "datatype/timestamp.h"
#include "pg/compat.h"

/*
 * The S3 configuration from the aibackup.* settings.  Strings point into
 * the settings: use at once.  ERROR if unusable.
 */
extern void ab_s3_config(S3Config *cfg);

/*
 * A client for the current settings, freed automatically when
 * CurrentMemoryContext is reset or deleted (also on error).
 */
extern S3Client *ab_s3_client(void);

/* ereport(ERROR) for a failed S3 call, processing a pending interrupt first */
pg_noreturn extern void ab_s3_report(const S3Error *err);

/*
 * A presigned URL's lifetime in seconds; ERROR unless it is between 1
 * second and 7 days (S3's limit).
 */
extern long ab_presign_seconds(const Interval *expires);

/* a presigned GET URL for key, signed at signed_at (palloc'd) */
extern char *ab_presign_key(const char *key, long seconds, TimestampTz signed_at);

/* "<prefix>/<part1>/<part2>..." without doubled or leading slashes */
extern char *ab_s3_key(const char *first,...);

#endif							/* AIBACKUP_S3_SESSION_H */
