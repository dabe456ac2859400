/*
 * ddl.c
 *		A table's definition, read from the catalogs with PostgreSQL's own
 *		deparsers (format_type, pg_get_expr, pg_get_constraintdef,
 *		pg_get_indexdef) under the pinned search_path, so every name
 *		outside pg_catalog comes out schema-qualified.
 *
 * Two forms of the same facts go into the manifest: the pieces (MfDdl, one
 * per column, constraint, index, owned sequence, comment, policy), from
 * which a restore recreates the table under any name, and one SQL script
 * (MfTable.ddl, also stored as <schema>.<table>.sql) for people and for
 * psql.  Read after the table is locked: the definition is the one the
 * data was copied under.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "pg/catalog.h"
#include "pg/compat.h"
#include "pg/ddl.h"
#include "pg/query.h"
#include "pg/repo.h"

typedef struct DdlCtx
{
	Oid			relid;
	bool		catalog;		/* a large objects' catalog: no definition */
	MfTable    *mt;
	AbDdlParts *parts;			/* where its parts go, or NULL */
	char	   *qualname;		/* the table, quoted and qualified */
	List	   *identity;		/* (column, options) of identity columns */
	char	   *owner;
	char	   *partkey;		/* a partitioned table's key, or NULL */
	bool		is_partition;
	char	   *attach;			/* a partition's ATTACH, as a comment */
	int			ncols;
	StringInfoData seq;			/* CREATE SEQUENCE of those it owns */
	StringInfoData pre;			/* CREATE TABLE */
	StringInfoData post;		/* constraints, indexes, comments, ... */
	StringInfoData fk;			/* foreign keys */
} DdlCtx;

/*
 * Every table's definition is read by one query per kind of piece, for all
 * tables at once (a backup of thousands of tables runs a handful of
 * queries, not thousands): rows carry their table's OID last, and go to
 * its DdlCtx.
 */
typedef struct DdlAll
{
	AbQuery    *q;
	DdlCtx	   *ctx;			/* sorted by relid */
	int			n;
	Datum		relids;			/* oid[] of them all, for $1 */
} DdlAll;

void
ab_ddl_script_settings(StringInfo buf, const char *encoding)
{
	appendStringInfo(buf, "SET client_encoding = '%s';\n", encoding);
	appendStringInfoString(buf,
						   "SET standard_conforming_strings = on;\n"
						   "SELECT pg_catalog.set_config('search_path', '', false);\n"
						   "SET statement_timeout = 0;\n"
						   "SET lock_timeout = 0;\n"
						   "SET idle_in_transaction_session_timeout = 0;\n"
						   "SET row_security = off;\n");
}

