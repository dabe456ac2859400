/*
 * unchanged.h
 *		The proof that a table holds, under a backup's snapshot, exactly the
 *		rows an earlier backup's snapshot saw, read from its heap pages
 *		without reading a value; and the facts a later backup needs for it.
 */
#ifndef AIBACKUP_UNCHANGED_H
#define AIBACKUP_UNCHANGED_H

#include "access/transam.h"
#include "access/xlogdefs.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/* an earlier backup, as the proof needs it */
typedef struct AbReuseBase
{
	XLogRecPtr	lsn;			/* WAL insert position read before its
								 * snapshot was taken */
	FullTransactionId xmin;		/* its snapshot's xmin */
} AbReuseBase;

/* snap's xmin as a 64-bit transaction id */
extern FullTransactionId ab_snapshot_xmin_full(Snapshot snap);

/*
 * Hex SHA-256 of everything the CSV of rel depends on besides its rows:
 * its columns (dropped ones too), their types down to the leaves (domains,
 * arrays, composites, ranges, enum labels), user-defined output functions,
 * the settings COPY leaves to the session, the server's major version and
 * the relation's own catalog row.  NULL when a column's type names other
 * objects (reg*, aclitem) or types nest deeper than the hash follows: then
 * the table is always read.
 */
extern char *ab_definition_hash(Relation rel);

/*
 * Does rel, under snap, hold exactly the rows base's snapshot saw, given
 * that base counted rows of them?  False with the reason in *why when that
 * cannot be proven (then the table must be read).
 */
extern bool ab_heap_unchanged(Relation rel, const AbReuseBase *base,
							  int64 rows, Snapshot snap, const char **why);

/*
 * Does this data directory record backup_id as the database's last backup
 * (and the database as the same one)?  See unchanged.c's history guard.
 */
extern bool ab_history_matches(const char *backup_id);

/* record backup_id as the database's last backup (a WARNING if it cannot) */
extern void ab_history_mark(const char *backup_id);

#endif							/* AIBACKUP_UNCHANGED_H */
