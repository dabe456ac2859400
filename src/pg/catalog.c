/*
 * catalog.c
 *		Reads the catalogs for the backup: the tables (with their columns)
 *		and the sequences, through SPI in the caller's snapshot.
 *
 * Rules, and why:
 *	- relkind 'r' only: a partitioned parent holds no rows, its leaf
 *	  partitions are tables of their own (COPY TO accepts only 'r').
 *	- System schemas, pg_toast and other sessions' temp schemas are out;
 *	  so are tables that belong to an extension (their extension's script
 *	  creates and fills them, as pg_dump assumes), except its configuration
 *	  tables (pg_extension_config_dump: cron.job), which hold the user's
 *	  data.  Those are copied whole, not with pg_dump's filter: a restore
 *	  empties the table it loads, so rows the extension put there must be in
 *	  the backup too.
 *	- Large objects: when there are any, and the role may read them, the
 *	  two catalogs that hold them, pg_catalog.pg_largeobject_metadata and
 *	  pg_catalog.pg_largeobject, are backed up as tables of their own (last;
 *	  aibackup_restore_large_objects() restores from them).
 *	- Generated columns are not copied (COPY leaves them out; a restore
 *	  regenerates them); dropped columns do not exist for COPY.
 *	- Queries go through query.c (search_path pinned to pg_catalog), and
 *	  every result that outlives them is built in the caller's context.
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "pg/catalog.h"
#include "pg/query.h"
#include "pg/repo.h"
#include "pg/settings.h"

/* the name of the extension relation c belongs to, or NULL */
#define EXTENSION_OF \
	"(SELECT x.extname FROM pg_catalog.pg_depend d " \
	"  JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid " \
	"  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"    AND d.objid = c.oid AND d.objsubid = 0 AND d.deptype = 'e' " \
	"    AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass)"

#define SCHEMA_FILTER \
	"n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') " \
	"AND n.nspname NOT LIKE 'pg\\_temp\\_%' " \
	"AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' "


static bool
ab_excluded(List *patterns, const char *schema, const char *name)
{
	ListCell   *lc;

	foreach(lc, patterns)
	{
		List	   *pair = lfirst(lc);
		const char *ps = linitial(pair);
		const char *pt = lsecond(pair);

		if (strcmp(ps, schema) == 0 &&
			(strcmp(pt, "*") == 0 || strcmp(pt, name) == 0))
			return true;
	}
	return false;
}

/*
 * aibackup.exclude in the server encoding.  The setting is UTF-8 (the
 * server reads postgresql.conf as bytes, whatever the database's
 * encoding): it is converted first and parsed here, so that its names fold
 * and truncate as SQL's do in this database, and compare with the
 * catalog's.  An item that has no spelling in this encoding names no table
 * here and is left out; in SQL_ASCII, an item that is not valid UTF-8 is
 * taken as the bytes it is, the only way to name a table whose name is not
 * UTF-8 either.
 */
static char *
exclude_setting(void)
{
	char	   *value = ab_repo_from_utf8(ab_exclude, true);
	const char *p = ab_exclude;
	StringInfoData kept;

	if (value != NULL)
		return value;
	initStringInfo(&kept);
	while (*p)
	{
		const char *start = p;
		bool		quoted = false;
		char	   *item;
		char	   *conv;

		for (; *p && (quoted || *p != ','); p++)
		{
			if (*p == '"')
				quoted = !quoted;
		}
		item = pnstrdup(start, p - start);
		conv = ab_repo_from_utf8(item, true);
		if (conv == NULL && GetDatabaseEncoding() == PG_SQL_ASCII)
			conv = item;
		if (conv != NULL)
			appendStringInfo(&kept, "%s,", conv);
		if (*p)
			p++;
	}
	return kept.data;
}