char *
ab_ddl_in_comment(const char *s)
{
	char	   *r = pstrdup(s);

	for (char *p = r; *p; p++)
	{
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	return r;
}

static void
add_piece(DdlCtx *c, const char *kind, const char *name, const char *target,
		  const char *sql)
{
	MfDdl	   *d = mf_add_ddl(c->mt);

	if (d == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	d->kind = ab_repo_mstrdup(kind);
	d->name = ab_repo_mstrdup(name);
	d->target = ab_repo_mstrdup(target);
	d->sql = ab_repo_mstrdup(sql);
}

/* run sql with every table's OID as $1 (oid[]) */
static void
run(DdlAll *a, const char *sql)
{
	Oid			type = OIDARRAYOID;

	ab_query_exec_args(sql, 1, &type, &a->relids, true, 0);
}

static char *
val(DdlAll *a, uint64 row, int col)
{
	return ab_query_value(a->q, row, col);
}

static int
cmp_ctx(const void *x, const void *y)
{
	Oid			a = ((const DdlCtx *) x)->relid;
	Oid			b = ((const DdlCtx *) y)->relid;

	return a < b ? -1 : a > b ? 1 : 0;
}

/* the table a row is about: its OID is in column col */
static DdlCtx *
row_ctx(DdlAll *a, uint64 row, int col)
{
	DdlCtx		key;
	DdlCtx	   *c;

	key.relid = atooid(SPI_getvalue(SPI_tuptable->vals[row],
									SPI_tuptable->tupdesc, col));
	c = bsearch(&key, a->ctx, a->n, sizeof(DdlCtx), cmp_ctx);
	if (c == NULL)
		elog(ERROR, "catalog row for unexpected relation %u", key.relid);
	return c;
}

/*
 * "AS integer START WITH 1 INCREMENT BY 1 ..." of columns col..col+6 of a
 * row; an identity column's sequence takes its type from the column, and
 * must not say it.
 */
static char *
sequence_options(DdlAll *a, uint64 row, int col, bool with_type)
{
	return psprintf("%s%sSTART WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s",
					with_type ? "AS " : "", with_type ? psprintf("%s ", val(a, row, col)) : "",
					val(a, row, col + 1), val(a, row, col + 2),
					val(a, row, col + 3), val(a, row, col + 4),
					val(a, row, col + 5),
					strcmp(val(a, row, col + 6), "t") == 0 ? " CYCLE" : " NO CYCLE");
}

#define SEQ_COLUMNS \
	"pg_catalog.format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, " \
	"q.seqmin, q.seqmax, q.seqcache, q.seqcycle "

/*
 * Sequences the tables own: serial ones (deptype 'a') become pieces and
 * CREATE SEQUENCE lines; identity ones (deptype 'i') are kept by column,
 * for the column's IDENTITY clause.
 */
static void
capture_sequences(DdlAll *a)
{
	run(a, "SELECT a.attname, d.deptype, " SEQ_COLUMNS ", "
		"  pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.relname), "
		"  d.refobjid "
		"FROM pg_catalog.pg_depend d "
		"JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
		"JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace "
		"JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid "
		"JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
		"WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
		"  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
		"  AND d.refobjid = ANY ($1) AND d.deptype IN ('a', 'i') "
		"ORDER BY d.refobjid, a.attnum");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DdlCtx	   *c = row_ctx(a, i, 11);
		char	   *col = val(a, i, 1);
		bool		is_identity = strcmp(val(a, i, 2), "i") == 0;
		char	   *opts = sequence_options(a, i, 3, !is_identity);
		char	   *qual = val(a, i, 10);

		if (is_identity)
		{
			MemoryContext old = MemoryContextSwitchTo(a->q->outer);

			c->identity = lappend(c->identity, list_make2(col, opts));
			MemoryContextSwitchTo(old);
			add_piece(c, "identity", qual, col, opts);
			continue;
		}
		add_piece(c, "sequence", qual, col, opts);
		appendStringInfo(&c->seq, "CREATE SEQUENCE %s %s;\n", qual, opts);
		appendStringInfo(&c->post, "ALTER SEQUENCE %s OWNED BY %s.%s;\n",
						 qual, c->qualname, quote_identifier(col));
	}
}

static const char *
identity_options(List *identity, const char *col)
{
	ListCell   *lc;

	foreach(lc, identity)
	{
		if (strcmp(linitial(lfirst(lc)), col) == 0)
			return lsecond(lfirst(lc));
	}
	return NULL;
}

/* a partitioned table's key ("RANGE (ts)"); which tables are partitions */
static void
capture_partitioning(DdlAll *a)
{
	run(a, "SELECT CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END, "
		"  c.relispartition, c.oid "
		"FROM pg_catalog.pg_class c "
		"WHERE c.oid = ANY ($1) AND (c.relkind = 'p' OR c.relispartition) "
		"ORDER BY c.oid");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DdlCtx	   *c = row_ctx(a, i, 3);

		c->partkey = val(a, i, 1);	/* in the caller's context */
		c->is_partition = strcmp(val(a, i, 2), "t") == 0;
		if (c->partkey)
			add_piece(c, "partition_by", NULL, NULL, c->partkey);
	}
}

