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
#include "utils/builtins.h"

#include "pg/ddl.h"
#include "pg/query.h"

typedef struct DdlCtx
{
	AbQuery    *q;
	MfTable    *mt;
	Oid			relid;
	char	   *qualname;		/* the table, quoted and qualified */
	StringInfoData pre;			/* sequences, then CREATE TABLE */
	StringInfoData post;		/* constraints, indexes, comments, ... */
	StringInfoData fk;			/* foreign keys */
} DdlCtx;

/*
 * s for a "--" comment line: a name or literal may hold a line break (a
 * quoted identifier keeps it), which would end the comment and make the
 * rest a statement for whoever runs the script.
 */
static char *
in_comment(const char *s)
{
	char	   *r = pstrdup(s);

	for (char *p = r; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return r;
}

static char *
mf_dup(const char *s)
{
	char	   *r;

	if (s == NULL)
		return NULL;
	if ((r = strdup(s)) == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return r;
}

static void
add_piece(DdlCtx *c, const char *kind, const char *name, const char *target,
		  const char *sql)
{
	MfDdl	   *d = mf_add_ddl(c->mt);

	if (d == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	d->kind = mf_dup(kind);
	d->name = mf_dup(name);
	d->target = mf_dup(target);
	d->sql = mf_dup(sql);
}

/* run sql with the table's OID as $1 */
static void
run(DdlCtx *c, const char *sql)
{
	Oid			type = OIDOID;
	Datum		value = ObjectIdGetDatum(c->relid);

	ab_query_exec_args(sql, 1, &type, &value, true, 0);
}

static char *
val(DdlCtx *c, uint64 row, int col)
{
	return ab_query_value(c->q, row, col);
}

/*
 * "AS integer START WITH 1 INCREMENT BY 1 ..." of columns col..col+6 of a
 * row; an identity column's sequence takes its type from the column, and
 * must not say it.
 */
static char *
sequence_options(DdlCtx *c, uint64 row, int col, bool with_type)
{
	return psprintf("%s%sSTART WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s",
					with_type ? "AS " : "", with_type ? psprintf("%s ", val(c, row, col)) : "",
					val(c, row, col + 1), val(c, row, col + 2),
					val(c, row, col + 3), val(c, row, col + 4),
					val(c, row, col + 5),
					strcmp(val(c, row, col + 6), "t") == 0 ? " CYCLE" : " NO CYCLE");
}

#define SEQ_COLUMNS \
	"pg_catalog.format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement, " \
	"q.seqmin, q.seqmax, q.seqcache, q.seqcycle "

/*
 * Sequences the table owns: serial ones (deptype 'a') become pieces and
 * CREATE SEQUENCE lines; identity ones (deptype 'i') are returned by
 * column, for the column's IDENTITY clause.
 */
static List *
capture_sequences(DdlCtx *c)
{
	List	   *identity = NIL;

	run(c, "SELECT a.attname, d.deptype, " SEQ_COLUMNS ", "
		"  pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.relname) "
		"FROM pg_catalog.pg_depend d "
		"JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
		"JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace "
		"JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid "
		"JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
		"WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
		"  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
		"  AND d.refobjid = $1 AND d.deptype IN ('a', 'i') "
		"ORDER BY a.attnum");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *col = val(c, i, 1);
		bool		is_identity = strcmp(val(c, i, 2), "i") == 0;
		char	   *opts = sequence_options(c, i, 3, !is_identity);
		char	   *qual = val(c, i, 10);

		if (is_identity)
		{
			MemoryContext old = MemoryContextSwitchTo(c->q->outer);

			identity = lappend(identity, list_make2(col, opts));
			MemoryContextSwitchTo(old);
			add_piece(c, "identity", qual, col, opts);
			continue;
		}
		add_piece(c, "sequence", qual, col, opts);
		appendStringInfo(&c->pre, "CREATE SEQUENCE %s %s;\n", qual, opts);
		appendStringInfo(&c->post, "ALTER SEQUENCE %s OWNED BY %s.%s;\n",
						 qual, c->qualname, quote_identifier(col));
	}
	return identity;
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

/* one piece per column, and the CREATE TABLE statement */
static void
capture_columns(DdlCtx *c, List *identity)
{
	run(c, "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
		"  CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation "
		"    THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END, "
		"  a.attnotnull, a.attidentity, a.attgenerated, "
		"  pg_catalog.pg_get_expr(d.adbin, d.adrelid) "
		"FROM pg_catalog.pg_attribute a "
		"JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
		"LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation "
		"LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace "
		"LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
		"WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped "
		"ORDER BY a.attnum");
	appendStringInfo(&c->pre, "CREATE TABLE %s (", c->qualname);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *name = val(c, i, 1);
		char	   *identity_kind = val(c, i, 5);
		char	   *generated = val(c, i, 6);
		char	   *def = val(c, i, 7);
		char	   *coll = val(c, i, 3);
		StringInfoData col;

		initStringInfo(&col);
		appendStringInfoString(&col, val(c, i, 2));
		if (coll)
			appendStringInfo(&col, " COLLATE %s", coll);
		if (generated && generated[0] == 's' && def)
			appendStringInfo(&col, " GENERATED ALWAYS AS (%s) STORED", def);
		else if (identity_kind && identity_kind[0] != '\0')
		{
			const char *opts = identity_options(identity, name);

			appendStringInfo(&col, " GENERATED %s AS IDENTITY%s%s%s",
							 identity_kind[0] == 'a' ? "ALWAYS" : "BY DEFAULT",
							 opts ? " (" : "", opts ? opts : "", opts ? ")" : "");
		}
		else if (def)
			appendStringInfo(&col, " DEFAULT %s", def);
		if (strcmp(val(c, i, 4), "t") == 0)
			appendStringInfoString(&col, " NOT NULL");
		add_piece(c, "column", name, NULL, col.data);
		appendStringInfo(&c->pre, "%s\n    %s %s", i ? "," : "",
						 quote_identifier(name), col.data);
	}
	appendStringInfoString(&c->pre, "\n);\n");
}

static void
capture_constraints(DdlCtx *c)
{
	/* contype 'n' (NOT NULL, 18+) is the column's NOT NULL already */
	run(c, "SELECT c.conname, c.contype, pg_catalog.pg_get_constraintdef(c.oid) "
		"FROM pg_catalog.pg_constraint c "
		"WHERE c.conrelid = $1 AND c.contype IN ('c', 'p', 'u', 'x', 'f') "
		"ORDER BY c.contype = 'f', c.conname");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *name = val(c, i, 1);
		bool		fk = strcmp(val(c, i, 2), "f") == 0;
		char	   *def = val(c, i, 3);

		add_piece(c, fk ? "foreign_key" : "constraint", name, NULL, def);
		appendStringInfo(fk ? &c->fk : &c->post,
						 "ALTER TABLE ONLY %s ADD CONSTRAINT %s %s;\n",
						 c->qualname, quote_identifier(name), def);
	}
}

static void
capture_indexes(DdlCtx *c)
{
	run(c, "SELECT ci.relname, pg_catalog.pg_get_indexdef(i.indexrelid) "
		"FROM pg_catalog.pg_index i "
		"JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid "
		"WHERE i.indrelid = $1 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k "
		"  WHERE k.conindid = i.indexrelid AND k.conrelid = $1 "
		"    AND k.contype IN ('p', 'u', 'x')) "
		"ORDER BY ci.relname");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		add_piece(c, "index", val(c, i, 1), NULL, val(c, i, 2));
		appendStringInfo(&c->post, "%s;\n", val(c, i, 2));
	}
}

