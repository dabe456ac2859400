/*
 * recreate.h
 *		A table recreated from the definition its backup captured (ddl.c):
 *		under its own name when it was dropped, or under a new one next to
 *		the original.
 */
#ifndef AIBACKUP_RECREATE_H
#define AIBACKUP_RECREATE_H

#include "core/manifest.h"
#include "nodes/pg_list.h"

typedef struct AbRecreate
{
	const Manifest *m;
	const MfTable *t;
	const char *schema;			/* the new table */
	const char *name;
	Oid			nsp;
	char	   *qualname;
	bool		renamed;		/* not the source's own name */
	List	   *seqs;			/* AbSeqMap: the sequences it owns */
} AbRecreate;

/* does t carry a definition (backups made since it is recorded)? */
extern bool ab_recreate_possible(const MfTable *t);

/*
 * CREATE the table, with its columns, defaults, identity and generated
 * columns, and the sequences it owns (as the caller).  Every statement made
 * from the manifest is parsed first and must be the one kind expected, on
 * the new table.
 */
extern void ab_recreate_create(AbRecreate *r);

/*
 * Once the data is in (and as the table's owner): constraints, indexes,
 * comments, row security and policies; sequences set to their backed-up
 * values, or past the restored data if that is ahead.  Foreign keys, grants
 * are left to the .sql script.
 */
extern void ab_recreate_finish(AbRecreate *r, Oid relid);

/* an existing table's owned sequences, moved past its data if behind */
extern void ab_sequences_catch_up(Oid relid);

#endif							/* AIBACKUP_RECREATE_H */