/* one piece per column, and the CREATE TABLE statements */
static void
capture_columns(DdlAll *a)
{
	run(a, "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
		"  CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation "
		"    THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END, "
		"  a.attnotnull AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint nn "
		"    WHERE nn.conrelid = a.attrelid AND nn.contype = 'n' "
		"      AND NOT nn.convalidated AND nn.conkey[1] = a.attnum), "
		"  a.attidentity, a.attgenerated, "
		"  pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attrelid "
		"FROM pg_catalog.pg_attribute a "
		"JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
		"LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation "
		"LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace "
		"LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
		"WHERE a.attrelid = ANY ($1) AND a.attnum > 0 AND NOT a.attisdropped "
		"ORDER BY a.attrelid, a.attnum");
	for (int k = 0; k < a->n; k++)
		appendStringInfo(&a->ctx[k].pre, "CREATE TABLE %s (", a->ctx[k].qualname);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DdlCtx	   *c = row_ctx(a, i, 8);
		char	   *name = val(a, i, 1);
		char	   *identity_kind = val(a, i, 5);
		char	   *generated = val(a, i, 6);
		char	   *def = val(a, i, 7);
		char	   *coll = val(a, i, 3);
		int			script_len = -1;	/* the script's column ends here */
		StringInfoData col;

		initStringInfo(&col);
		appendStringInfoString(&col, val(a, i, 2));
		if (coll)
			appendStringInfo(&col, " COLLATE %s", coll);
		if (generated && generated[0] == 's' && def)
			appendStringInfo(&col, " GENERATED ALWAYS AS (%s) STORED", def);
		else if (generated && generated[0] == 'v' && def)
			appendStringInfo(&col, " GENERATED ALWAYS AS (%s) VIRTUAL", def);	/* 18 */
		else if (identity_kind && identity_kind[0] != '\0')
		{
			const char *opts = identity_options(c->identity, name);

			/* the script attaches a partition, which takes its parent's */
			if (c->is_partition && AB_PARTITION_IDENTITY_INHERITED)
				script_len = col.len;
			appendStringInfo(&col, " GENERATED %s AS IDENTITY%s%s%s",
							 identity_kind[0] == 'a' ? "ALWAYS" : "BY DEFAULT",
							 opts ? " (" : "", opts ? opts : "", opts ? ")" : "");
		}
		else if (def)
			appendStringInfo(&col, " DEFAULT %s", def);
		if (strcmp(val(a, i, 4), "t") == 0)
			appendStringInfoString(&col, " NOT NULL");
		add_piece(c, "column", name, NULL, col.data);
		appendStringInfo(&c->pre, "%s\n    %s %.*s%s", c->ncols++ ? "," : "",
						 quote_identifier(name),
						 script_len >= 0 ? script_len : col.len, col.data,
						 script_len >= 0 && strcmp(val(a, i, 4), "t") == 0 ?
						 " NOT NULL" : "");
	}
	for (int k = 0; k < a->n; k++)
	{
		DdlCtx	   *c = &a->ctx[k];

		appendStringInfoString(&c->pre, "\n)");
		if (c->partkey)
			appendStringInfo(&c->pre, " PARTITION BY %s", c->partkey);
		appendStringInfoString(&c->pre, ";\n");
	}
}

static void
capture_constraints(DdlAll *a)
{
	/*
	 * contype 'n' (NOT NULL, 18+) is the column's NOT NULL already; a key
	 * into a partitioned table has a clone per partition, which is not ours
	 */
	run(a, "SELECT c.conname, c.contype, pg_catalog.pg_get_constraintdef(c.oid), "
		"  c.contype = 'f' AND c.conparentid <> 0, c.conrelid "
		"FROM pg_catalog.pg_constraint c "
		"WHERE c.conrelid = ANY ($1) AND c.contype IN ('c', 'p', 'u', 'x', 'f') "
		"  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint p "
		"    WHERE p.oid = c.conparentid AND p.conrelid = c.conrelid) "
		"ORDER BY c.conrelid, c.contype = 'f', c.conname");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DdlCtx	   *c = row_ctx(a, i, 5);
		char	   *name = val(a, i, 1);
		bool		fk = strcmp(val(a, i, 2), "f") == 0;
		char	   *def = val(a, i, 3);

		add_piece(c, fk ? "foreign_key" : "constraint", name, NULL, def);

		/*
		 * A partition's copy of its parent's key comes with the parent's
		 * (scripts attach partitions); a partitioned table's key is its
		 * partitions' too, so not ONLY.
		 */
		if (strcmp(val(a, i, 4), "t") == 0)
			continue;
		appendStringInfo(fk ? &c->fk : &c->post,
						 "ALTER TABLE %s%s ADD CONSTRAINT %s %s;\n",
						 fk && c->partkey ? "" : "ONLY ",
						 c->qualname, quote_identifier(name), def);
	}
}

