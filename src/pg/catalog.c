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
 *	  creates and fills them, as pg_dump assumes).
 *	- Generated columns are not copied (COPY leaves them out; a restore
 *	  regenerates them); dropped columns do not exist for COPY.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pg/catalog.h"
#include "pg/settings.h"

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


List *
ab_catalog_tables(List *relids)
{
	List	   *tables = NIL;
	List	   *patterns = NIL;
	char	   *bad;
	StringInfoData q;
	int			rc;
	MemoryContext outer = CurrentMemoryContext;

	if (relids == NIL && ab_exclude && ab_exclude[0] &&
		!ab_exclude_parse(ab_exclude, &patterns, &bad))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aibackup.exclude is not valid near \"%s\"", bad)));

	initStringInfo(&q);
	appendStringInfoString(&q,
						   "SELECT c.oid, n.nspname, c.relname, c.relkind, "
						   "  (SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.relname) "
						   "     FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
						   "     JOIN pg_namespace pn ON pn.oid = p.relnamespace "
						   "    WHERE i.inhrelid = c.oid AND c.relispartition LIMIT 1), "
						   "  c.relpages::bigint * current_setting('block_size')::bigint "
						   "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ");
	if (relids != NIL)
	{
		ListCell   *lc;
		bool		first = true;

		appendStringInfoString(&q, "WHERE c.oid IN (");
		foreach(lc, relids)
		{
			appendStringInfo(&q, "%s%u", first ? "" : ",", lfirst_oid(lc));
			first = false;
		}
		appendStringInfoString(&q, ") ");
	}
	else
		appendStringInfoString(&q,
							   "WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND "
							   SCHEMA_FILTER
							   "AND NOT EXISTS (SELECT 1 FROM pg_depend d "
							   "  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
							   "    AND d.deptype = 'e') ");
	appendStringInfoString(&q, "ORDER BY n.nspname, c.relname");

	SPI_connect();
	rc = SPI_execute(q.data, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(outer);
		AbTable    *t = palloc0(sizeof(AbTable));
		char	   *relkind;
		char	   *size;

		t->relid = (Oid) strtoul(SPI_getvalue(tup, desc, 1), NULL, 10);
		t->schema = SPI_getvalue(tup, desc, 2);
		t->name = SPI_getvalue(tup, desc, 3);
		relkind = SPI_getvalue(tup, desc, 4);
		t->parent = SPI_getvalue(tup, desc, 5);
		size = SPI_getvalue(tup, desc, 6);
		t->est_bytes = size ? strtoll(size, NULL, 10) : 0;	/* refined once locked */
		MemoryContextSwitchTo(old);

		if (relids != NIL && relkind[0] != 'r')
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s.%s\" is not a table with data of its own",
							t->schema, t->name),
					 relkind[0] == 'p' ?
					 errhint("Name its partitions instead.") : 0));
		if (relids == NIL && ab_excluded(patterns, t->schema, t->name))
			continue;
		tables = lappend(tables, t);
	}

	SPI_finish();
	return tables;
}

List *
ab_catalog_sequences(void)
{
	List	   *seqs = NIL;
	int			rc;
	uint64		n;
	SPITupleTable *names;
	MemoryContext outer = CurrentMemoryContext;

	SPI_connect();

	/*
	 * pg_sequences hides last_value until the sequence is called (and from
	 * roles without privileges); read each sequence itself instead, skipping
	 * those the role may not read.
	 */
	rc = SPI_execute("SELECT n.nspname, c.relname, "
					 "  quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
					 "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
					 "WHERE c.relkind = 'S' AND c.relpersistence <> 't' AND "
					 SCHEMA_FILTER
					 "AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT') END "
					 "ORDER BY 1, 2", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	names = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = names->vals[i];
		TupleDesc	desc = names->tupdesc;
		char	   *qual = SPI_getvalue(tup, desc, 3);
		AbSequence *s;
		MemoryContext old;
		char	   *v;

		rc = SPI_execute(psprintf("SELECT last_value, is_called FROM %s", qual), true, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read sequence %s", qual);
		old = MemoryContextSwitchTo(outer);
		s = palloc0(sizeof(AbSequence));
		s->schema = pstrdup(SPI_getvalue(tup, desc, 1));
		s->name = pstrdup(SPI_getvalue(tup, desc, 2));
		v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		s->last_value = v ? strtoll(v, NULL, 10) : 0;
		v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		s->is_called = v && v[0] == 't';
		seqs = lappend(seqs, s);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return seqs;
}
