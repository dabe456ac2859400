/*
 * restore_int.h
 *		What restore.c shares with restore_partitioned.c: the steps of a
 *		table's restore, each one checked as for a table of its own.
 */
#ifndef AIBACKUP_RESTORE_INT_H
#define AIBACKUP_RESTORE_INT_H

#include "core/manifest.h"
#include "core/s3.h"
#include "jobs/recreate.h"
#include "jobs/restore.h"
#include "nodes/primnodes.h"
#include "pg/compat.h"
#include "utils/relcache.h"

/*
 * A table's object as a stream of its CSV: checked to be there and of the
 * recorded size when opened; read returns 0 only at the end, once the
 * whole object matched its SHA-256 (a mismatch is an ERROR).  encoding:
 * what the bytes are in (PG_* id).  Free it with close, also on error.
 */
typedef struct RestoreStream RestoreStream;

extern RestoreStream *ab_restore_stream_open(S3Client *client,
											 const Manifest *m,
											 const MfTable *t);
extern size_t ab_restore_stream_read(RestoreStream *rs, char *buf,
									 size_t maxlen);
extern int	ab_restore_stream_encoding(const RestoreStream *rs);

/*
 * After a failure mid-stream: why the object is corrupt (read to its end),
 * or NULL when it is intact or already reported; never raises.  corrupt
 * raises the error that says so.
 */
extern const char *ab_restore_stream_verify_rest(RestoreStream *rs);
pg_noreturn extern void ab_restore_stream_corrupt(RestoreStream *rs,
												  const char *why);
extern void ab_restore_stream_close(RestoreStream *rs);

/*
 * Is role an ordinary one: no superuser, CREATEROLE, BYPASSRLS,
 * replication or membership of a predefined role with powers?
 */
extern bool ab_restore_ordinary_role(Oid role);

/*
 * The owner of the first domain within typid (its base types, elements,
 * range subtypes, composite attributes) that a role other than a
 * superuser owns: its CHECKs are that role's code.  InvalidOid if none.
 */
extern Oid	ab_restore_type_code_owner(Oid typid, int depth);

/* a table entry of a backup (status "ok"), or a partitioned table's */
extern bool ab_restore_entry_ok(const MfTable *t);

/* t with its names truncated as this database stores them */
extern const MfTable *ab_restore_truncated_entry(const Manifest *m,
												 const MfTable *t);

/*
 * rv, if a table of that name exists, locked ACCESS EXCLUSIVE: it must be
 * of relkind (a table, a partitioned table), and the caller may INSERT
 * into it and TRUNCATE it (checked before the lock is queued).  InvalidOid
 * when none exists.
 */
extern Oid	ab_restore_lock_target(RangeVar *rv, char relkind);

/* no foreign key from outside relids may reference any of them */
extern void ab_restore_check_not_referenced(List *relids, const char *qualname);

/* the checks on a locked target: row security, and its columns */
extern void ab_restore_check_rls(Oid relid, const char *qualname);
extern void ab_restore_check_columns(Oid relid, const MfTable *t,
									 const char *qualname);

/* what TRUNCATE refuses of a locked rel, before it is emptied */
extern void ab_restore_check_truncate(Relation rel);

/*
 * Create table t of m as rv (missing), owned as the options say, its whole
 * definition run as its owner when that is an ordinary role (r filled for
 * ab_restore_fill); *qualname set.  parent: the plan of the recreated
 * parent it will be attached to, or NULL.  Returns its OID.
 */
extern Oid	ab_restore_create_table(const Manifest *m, const MfTable *t,
									RangeVar *rv, char **qualname,
									AbRecreate *r,
									const AbRestoreOptions *opts,
									const AbRecreate *parent);

/*
 * Load t's object into the new table relid as its owner, then complete its
 * definition (r, from ab_restore_create_table); the rows loaded.
 */
extern uint64 ab_restore_fill(S3Client *client, const Manifest *m,
							  const MfTable *t, Oid relid, AbRecreate *r);

/* ERROR unless t's object is in a format this version reads */
extern void ab_restore_check_storage(const Manifest *m, const MfTable *t);

/*
 * fn(arg) as role, in a security-restricted operation with search_path
 * pinned, settings undone after.
 */
extern void ab_restore_as_owner(Oid role, void (*fn) (void *), void *arg);

/* restore.c's entry for a partitioned table (restore_partitioned.c) */
extern int64 ab_restore_partitioned(S3Client *client, const Manifest *m,
									const MfTable *p, const char *target,
									const AbRestoreOptions *opts);

#endif							/* AIBACKUP_RESTORE_INT_H */