static void
capture_indexes(DdlAll *a)
{
	run(a, "SELECT ci.relname, pg_catalog.pg_get_indexdef(i.indexrelid), i.indrelid "
		"FROM pg_catalog.pg_index i "
		"JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid "
		"WHERE i.indrelid = ANY ($1) AND i.indisvalid AND i.indislive AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k "
		"  WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid "
		"    AND k.contype IN ('p', 'u', 'x')) "
		"ORDER BY i.indrelid, ci.relname");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DdlCtx	   *c = row_ctx(a, i, 3);

		add_piece(c, "index", val(a, i, 1), NULL, val(a, i, 2));
		appendStringInfo(&c->post, "%s;\n", val(a, i, 2));
	}
}

static void
capture_comments(DdlAll *a)
{
	run(a, "SELECT NULL::pg_catalog.name, d.description, d.objoid, 0 AS attnum "
		"FROM pg_catalog.pg_description d "
		"WHERE d.objoid = ANY ($1) AND d.objsubid = 0 "
		"  AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass "
		"UNION ALL "
		"SELECT a.attname, d.description, d.objoid, a.attnum "
		"FROM pg_catalog.pg_description d "
		"JOIN pg_catalog.pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid "
		"WHERE d.objoid = ANY ($1) AND d.objsubid > 0 AND NOT a.attisdropped "
		"  AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass "
		"ORDER BY 3, 4");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DdlCtx	   *c = row_ctx(a, i, 3);
		char	   *col = val(a, i, 1);
		char	   *text = val(a, i, 2);

		if (text == NULL)
			continue;
		add_piece(c, "comment", NULL, col ? col : "", text);
		if (col)
			appendStringInfo(&c->post, "COMMENT ON COLUMN %s.%s IS %s;\n",
							 c->qualname, quote_identifier(col),
							 quote_literal_cstr(text));
		else
			appendStringInfo(&c->post, "COMMENT ON TABLE %s IS %s;\n",
							 c->qualname, quote_literal_cstr(text));
	}
}

static void
capture_security(DdlAll *a)
{
	run(a, "SELECT r.relrowsecurity, r.relforcerowsecurity, r.relacl::pg_catalog.text, "
		"  r.relispartition, "
		"  (SELECT pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.relname) "
		"   FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_class p ON p.oid = h.inhparent "
		"   JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
		"   WHERE h.inhrelid = r.oid AND NOT h.inhdetachpending), "
		"  pg_catalog.pg_get_expr(r.relpartbound, r.oid), r.oid, "
		"  pg_catalog.pg_get_userbyid(r.relowner) "
		"FROM pg_catalog.pg_class r WHERE r.oid = ANY ($1) ORDER BY r.oid");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DdlCtx	   *c = row_ctx(a, i, 7);
		char	   *acl = val(a, i, 3);

		c->owner = val(a, i, 8);
		if (strcmp(val(a, i, 1), "t") == 0)
		{
			add_piece(c, "row_security", NULL, NULL, "enable");
			appendStringInfo(&c->post, "ALTER TABLE %s ENABLE ROW LEVEL SECURITY;\n",
							 c->qualname);
		}
		if (strcmp(val(a, i, 2), "t") == 0)
		{
			add_piece(c, "row_security", NULL, NULL, "force");
			appendStringInfo(&c->post, "ALTER TABLE %s FORCE ROW LEVEL SECURITY;\n",
							 c->qualname);
		}
		if (acl)
			add_piece(c, "acl", NULL, NULL, acl);
		if (strcmp(val(a, i, 4), "t") == 0 && val(a, i, 5) && val(a, i, 6))
		{
			MemoryContext old = MemoryContextSwitchTo(a->q->outer);

			add_piece(c, "partition_of", val(a, i, 5), NULL, val(a, i, 6));
			c->attach = psprintf("-- a partition of %s: ALTER TABLE %s ATTACH PARTITION %s %s;\n",
								 ab_ddl_in_comment(val(a, i, 5)), ab_ddl_in_comment(val(a, i, 5)),
								 ab_ddl_in_comment(c->qualname), ab_ddl_in_comment(val(a, i, 6)));
			MemoryContextSwitchTo(old);
		}
	}

	run(a, "SELECT p.polname, "
		"  CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, "
		"  CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' "
		"    WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, "
		"  pg_catalog.array_to_string(ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' "
		"    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r)) END "
		"    FROM pg_catalog.unnest(p.polroles) r), ', '), "
		"  pg_catalog.pg_get_expr(p.polqual, p.polrelid), "
		"  pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), p.polrelid "
		"FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY ($1) "
		"ORDER BY p.polrelid, p.polname");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		DdlCtx	   *c = row_ctx(a, i, 7);
		StringInfoData pol;

		initStringInfo(&pol);
		appendStringInfo(&pol, "AS %s FOR %s TO %s", val(a, i, 2), val(a, i, 3),
						 val(a, i, 4));
		if (val(a, i, 5))
			appendStringInfo(&pol, " USING (%s)", val(a, i, 5));
		if (val(a, i, 6))
			appendStringInfo(&pol, " WITH CHECK (%s)", val(a, i, 6));
		add_piece(c, "policy", val(a, i, 1), NULL, pol.data);
		appendStringInfo(&c->post, "CREATE POLICY %s ON %s %s;\n",
						 quote_identifier(val(a, i, 1)), c->qualname, pol.data);
	}
}