/* one row of the table query, copied out of SPI's memory */
static AbTable *
table_from_row(AbQuery *q, uint64 row, char *relkind)
{
	AbTable    *t = MemoryContextAllocZero(q->outer, sizeof(AbTable));
	char	   *pschema = ab_query_value(q, row, 5);
	char	   *pname = ab_query_value(q, row, 6);
	char	   *size = ab_query_value(q, row, 7);
	char	   *kind = SPI_getvalue(SPI_tuptable->vals[row],
									SPI_tuptable->tupdesc, 4);

	t->relid = (Oid) strtoul(ab_query_value(q, row, 1), NULL, 10);
	t->schema = ab_query_value(q, row, 2);
	t->name = ab_query_value(q, row, 3);
	t->extension = ab_query_value(q, row, 8);
	if (pschema && pname)
	{
		MemoryContext old = MemoryContextSwitchTo(q->outer);

		t->parent = pstrdup(quote_qualified_identifier(pschema, pname));
		MemoryContextSwitchTo(old);
	}
	t->est_bytes = size ? strtoll(size, NULL, 10) : 0;	/* refined once locked */
	*relkind = kind ? kind[0] : '\0';
	return t;
}

List *
ab_catalog_tables(List *relids, bool apply_exclude)
{
	List	   *tables = NIL;
	List	   *seen = NIL;		/* the relids found */
	List	   *patterns = NIL;
	char	   *bad;
	StringInfoData sql;
	AbQuery		q;

	if (relids == NIL && apply_exclude && ab_exclude && ab_exclude[0] &&
		!ab_exclude_parse(exclude_setting(), &patterns, &bad))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aibackup.exclude is not valid near \"%s\"", bad)));

	initStringInfo(&sql);
	appendStringInfoString(&sql,
						   "SELECT c.oid, n.nspname, c.relname, c.relkind, "
						   "  pn.nspname, p.relname, "
						   "  c.relpages::pg_catalog.int8 * " CppAsString2(BLCKSZ) ", "
						   "  " EXTENSION_OF " "
						   "FROM pg_catalog.pg_class c "
						   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
						   "LEFT JOIN pg_catalog.pg_inherits i "
						   "  ON i.inhrelid = c.oid AND c.relispartition AND NOT i.inhdetachpending "
						   "LEFT JOIN pg_catalog.pg_class p ON p.oid = i.inhparent "
						   "LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace ");
	if (relids != NIL)
	{
		ListCell   *lc;
		bool		first = true;

		/* the tables named, and the partitions below a partitioned one */
		appendStringInfoString(&sql, "WHERE c.oid IN (WITH RECURSIVE d(oid) AS (VALUES ");
		foreach(lc, relids)
		{
			appendStringInfo(&sql, "%s(%u::pg_catalog.oid)", first ? "" : ", ",
							 lfirst_oid(lc));
			first = false;
		}
		appendStringInfoString(&sql,
							   " UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i "
							   "  JOIN d ON i.inhparent = d.oid "
							   "  JOIN pg_catalog.pg_class k ON k.oid = d.oid AND k.relkind = 'p' "
							   "  WHERE NOT i.inhdetachpending) "
							   "SELECT oid FROM d) ");
	}
	else
		appendStringInfoString(&sql,
							   "WHERE ((c.relkind = 'r' AND c.relpersistence <> 't' AND "
							   SCHEMA_FILTER
							   "AND (NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d "
							   "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
							   "    AND d.objid = c.oid AND d.deptype = 'e') "
							   "  OR EXISTS (SELECT 1 FROM pg_catalog.pg_extension x "
							   "    WHERE c.oid OPERATOR(pg_catalog.=) ANY (x.extconfig)))) "
							   "  OR (c.oid IN ('pg_catalog.pg_largeobject_metadata'::pg_catalog.regclass, "
							   "                'pg_catalog.pg_largeobject'::pg_catalog.regclass) "
							   "      AND EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata) "
							   "      AND pg_catalog.has_table_privilege('pg_catalog.pg_largeobject'::pg_catalog.regclass, 'SELECT'))) ");
	appendStringInfoString(&sql, "ORDER BY n.nspname = 'pg_catalog', n.nspname, c.relname");

	ab_query_begin(&q);
	ab_query_exec(sql.data, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char		relkind;
		AbTable    *t = table_from_row(&q, i, &relkind);
		bool		named = relids != NIL && list_member_oid(relids, t->relid);
		MemoryContext old;

		if (named)
		{
			old = MemoryContextSwitchTo(q.outer);
			seen = lappend_oid(seen, t->relid);
			MemoryContextSwitchTo(old);
		}
		if (named && relkind != RELKIND_RELATION &&
			relkind != RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s.%s\" is not a table with data of its own",
							ab_repo_quotable(t->schema), ab_repo_quotable(t->name))));
		/* below a partitioned table named: its partitions with data */
		if (relids != NIL && relkind != RELKIND_RELATION)
			continue;
		if (relids == NIL && ab_excluded(patterns, t->schema, t->name))
			continue;
		/* the list must outlive SPI's context: grow it in the caller's */
		old = MemoryContextSwitchTo(q.outer);
		tables = lappend(tables, t);
		MemoryContextSwitchTo(old);
	}
	ab_query_end(&q);

	/* the large objects' two catalogs go together, or not at all */
	if (relids == NIL)
	{
		int			catalogs = 0;
		ListCell   *lc;

		foreach(lc, tables)
			catalogs += mf_system_schema(((AbTable *) lfirst(lc))->schema);
		if (catalogs == 1)
		{
			foreach(lc, tables)
			{
				if (mf_system_schema(((AbTable *) lfirst(lc))->schema))
					tables = foreach_delete_current(tables, lc);
			}
		}
	}

	/* a table named explicitly and dropped since is said, not left out */
	if (relids != NIL && list_length(seen) < list_length(relids))
	{
		ListCell   *lc;

		foreach(lc, relids)
		{
			Oid			relid = lfirst_oid(lc);

			if (!list_member_oid(seen, relid))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("table with OID %u does not exist", relid),
						 errdetail("It was dropped after the backup was asked for.")));
		}
	}
	return tables;
}

