/*
 * backup_table.h
 *		One table of a backup, in the backup's process or a table worker.
 */
#ifndef AIBACKUP_BACKUP_TABLE_H
#define AIBACKUP_BACKUP_TABLE_H

#include "utils/rel.h"
#include "utils/snapshot.h"

#include "core/manifest.h"
#include "core/s3.h"
#include "pg/catalog.h"
#include "pg/throttle.h"

/* what the tables of one backup copied by one process share */
typedef struct AbTableCopy
{
	S3Client   *client;
	const Manifest *base;		/* the backup unchanged tables are copied
								 * from, or NULL */
	const char *backup_id;
	Snapshot	snap;			/* the backup's */
	AbThrottle *throttle;
	MemoryContext tablecxt;		/* reset after each table */
	int			ntables;		/* of the backup, for progress */
	int			done;			/* tables this process has finished */
	int64		done_raw;		/* their bytes, for progress */
	int64		done_compressed;
} AbTableCopy;

/*
 * Back up table t (ACCESS SHARE locked by this process or its lock group)
 * into its manifest entry mt, in a subtransaction, under cx->snap.  true
 * when it made it; false when it failed on its own: mt's status is then
 * "failed" and its error says why.  ERROR when the backup as a whole must
 * fail (S3 itself, or what ab_error_ends_backup() names); no multipart
 * upload is left open then.
 */
extern bool ab_backup_table(AbTableCopy *cx, AbTable *t, MfTable *mt);

/*
 * An error that ends the whole backup, not just the table or the part
 * where it came: a cancel, a shutdown, running out of memory, a conflict
 * with recovery on a standby (the snapshot is lost for every table).
 */
extern bool ab_error_ends_backup(const ErrorData *edata);

/* the columns of rel, as COPY writes them, into mt */
extern void ab_record_columns(Relation rel, MfTable *mt);

/* a name for the manifest (it must have a UTF-8 spelling); malloc'd */
extern char *ab_mf_name(const char *s);

/* an owner's name for the manifest, or NULL (with a WARNING); malloc'd */
extern char *ab_mf_owner(const char *s);

#endif							/* AIBACKUP_BACKUP_TABLE_H */
