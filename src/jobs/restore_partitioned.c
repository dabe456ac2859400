/*
 * restore_partitioned.c
 *		Restoring a partitioned table whole: every partition the backup
 *		holds below it, in the caller's transaction, all or nothing, from a
 *		backup that holds them all (the manifest counts them).
 *
 * In place (the partitioned table exists): the caller needs INSERT and
 * TRUNCATE on it, as for a table, and TRUNCATE on each partition, as
 * TRUNCATE of a partitioned table requires; every partition must be the
 * partitioned table's owner's.  Every partition is emptied, then each
 * backed-up partition's rows are loaded through the partitioned table, as
 * its owner: rows go to the partitions now in place (partitions split,
 * merged or renamed since the backup are no obstacle); a row no partition
 * takes fails the restore, which then changes nothing.
 *
 * Recreated (it was dropped): the partitioned tables first, root down,
 * each attached to its parent while empty; then each partition as a table
 * of its own, as a dropped table is recreated (created, loaded, then its
 * keys and indexes built), then attached: PostgreSQL adopts the indexes and
 * constraints that match the parent's, as when pg_dump attaches a
 * partition, and gives it the parent's foreign keys, checked once its rows
 * are in.  ATTACH runs as the parent's owner, who must own the partition
 * too.  Each table is created and owned as restore.c creates a dropped
 * table; a partitioned table whose definition may not run as its owner
 * keeps a key of plain columns only (restore.c refuses any other).
 *
 * Under another name (target_table): into that partitioned table if it
 * exists, as in place (not into one that holds the source); else the tree
 * is recreated next to the original, its other tables in the new root's
 * schema, named after the new root (a name that began with the old root's
 * begins with the new one, any other gets it as a prefix; a number makes
 * one unique), their indexes and constraints renamed likewise (a
 * partition's copy of its parent's takes the parent's new name, as ATTACH
 * matches them by name), their defaults following the new parent's
 * sequences and their foreign keys into the tree following it.
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "jobs/recreate.h"
#include "jobs/restore_int.h"
#include "pg/compat.h"
#include "pg/query.h"
#include "pg/repo.h"
#include "pg/state.h"

/* what the owner does in place: empty every partition, load, catch up */
typedef struct InPlace
{
	S3Client   *client;
	const Manifest *m;
	Oid			relid;			/* the partitioned table */
	List	   *members;		/* it and every table below it, locked */
	List	   *leaves;			/* the backup's partitions (truncated) */
	Oid			caller;
	uint64		rows;
} InPlace;

/* a table of the tree as recreated */
typedef struct Made
{
	const MfTable *t;			/* the manifest's entry, as named there */
	Oid			relid;
	char	   *qualname;
	AbRecreate	r;				/* its plan (r.t NULL: columns only) */
} Made;

/*
 * Where the tree goes: under its own names, or under a new root name, its
 * other tables then in the root's schema named after it.
 */
typedef struct Names
{
	const MfTable *root;		/* truncated */
	const char *schema;			/* the new root */
	const char *name;
	bool		renamed;
} Names;

static Oid
rel_owner(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);
	Oid			owner = rel->rd_rel->relowner;

	table_close(rel, NoLock);
	return owner;
}

/*
 * As the partitioned table's owner, who owns every partition: empty them,
 * load through it, and move the sequences of every table past the rows.
 */
static void
fill_in_place(void *arg)
{
	InPlace    *ip = arg;
	Relation	rel;
	ListCell   *lc;

	foreach(lc, ip->members)
	{
		Relation	member = table_open(lfirst_oid(lc), NoLock);

		if (member->rd_rel->relkind == RELKIND_RELATION)
		{
			ab_restore_check_truncate(member);
			ab_truncate_one(member);
		}
		table_close(member, NoLock);
	}
	CommandCounterIncrement();

	rel = table_open(ip->relid, NoLock);
	foreach(lc, ip->leaves)
	{
		const MfTable *t = lfirst(lc);

		ab_progress_table(ip->relid, psprintf("%s.%s", t->schema, t->name),
						  foreach_current_index(lc), list_length(ip->leaves));
		ab_progress_phase("downloading");
		ip->rows += ab_restore_load_object(ip->client, ip->m, t, rel);
	}
	table_close(rel, NoLock);
	CommandCounterIncrement();

	/* every table's own sequences: the owner owns them all */
	foreach(lc, ip->members)
		ab_sequences_catch_up(lfirst_oid(lc), ip->caller);
}