List *
ab_catalog_partitioned(List *tables)
{
	List	   *parents = NIL;
	Datum	   *oids;
	int			n = 0;
	Oid			type = OIDARRAYOID;
	Datum		arg;
	AbQuery		q;
	ListCell   *lc;

	oids = palloc(sizeof(Datum) * Max(list_length(tables), 1));
	foreach(lc, tables)
	{
		AbTable    *t = lfirst(lc);

		if (t->parent != NULL)
			oids[n++] = ObjectIdGetDatum(t->relid);
	}
	if (n == 0)
		return NIL;
	arg = PointerGetDatum(construct_array(oids, n, OIDOID, sizeof(Oid), true,
										  TYPALIGN_INT));

	ab_query_begin(&q);
	ab_query_exec_args("SELECT c.oid, n.nspname, c.relname, c.relkind, "
					   "  pn.nspname, p.relname, 0, NULL::pg_catalog.name, "
					   "  (WITH RECURSIVE d(oid) AS ("
					   "     SELECT i.inhrelid FROM pg_catalog.pg_inherits i "
					   "     WHERE i.inhparent = c.oid AND NOT i.inhdetachpending "
					   "     UNION ALL "
					   "     SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.oid "
					   "     WHERE NOT i.inhdetachpending) "
					   "   SELECT pg_catalog.count(*) FROM d JOIN pg_catalog.pg_class k ON k.oid = d.oid "
					   "   WHERE k.relkind <> 'p') "
					   "FROM pg_catalog.pg_class c "
					   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
					   "LEFT JOIN pg_catalog.pg_inherits i "
					   "  ON i.inhrelid = c.oid AND c.relispartition AND NOT i.inhdetachpending "
					   "LEFT JOIN pg_catalog.pg_class p ON p.oid = i.inhparent "
					   "LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
					   "WHERE c.relkind = 'p' AND c.oid IN ("
					   "  WITH RECURSIVE d(oid) AS ("
					   "    SELECT a.relid FROM pg_catalog.unnest($1) l(oid), "
					   "      pg_catalog.pg_partition_ancestors(l.oid) a "
					   "    UNION "
					   "    SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.oid "
					   "    WHERE NOT i.inhdetachpending) "
					   "  SELECT oid FROM d) "
					   "ORDER BY (SELECT pg_catalog.count(*) "
					   "  FROM pg_catalog.pg_partition_ancestors(c.oid)), "
					   "  n.nspname, c.relname",
					   1, &type, &arg, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char		relkind;
		AbTable    *t = table_from_row(&q, i, &relkind);
		MemoryContext old = MemoryContextSwitchTo(q.outer);

		t->partitions = atoi(ab_query_value(&q, i, 9));
		parents = lappend(parents, t);
		MemoryContextSwitchTo(old);
	}
	ab_query_end(&q);
	return parents;
}