static void
capture_comments(DdlCtx *c)
{
	run(c, "SELECT NULL::pg_catalog.name, pg_catalog.obj_description($1, 'pg_class') "
		"UNION ALL "
		"SELECT a.attname, pg_catalog.col_description($1, a.attnum) "
		"FROM pg_catalog.pg_attribute a "
		"WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *col = val(c, i, 1);
		char	   *text = val(c, i, 2);

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
capture_security(DdlCtx *c)
{
	run(c, "SELECT r.relrowsecurity, r.relforcerowsecurity, r.relacl::pg_catalog.text, "
		"  r.relispartition, "
		"  (SELECT pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.relname) "
		"   FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_class p ON p.oid = h.inhparent "
		"   JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
		"   WHERE h.inhrelid = r.oid), "
		"  pg_catalog.pg_get_expr(r.relpartbound, r.oid) "
		"FROM pg_catalog.pg_class r WHERE r.oid = $1");
	if (SPI_processed == 1)
	{
		char	   *acl = val(c, 0, 3);

		if (strcmp(val(c, 0, 1), "t") == 0)
		{
			add_piece(c, "row_security", NULL, NULL, "enable");
			appendStringInfo(&c->post, "ALTER TABLE %s ENABLE ROW LEVEL SECURITY;\n",
							 c->qualname);
		}
		if (strcmp(val(c, 0, 2), "t") == 0)
		{
			add_piece(c, "row_security", NULL, NULL, "force");
			appendStringInfo(&c->post, "ALTER TABLE %s FORCE ROW LEVEL SECURITY;\n",
							 c->qualname);
		}
		if (acl)
			add_piece(c, "acl", NULL, NULL, acl);
		if (strcmp(val(c, 0, 4), "t") == 0 && val(c, 0, 5) && val(c, 0, 6))
		{
			add_piece(c, "partition_of", val(c, 0, 5), NULL, val(c, 0, 6));
			appendStringInfo(&c->post, "-- a partition of %s: ALTER TABLE %s ATTACH PARTITION %s %s;\n",
							 in_comment(val(c, 0, 5)), in_comment(val(c, 0, 5)),
							 in_comment(c->qualname), in_comment(val(c, 0, 6)));
		}
	}

	run(c, "SELECT p.polname, "
		"  CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, "
		"  CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' "
		"    WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, "
		"  pg_catalog.array_to_string(ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' "
		"    ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r)) END "
		"    FROM pg_catalog.unnest(p.polroles) r), ', '), "
		"  pg_catalog.pg_get_expr(p.polqual, p.polrelid), "
		"  pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) "
		"FROM pg_catalog.pg_policy p WHERE p.polrelid = $1 ORDER BY p.polname");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		StringInfoData pol;

		initStringInfo(&pol);
		appendStringInfo(&pol, "AS %s FOR %s TO %s", val(c, i, 2), val(c, i, 3),
						 val(c, i, 4));
		if (val(c, i, 5))
			appendStringInfo(&pol, " USING (%s)", val(c, i, 5));
		if (val(c, i, 6))
			appendStringInfo(&pol, " WITH CHECK (%s)", val(c, i, 6));
		add_piece(c, "policy", val(c, i, 1), NULL, pol.data);
		appendStringInfo(&c->post, "CREATE POLICY %s ON %s %s;\n",
						 quote_identifier(val(c, i, 1)), c->qualname, pol.data);
	}
}

void
ab_ddl_capture(Oid relid, const char *schema, const char *name,
			   const char *owner, MfTable *mt)
{
	AbQuery		q;
	DdlCtx		c;
	List	   *identity;
	StringInfoData all;

	memset(&c, 0, sizeof(c));
	c.q = &q;
	c.mt = mt;
	c.relid = relid;
	c.qualname = quote_qualified_identifier(schema, name);
	initStringInfo(&c.pre);
	initStringInfo(&c.post);
	initStringInfo(&c.fk);

	ab_query_begin(&q);
	identity = capture_sequences(&c);
	capture_columns(&c, identity);
	capture_constraints(&c);
	capture_indexes(&c);
	capture_comments(&c);
	capture_security(&c);
	ab_query_end(&q);

	initStringInfo(&all);
	appendStringInfo(&all, "SET client_encoding = '%s';\n", GetDatabaseEncodingName());
	appendStringInfo(&all, "-- %s, as aibackup found it at the backup's snapshot.\n"
					 "-- Load the data between the table and what follows it:\n"
					 "--   \\copy %s FROM 'data.csv' (FORMAT csv, HEADER)\n",
					 in_comment(c.qualname), in_comment(c.qualname));
	appendStringInfoString(&all, c.pre.data);
	appendStringInfoString(&all, c.post.data);
	if (c.fk.len > 0)
		appendStringInfo(&all, "-- foreign keys, once the tables they reference exist:\n%s",
						 c.fk.data);
	if (owner)
		appendStringInfo(&all, "-- ALTER TABLE %s OWNER TO %s;\n",
						 in_comment(c.qualname), in_comment(quote_identifier(owner)));
	mt->ddl = mf_dup(all.data);
}
