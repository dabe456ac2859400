/*
 * restore.h
 *		Restore one table from a backup into the current database.
 */
#ifndef AIBACKUP_RESTORE_H
#define AIBACKUP_RESTORE_H

#include "core/manifest.h"
#include "core/s3.h"
#include "utils/relcache.h"

/* what a restore that recreates the table brings back besides it */
typedef struct AbRestoreOptions
{
	bool		foreign_keys;	/* its foreign keys (default off) */
	bool		grants;			/* its privileges (default off) */
	bool		owner;			/* the role that owned it owns it again, and
								 * the whole definition runs as that role
								 * (default on) */
} AbRestoreOptions;

/*
 * source: the table's name as it was in the backup (qualified or not,
 * quoted or not); backup_id NULL = newest backup that holds it; target
 * NULL = the source's name.  Returns the rows loaded.
 */
extern int64 ab_restore_table(const char *source, const char *backup_id,
							  const char *target,
							  const AbRestoreOptions *opts);

/*
 * The definition of a table as its backup recorded it: a SQL script (the
 * same text as the backup's <schema>.<table>.sql).  Same lookup and read
 * rights as a restore.
 */
extern char *ab_restore_table_ddl(const char *source, const char *backup_id);

/*
 * The manifest of backup backup_id of database dbname; ERROR when it does
 * not exist or cannot be read.
 */
extern Manifest *ab_restore_read_backup(S3Client *c, const char *dbname,
										const char *backup_id);

/*
 * The entry of table source (as a restore names it, checked before any S3
 * request) in backup_id of this database, or in the newest backup that holds it (backup_id NULL); its
 * manifest into *m.  ERROR when there is none, or it failed there.
 */
extern const MfTable *ab_restore_find_table(const char *source,
											const char *backup_id,
											Manifest **m);

/*
 * Load the object of t, an entry of m, checked whole and converted from the
 * backup's encoding, into rel (locked for COPY FROM, and the caller's to
 * fill: no privilege or owner change here), through client; the rows
 * loaded.
 */
extern uint64 ab_restore_load_object(S3Client *client, const Manifest *m,
									 const MfTable *t, Relation rel);

/*
 * ERROR unless the caller may read the backed-up rows of t, of backup m
 * ("permission denied to <action> table ...").
 */
extern void ab_restore_check_read(const Manifest *m, const MfTable *t,
								  const char *action);

#endif							/* AIBACKUP_RESTORE_H */