List *
ab_catalog_sequences(void)
{
	List	   *seqs = NIL;
	List	   *names = NIL;
	ListCell   *lc;
	AbQuery		q;

	ab_query_begin(&q);

	/*
	 * pg_sequences hides last_value until the sequence is called (and from
	 * roles without privileges); read each sequence itself instead, skipping
	 * those the role may not read.
	 */
	ab_query_exec("SELECT n.nspname, c.relname, " EXTENSION_OF " "
				  "FROM pg_catalog.pg_class c "
				  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
				  "WHERE c.relkind = 'S' AND c.relpersistence <> 't' AND "
				  SCHEMA_FILTER
				  "AND CASE WHEN c.relkind = 'S' THEN "
				  "  pg_catalog.has_sequence_privilege(c.oid, 'SELECT') END "
				  "ORDER BY 1, 2", true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		AbSequence *s = MemoryContextAllocZero(q.outer, sizeof(AbSequence));
		MemoryContext old;

		s->schema = ab_query_value(&q, i, 1);
		s->name = ab_query_value(&q, i, 2);
		s->extension = ab_query_value(&q, i, 3);
		old = MemoryContextSwitchTo(q.outer);
		names = lappend(names, s);
		MemoryContextSwitchTo(old);
	}

	foreach(lc, names)
	{
		AbSequence *s = lfirst(lc);
		char	   *v;
		MemoryContext old;

		ab_query_exec(psprintf("SELECT last_value, is_called FROM %s",
							   quote_qualified_identifier(s->schema, s->name)),
					  true, 1);
		if (SPI_processed != 1)
			elog(ERROR, "could not read sequence %s.%s", s->schema, s->name);
		v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		s->last_value = v ? strtoll(v, NULL, 10) : 0;
		v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		s->is_called = v && v[0] == 't';
		SPI_freetuptable(SPI_tuptable);
		old = MemoryContextSwitchTo(q.outer);
		seqs = lappend(seqs, s);
		MemoryContextSwitchTo(old);
	}
	ab_query_end(&q);
	return seqs;
}

List *
ab_catalog_lo_owners(void)
{
	List	   *roles = NIL;
	AbQuery		q;

	ab_query_begin(&q);
	/* the roles as the snapshot sees them (not the syscache: renamed since) */
	ab_query_exec("SELECT DISTINCT m.lomowner, r.rolname "
				  "FROM pg_catalog.pg_largeobject_metadata m "
				  "JOIN pg_catalog.pg_roles r ON r.oid = m.lomowner", true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		AbRole	   *r = MemoryContextAllocZero(q.outer, sizeof(AbRole));
		MemoryContext old;

		r->oid = (Oid) strtoul(ab_query_value(&q, i, 1), NULL, 10);
		r->name = ab_query_value(&q, i, 2);
		old = MemoryContextSwitchTo(q.outer);
		roles = lappend(roles, r);
		MemoryContextSwitchTo(old);
	}
	ab_query_end(&q);
	return roles;
}
