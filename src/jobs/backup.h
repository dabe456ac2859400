/*
 * backup.h
 *		One backup of the current database.  The same code serves
 *		aibackup_backup_now() and the scheduler's worker.
 */
#ifndef AIBACKUP_BACKUP_H
#define AIBACKUP_BACKUP_H

#include "nodes/pg_list.h"

typedef struct AbBackupResult
{
	char	   *backup_id;
	char	   *status;			/* "ok" | "partial" */
	int			tables_ok;
	int			tables_failed;
	int			tables_copied;	/* of tables_ok: copied unchanged from
								 * copied_from */
	char	   *copied_from;
	int64		rows;
	int64		raw_bytes;
	int64		compressed_bytes;
	char	   *first_error;	/* of a partial backup, or NULL */
} AbBackupResult;

/*
 * Back up the current database (only relids when not NIL) inside the
 * current transaction; with full, every table is read (else those proven
 * unchanged since the previous backup are copied from it: incremental.h).  ERROR when the backup as a whole fails (S3,
 * locks, another backup running): then no manifest is written and no
 * multipart upload is left open.  A table that fails on its own makes the
 * backup "partial" and is named in the manifest.  Either way the outcome
 * is counted in shared memory (pg_stat_aibackup) when it is there.
 */
extern AbBackupResult *ab_backup_run(List *relids, bool scheduled,
									 bool full);

/*
 * Make this cluster the owner of the current database's backup folder
 * (its index names our system identifier), so that its backups go on
 * where another cluster's stopped: after a restore into a new cluster.
 * The other cluster's backups then refuse to run into it.
 */
extern void ab_backup_take_over_folder(void);

/*
 * The lock that keeps two backups of this database apart, until the end of
 * the transaction; ERROR naming the holder when another has it.  Retention
 * takes it too.
 */
extern void ab_backup_lock_database(const char *dbname);

#endif							/* AIBACKUP_BACKUP_H */
