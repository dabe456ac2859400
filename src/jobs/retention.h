/*
 * retention.h
 *		Deleting backups past aibackup.retention_days.
 */
#ifndef AIBACKUP_RETENTION_H
#define AIBACKUP_RETENTION_H

/*
 * Delete dbname's backups older than aibackup.retention_days (no-op when
 * 0), never the newest successful one.  Failures are logged as WARNINGs,
 * not raised: the backup that ran before is good either way.
 */
extern void ab_retention_apply(const char *dbname);

#endif							/* AIBACKUP_RETENTION_H */
