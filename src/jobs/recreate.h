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
	bool		renamed;		/* not the source's own name */
	bool		full;			/* the whole definition: the new owner is the
								 * recorded one, an ordinary role, and every
								 * statement runs as it; else only what runs
								 * no code (columns, plain keys, comments) */
	const char *owner_note;		/* why not, for the WARNING */
	bool		with_fks;		/* its foreign keys too (with full only) */
	bool		with_grants;	/* and its privileges (when owner_kept) */
	bool		owner_kept;		/* the new owner is the recorded one */
	bool		as_partition;	/* to be attached to a recreated parent */
	List	   *parent_seqs;	/* its recreated ancestors' serial sequences
								 * (AbSeqMap), which its defaults follow */
	List	   *parent_names;	/* its recreated ancestors' constraint names,
								 * old and new in turn: a partition's copy of
								 * its parent's CHECK takes the parent's new
								 * name (ATTACH matches them by name) */
	List	   *parent_tables;	/* its recreated ancestors, qualified, old and
								 * new in turn: a foreign key into one follows
								 * it */
	/* set by ab_recreate_plan: its own constraint names, old and new */
	List	   *names;
	/* set by ab_recreate_plan */
	char	   *qualname;
	List	   *seqs;			/* the sequences it owns */
	List	   *pre;			/* statements before the data */
	List	   *post;			/* and after it */
} AbRecreate;

/* cand, or cand with a number, free among the relations of nsp */
extern char *ab_recreate_unique_relname(const char *cand, Oid nsp);

/* does t carry a definition (backups made since it is recorded)? */
extern bool ab_recreate_possible(const MfTable *t);

/*
 * The partition key of partitioned table t ("RANGE (ts)"), or NULL if t
 * records none.  plain_only: only a key of plain columns of built-in types
 * with their default operator classes (comparing them runs PostgreSQL's own
 * functions only), rebuilt from its column names; NULL for any other.
 */
extern char *ab_recreate_partition_key(const MfTable *t, bool plain_only);

/*
 * "ALTER TABLE parent ATTACH PARTITION child bound" for partition t (whose
 * bound its definition records), checked: one statement of that kind, on
 * those two tables (qualified), with a bound of literals only.  ERROR if t
 * records no bound, or not a valid one.
 */
extern char *ab_recreate_attach_sql(const Manifest *m, const MfTable *t,
									const char *parent, const char *child);

/*
 * Build every statement, checking each: parsed, it must be exactly one
 * statement of the kind expected, acting on the new table, and the columns
 * must be the manifest's.  Runs nothing.  ERROR for a definition that is
 * not valid.  Without r->full, plans only plain keys and comments (the
 * caller creates the columns) and says so in a WARNING; returns r->full.
 */
extern bool ab_recreate_plan(AbRecreate *r);

/*
 * Run the statements before the data: sequences, the table.  With r->full
 * only, and as the new owner: parsing a default already runs code (a
 * domain's CHECK).
 */
extern void ab_recreate_create(AbRecreate *r);

/*
 * Once the data is in (and as the table's owner): constraints, indexes,
 * comments, row security and policies; sequences set to their backed-up
 * values (ab_sequences_catch_up() then moves them past the restored data if
 * that is ahead); foreign keys and privileges when asked for.
 */
extern void ab_recreate_finish(AbRecreate *r);

/*
 * GRANT statements for an aclitem[] in text (a relacl or lomacl, from a
 * backup) on the object kind ("TABLE", "LARGE OBJECT") name (quoted as SQL):
 * every privilege but the owner's own, to the roles that exist here
 * (WARNINGs for the others and for privileges this server does not know).
 */
extern List *ab_acl_grants(const char *acl, const char *kind,
						   const char *name, const char *owner);

/*
 * The sequences that feed a table's columns, moved past its data if behind
 * (in their own direction, within their bounds): its own; for a
 * partition's identity column its root's, and any other sequence an integer
 * column's default uses (shared, or an extension's: cron.jobid_seq), when
 * caller may update that one too.
 */
extern void ab_sequences_catch_up(Oid relid, Oid caller);

#endif							/* AIBACKUP_RECREATE_H */