static uint64
restore_in_place(S3Client *client, const Manifest *m, const MfTable *root,
				 List *leaves, Oid relid)
{
	char	   *qualname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													  get_rel_name(relid));
	Oid			owner = rel_owner(relid);
	InPlace		ip;
	ListCell   *lc;

	memset(&ip, 0, sizeof(ip));
	ip.client = client;
	ip.m = m;
	ip.relid = relid;
	ip.caller = GetUserId();
	ip.members = find_all_inheritors(relid, AccessExclusiveLock, NULL);
	foreach(lc, ip.members)
	{
		Oid			member = lfirst_oid(lc);
		AclResult	acl;

		if (get_rel_relkind(member) == RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("cannot restore partitioned table %s in place: its partition \"%s\" is a foreign table",
							qualname, get_rel_name(member)),
					 errhint("Restore the partitions one at a time.")));
		acl = pg_class_aclcheck(member, GetUserId(), ACL_TRUNCATE);
		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, OBJECT_TABLE, get_rel_name(member));

		/*
		 * The load runs every partition's triggers, constraints and index
		 * expressions as the partitioned table's owner: code of another
		 * role's partition must not run with that role's rights.
		 */
		if (rel_owner(member) != owner)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot restore partitioned table %s in place: its partition \"%s\" is owned by another role",
							qualname, get_rel_name(member)),
					 errdetail("The rows are loaded as the partitioned table's owner, which would run that role's code."),
					 errhint("Restore the partitions one at a time, or give them to the partitioned table's owner.")));
	}
	ab_restore_check_rls(relid, qualname);
	ab_restore_check_not_referenced(ip.members, qualname);
	ab_restore_check_columns(relid, root, qualname);
	foreach(lc, leaves)
	{
		const MfTable *t = ab_restore_truncated_entry(m, lfirst(lc));

		ab_restore_check_columns(relid, t, qualname);
		ip.leaves = lappend(ip.leaves, (MfTable *) t);
	}
	ab_restore_as_owner(owner, fill_in_place, &ip);
	return ip.rows;
}

/* the recreated table t's parent, among made[0..n) */
static Made *
made_parent(Made *made, int n, const MfTable *t)
{
	List	   *parts;

	if (t->parent != NULL &&
		SplitIdentifierString(pstrdup(t->parent), '.', &parts) &&
		list_length(parts) == 2)
	{
		for (int i = 0; i < n; i++)
		{
			if (strcmp(made[i].t->schema, linitial(parts)) == 0 &&
				strcmp(made[i].t->name, lsecond(parts)) == 0)
				return &made[i];
		}
	}
	elog(ERROR, "partition \"%s.%s\" has no parent in the backup", t->schema,
		 t->name);
	return NULL;				/* keep compiler quiet */
}

static void
run_statement(void *arg)
{
	AbQuery		q;

	ab_query_begin(&q);
	ab_query_exec((const char *) arg, false, 0);
	ab_query_end(&q);
}

static void
finish_definition(void *arg)
{
	ab_recreate_finish((AbRecreate *) arg);
}

/* the sequences of the partitioned tables' own columns, past the data */
typedef struct CatchUp
{
	Made	   *made;
	int			n;
	Oid			caller;
} CatchUp;

static void
catch_up_parents(void *arg)
{
	CatchUp    *c = arg;

	for (int i = 0; i < c->n; i++)
		ab_sequences_catch_up(c->made[i].relid, c->caller);
}

/*
 * Attach the recreated child to its recreated parent, as the parent's
 * owner, who must own the child too (ALTER TABLE ... ATTACH PARTITION asks
 * for both): attaching builds or adopts the child's indexes and checks its
 * rows against the bound, code of the parent's definition.
 */
static void
attach(const Manifest *m, const Made *parent, const Made *child)
{
	Oid			owner = rel_owner(parent->relid);

	if (rel_owner(child->relid) != owner)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot attach %s to %s: the two tables are owned by different roles",
						child->qualname, parent->qualname),
				 errdetail("A partition is attached by the role that owns both tables."),
				 errhint("Restore the partitions one at a time, and attach them by hand.")));
	ab_restore_as_owner(owner, run_statement,
						ab_recreate_attach_sql(m, child->t, parent->qualname,
											   child->qualname));
}

