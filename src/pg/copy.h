/*-------------------------------------------------------------------------
 *
 * copy.h
 *		COPY a table TO a C callback and FROM a C callback, as CSV.
 *
 * This is the only place in aibackup that talks to core's COPY machinery
 * (commands/copy.h).  The backup side turns one table into a stream of CSV
 * rows (with a header row) handed to a sink; the restore side loads such a
 * stream, read from a source, into a table.  The backup side writes the
 * CSV in the database encoding (so the file's encoding is the source
 * database's server_encoding, which the manifest records); the restore side
 * is told the file's encoding and lets COPY convert it.
 *
 * Neither function checks permissions or row-level security: they call
 * BeginCopyTo/BeginCopyFrom directly and so skip DoCopy's checks.  The
 * caller must do those checks (ACL_SELECT for a backup; ACL_INSERT, and
 * refusing RLS-protected targets for non-owners, for a restore).
 *
 * Both functions need a transaction, an active snapshot and a lock on the
 * relation (at least AccessShareLock for COPY TO, RowExclusiveLock for
 * COPY FROM).  After an ERROR from either of them the caller must abort the
 * (sub)transaction, as after any ERROR: that releases the table scan, the
 * executor state and the temporary GUC settings they leave behind.  Neither
 * may be nested (a sink must not call ab_copy_out, a source must not call
 * ab_copy_in).
 *
 *-------------------------------------------------------------------------
 */
#ifndef AIBACKUP_PG_COPY_H
#define AIBACKUP_PG_COPY_H

#include "nodes/pg_list.h"
#include "utils/relcache.h"

/*
 * Receives COPY output (CSV, whole rows, newline included; the first call
 * carries the header row).  May ereport(ERROR).  The data is only valid
 * during the call.
 */
typedef void (*AbCopyOutSink) (void *arg, const char *data, size_t len);

/*
 * Copies every row of rel (relkind 'r', incl. leaf partitions) visible to
 * the active snapshot; columns: all non-dropped, non-generated columns in
 * attnum order (COPY's default list); returns the row count.
 */
extern uint64 ab_copy_out(Relation rel, AbCopyOutSink sink, void *arg);

/*
 * Supplies up to maxlen bytes of CSV into buf; returns 0 at end of data.
 * May ereport(ERROR).  It is not called again once it has returned 0.
 */
typedef size_t (*AbCopyInSource) (void *arg, char *buf, size_t maxlen);

/*
 * Loads CSV (first line = header) from src into rel, columns named by
 * attnames (a List of String nodes, in the file's column order, truncated as
 * identifiers are; NIL means COPY's default list, which is what a table
 * without columns needs, and leaves the header unchecked); the header must
 * name attnames once converted to the database encoding and truncated;
 * bulk = the caller allows the bulk load (copy_in.c: rows frozen, indexes
 * built after the load) where rel qualifies for it, *bulk_used (if not
 * NULL) says whether it ran; encoding = the file's encoding name (COPY's
 * ENCODING option; NULL = the database encoding); returns rows loaded.
 */
extern uint64 ab_copy_in(Relation rel, List *attnames, bool bulk,
						 const char *encoding, AbCopyInSource src, void *arg,
						 bool *bulk_used);

#endif							/* AIBACKUP_PG_COPY_H */