/* the script of one table, from what the queries put in its DdlCtx */
static void
finish_script(DdlCtx *c)
{
	StringInfoData all;

	initStringInfo(&all);
	ab_ddl_script_settings(&all, GetDatabaseEncodingName());
	appendStringInfo(&all, "-- %s, as aibackup found it at the backup's snapshot.\n",
					 ab_ddl_in_comment(c->qualname));
	if (c->partkey)
		appendStringInfoString(&all, "-- A partitioned table: it holds no rows of its own.  Create it before\n"
							   "-- its partitions, then attach each one (ATTACH PARTITION below them).\n");
	else
		appendStringInfo(&all, "-- Load the data between the table and what follows it:\n"
						 "--   \\copy %s FROM 'data.csv' (FORMAT csv, HEADER)\n",
						 ab_ddl_in_comment(c->qualname));
	appendStringInfoString(&all, c->seq.data);
	appendStringInfoString(&all, c->pre.data);
	appendStringInfoString(&all, c->post.data);
	if (c->attach)
		appendStringInfoString(&all, c->attach);
	if (c->fk.len > 0)
		appendStringInfo(&all, "-- foreign keys, once the tables they reference exist:\n%s",
						 c->fk.data);
	if (c->owner)
		appendStringInfo(&all, "-- ALTER TABLE %s OWNER TO %s;\n",
						 ab_ddl_in_comment(c->qualname), ab_ddl_in_comment(quote_identifier(c->owner)));
	c->mt->ddl = ab_repo_mstrdup(all.data);
	if (c->parts)
	{
		/* the StringInfos were made in the caller's context, before SPI */
		c->parts->seq = c->seq.data;
		c->parts->pre = c->pre.data;
		c->parts->post = c->post.data;
		c->parts->fk = c->fk.data;
	}
}

void
ab_ddl_capture(List *tables, MfTable *mts, AbDdlParts *parts)
{
	AbQuery		q;
	DdlAll		a;
	Datum	   *oids;
	int			i = 0;
	int			noids = 0;
	ListCell   *lc;

	if (tables == NIL)
		return;
	a.q = &q;
	a.n = list_length(tables);
	a.ctx = palloc0(sizeof(DdlCtx) * a.n);
	oids = palloc(sizeof(Datum) * a.n);
	foreach(lc, tables)
	{
		AbTable    *t = lfirst(lc);
		DdlCtx	   *c = &a.ctx[i];

		c->relid = t->relid;
		c->catalog = mf_system_schema(t->schema);
		c->mt = &mts[i];
		c->parts = parts ? &parts[i] : NULL;
		c->qualname = quote_qualified_identifier(t->schema, t->name);
		initStringInfo(&c->seq);
		initStringInfo(&c->pre);
		initStringInfo(&c->post);
		initStringInfo(&c->fk);
		if (!c->catalog)
			oids[noids++] = ObjectIdGetDatum(t->relid);
		i++;
	}
	a.relids = PointerGetDatum(construct_array(oids, noids, OIDOID, sizeof(Oid),
											   true, TYPALIGN_INT));
	qsort(a.ctx, a.n, sizeof(DdlCtx), cmp_ctx);

	ab_query_begin(&q);
	capture_sequences(&a);
	capture_partitioning(&a);
	capture_columns(&a);
	capture_constraints(&a);
	capture_indexes(&a);
	capture_comments(&a);
	capture_security(&a);
	ab_query_end(&q);

	for (i = 0; i < a.n; i++)
	{
		if (!a.ctx[i].catalog)
			finish_script(&a.ctx[i]);
	}
}