/*
 * The name t gets: its own, or under a new root name, the root's new name
 * for the root; for the others, a name that began with the root's begins
 * with the new one, and any other gets the new one as a prefix; made
 * unique in the new root's schema, as PostgreSQL names a new relation.
 */
static RangeVar *
member_rangevar(const Names *nm, const MfTable *tt, bool root)
{
	size_t		n = strlen(nm->root->name);
	Oid			nsp;
	char	   *cand;

	if (!nm->renamed)
		return makeRangeVar(pstrdup(tt->schema), pstrdup(tt->name), -1);
	if (root)
		return makeRangeVar(pstrdup(nm->schema), pstrdup(nm->name), -1);
	nsp = get_namespace_oid(nm->schema, false);
	if (strncmp(tt->name, nm->root->name, n) == 0)
		cand = psprintf("%s%s", nm->name, tt->name + n);
	else
		cand = psprintf("%s_%s", nm->name, tt->name);
	cand = pnstrdup(cand, pg_mbcliplen(cand, strlen(cand), NAMEDATALEN - 1));
	return makeRangeVar(pstrdup(nm->schema), ab_recreate_unique_relname(cand, nsp), -1);
}

/* one table of the tree, created; its parent's plan, or NULL for the root */
static void
create_member(const Manifest *m, const Names *nm, const MfTable *t,
			  const Made *parent, Made *made, const AbRestoreOptions *opts)
{
	const MfTable *tt = ab_restore_truncated_entry(m, t);

	memset(made, 0, sizeof(*made));
	made->t = t;
	made->relid = ab_restore_create_table(m, tt, member_rangevar(nm, tt, parent == NULL),
										  &made->qualname, &made->r, opts,
										  parent ? &parent->r : NULL);
}

static uint64
restore_recreated(S3Client *client, const Manifest *m, const Names *nm,
				  List *parents, List *leaves, const AbRestoreOptions *opts)
{
	Made	   *made = palloc0(sizeof(Made) * list_length(parents));
	int			n = 0;
	uint64		rows = 0;
	ListCell   *lc;

	/* every name free first: nothing is created when one is taken */
	foreach(lc, nm->renamed ? NIL : list_concat_copy(parents, leaves))
	{
		const MfTable *t = ab_restore_truncated_entry(m, lfirst(lc));
		Oid			nsp = get_namespace_oid(t->schema, true);

		if (OidIsValid(nsp) && OidIsValid(get_relname_relid(t->name, nsp)))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("cannot recreate partitioned table \"%s.%s\": table \"%s.%s\", which the backup holds below it, exists",
							((MfTable *) linitial(parents))->schema,
							((MfTable *) linitial(parents))->name, t->schema, t->name),
					 errhint("Drop or rename it first, or restore the backup's partitions one at a time.")));
	}

	foreach(lc, parents)
	{
		Made	   *parent = n > 0 ? made_parent(made, n, lfirst(lc)) : NULL;

		create_member(m, nm, lfirst(lc), parent, &made[n], opts);
		if (made[n].r.t != NULL)
			ab_restore_as_owner(rel_owner(made[n].relid), finish_definition,
								&made[n].r);
		CommandCounterIncrement();
		if (parent != NULL)
			attach(m, parent, &made[n]);
		n++;
	}
	foreach(lc, leaves)
	{
		Made	   *parent = made_parent(made, n, lfirst(lc));
		Made		leaf;

		ab_progress_table(made[0].relid, made[0].qualname,
						  foreach_current_index(lc), list_length(leaves));
		create_member(m, nm, lfirst(lc), parent, &leaf, opts);
		rows += ab_restore_fill(client, m, ab_restore_truncated_entry(m, leaf.t),
								leaf.relid, &leaf.r);
		CommandCounterIncrement();
		attach(m, parent, &leaf);
	}
	CommandCounterIncrement();
	{
		CatchUp		c = {made, n, GetUserId()};

		ab_restore_as_owner(rel_owner(made[0].relid), catch_up_parents, &c);
	}
	return rows;
}

/*
 * Under another name, into a partitioned table that holds the source (its
 * ancestor): emptying it would empty its other partitions too, which the
 * backup of the source does not hold.
 */
static void
check_not_above_source(const MfTable *p, Oid target, const RangeVar *rv)
{
	Oid			source = (Oid) p->relid;

	if (OidIsValid(source) && get_rel_relkind(source) != '\0' &&
		get_rel_relispartition(source) &&
		list_member_oid(get_partition_ancestors(source), target))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot restore partitioned table \"%s.%s\" into \"%s\": that table holds it as a partition",
						p->schema, p->name, rv->relname),
				 errdetail("Its other partitions would be emptied, and the backup does not hold them."),
				 errhint("Name a new table, or restore the table that holds it.")));
}

int64
ab_restore_partitioned(S3Client *client, const Manifest *m, const MfTable *p,
					   const char *target, const AbRestoreOptions *opts)
{
	const MfTable *root = ab_restore_truncated_entry(m, p);
	List	   *parents;
	List	   *leaves;
	Names		nm;
	RangeVar   *rv = makeRangeVar(pstrdup(root->schema), pstrdup(root->name), -1);
	Oid			relid;
	volatile uint64 rows = 0;
	char	   *qualname;
	ListCell   *lc;

	nm.root = root;
	nm.schema = root->schema;
	nm.name = root->name;
	nm.renamed = false;
	if (target != NULL)
	{
		List	   *names = NIL;
		RangeVar   *trv;

		if (!SplitIdentifierString(pstrdup(target), '.', &names) || names == NIL ||
			list_length(names) > 2)
			elog(ERROR, "invalid target table name \"%s\"", target);	/* checked */
		trv = list_length(names) == 2 ?
			makeRangeVar(linitial(names), lsecond(names), -1) :
			makeRangeVar(NULL, linitial(names), -1);
		nm.schema = get_namespace_name(RangeVarGetCreationNamespace(trv));
		nm.name = trv->relname;
		nm.renamed = strcmp(nm.schema, root->schema) != 0 ||
			strcmp(nm.name, root->name) != 0;
		rv = makeRangeVar(pstrdup(nm.schema), pstrdup(nm.name), -1);
	}

	ab_repo_partition_tree(m, p, &parents, &leaves);
	foreach(lc, leaves)
	{
		const MfTable *t = lfirst(lc);

		if (!ab_restore_entry_ok(t))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("partition \"%s.%s\" of \"%s.%s\" failed in backup \"%s\"",
							t->schema, t->name, p->schema, p->name, m->backup_id),
					 errdetail("%s", t->error ? t->error : "No reason was recorded."),
					 errhint("Restore the partitioned table from another backup, or its other partitions one at a time.")));
		ab_restore_check_storage(m, t);
		ab_repo_check_table_object(m, t);
	}

	/*
	 * Whole, or not at all: a backup of some of its partitions (named, or the
	 * others excluded) would empty the others for nothing.
	 */
	if (list_length(leaves) != p->partitions)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("backup \"%s\" holds %d of the %d partitions of \"%s.%s\"",
						m->backup_id, list_length(leaves), p->partitions,
						p->schema, p->name),
				 errdetail("Restoring a partitioned table whole needs a backup of every partition below it; one it does not hold was named out, excluded, failed, or is a foreign or temporary table."),
				 errhint("Restore the partitions it holds one at a time, or restore from a backup of them all.")));

	/*
	 * Reading the rows of every partition: the partitioned table's SELECT
	 * reads them all, as a query through it does.
	 */
	ab_restore_check_read(m, root, "restore");

	ab_progress_begin("restore", m->backup_id);
	ab_progress_phase("checking");
	PG_TRY();
	{
		relid = ab_restore_lock_target(rv, RELKIND_PARTITIONED_TABLE);
		if (OidIsValid(relid) && nm.renamed)
			check_not_above_source(p, relid, rv);
		if (OidIsValid(relid))
			rows = restore_in_place(client, m, root, leaves, relid);
		else
			rows = restore_recreated(client, m, &nm, parents, leaves, opts);
	}
	PG_FINALLY();
	{
		ab_progress_end();
	}
	PG_END_TRY();

	qualname = quote_qualified_identifier(nm.schema, nm.name);
	ereport(NOTICE,
			(errmsg("restored " UINT64_FORMAT " rows of %d partitions into %s from backup \"%s\"",
					rows, list_length(leaves), qualname, m->backup_id)));
	return (int64) rows;
}
