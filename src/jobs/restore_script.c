/*-------------------------------------------------------------------------
 *
 * restore_script.c
 *		restore.sql and restore/<schema>.sql: a backup that psql alone
 *		restores, for people who take their data without aibackup.
 *
 * A backup writes them after its tables and before its manifest, from the
 * parts of each table's script (ddl.c).  Run by psql in a folder holding
 * the backup's objects, with the data gunzipped, a script does: the
 * settings pg_dump's scripts start with; the schemas; the sequences no
 * table of the script owns (their options are not recorded: they get the
 * defaults), then those the tables own (before any table: a default may
 * use another table's); then each table in a transaction of its own
 * (CREATE TABLE, a \copy of its data, its constraints, indexes, comments,
 * row security and policies), so that thousands of tables need no more
 * locks than one; the sequences' values.  Up to there it stops at the
 * first error.  Then what may fail alone: the large objects (restore.sql
 * only; their files need more rights to sign than the tables'), and the
 * foreign keys, each on its own (the table one references may not be
 * there: it failed, was excluded, or is in a schema not downloaded); psql
 * reports such a failure and goes on.  Partitioned tables come before the
 * tables (each parent before its children, each attached to its parent
 * when that is in the script); a partition is created as a table of its
 * own, loaded, completed, then attached in the same transaction, as
 * pg_dump does for a partitioned table's data.
 *
 * The scripts are in the database's encoding, as the data is, and say so
 * to psql.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/builtins.h"

#include "jobs/restore_script.h"
#include "pg/repo.h"
#include "pg/s3_session.h"

/* a sequence a table of the backup owns: serial, or an identity column's */
typedef struct Owned
{
	const char *seq;			/* quoted and qualified */
	int			table;			/* index in m->tables, or m->partitioned */
	bool		partitioned;	/* which */
	const MfDdl *piece;			/* kind "sequence" or "identity" */
} Owned;

typedef struct Script
{
	const Manifest *m;
	const AbDdlParts *parts;
	const AbDdlParts *pparts;	/* of m->partitioned */
	Owned	   *owned;			/* sorted by seq */
	int			nowned;
	char	  **seq_qual;		/* m->sequences[i], quoted and qualified */
	const Owned **seq_owner;	/* and who owns it, or NULL */
} Script;

/* the data file of t, <schema>.<table>.csv as downloaded and gunzipped */
static char *
data_file(const MfTable *t)
{
	const char *base = strrchr(t->object_key, '/');
	const char *file = base ? base + 1 : t->object_key;
	size_t		n = strlen(file);

	Assert(n > 3 && strcmp(file + n - 3, ".gz") == 0);
	return pnstrdup(file, n - 3);
}

/*
 * The large objects, in plain SQL: their catalogs' rows into temporary
 * tables, then lo_create, lo_put page by page (of the source's page size),
 * and lo_truncate those whose last page is empty (grown by truncation).  Owners
 * and privileges are the restoring role's: roles are the cluster's.
 */
static void
append_large_objects(StringInfo buf, const Script *s)
{
	const MfTable *meta = mf_find_table(s->m, "pg_catalog", "pg_largeobject_metadata");
	const MfTable *data = mf_find_table(s->m, "pg_catalog", "pg_largeobject");

	if (meta == NULL || data == NULL || s->m->lo_page_size <= 0 ||
		strcmp(meta->status, "ok") != 0 || strcmp(data->status, "ok") != 0)
		return;
	appendStringInfo(buf,
					 "-- large objects, owned by whoever runs this\n"
					 "BEGIN;\n"
					 "CREATE TEMPORARY TABLE aibackup_lo_meta (oid pg_catalog.oid, lomowner pg_catalog.oid, lomacl pg_catalog.text);\n"
					 "\\copy aibackup_lo_meta FROM '%s' WITH (FORMAT csv, HEADER true)\n"
					 "CREATE TEMPORARY TABLE aibackup_lo_data (loid pg_catalog.oid, pageno pg_catalog.int4, data pg_catalog.bytea);\n"
					 "\\copy aibackup_lo_data FROM '%s' WITH (FORMAT csv, HEADER true)\n"
					 "SELECT pg_catalog.count(pg_catalog.lo_create(oid)) AS large_objects FROM pg_temp.aibackup_lo_meta;\n"
					 "SELECT pg_catalog.count(pg_catalog.lo_put(loid, pageno::pg_catalog.int8 * " INT64_FORMAT ", data)) AS pages "
					 "FROM pg_temp.aibackup_lo_data;\n"
					 "SELECT pg_catalog.count(pg_catalog.lo_truncate64(pg_catalog.lo_open(d.loid, 131072), "
					 "d.pageno::pg_catalog.int8 * " INT64_FORMAT ")) AS lengths "
					 "FROM pg_temp.aibackup_lo_data d WHERE pg_catalog.length(d.data) = 0 AND d.pageno = "
					 "(SELECT pg_catalog.max(x.pageno) FROM pg_temp.aibackup_lo_data x WHERE x.loid = d.loid);\n"
					 "DROP TABLE pg_temp.aibackup_lo_meta, pg_temp.aibackup_lo_data;\n"
					 "COMMIT;\n",
					 data_file(meta), data_file(data),
					 (int64) s->m->lo_page_size, (int64) s->m->lo_page_size);
}

/*
 * Table i goes into the script for schema (NULL: all).  An extension's
 * configuration table does not: CREATE EXTENSION makes it (the script says
 * how to load it then).
 */
static bool
in_script(const Script *s, int i, const char *schema)
{
	const MfTable *t = &s->m->tables[i];

	return strcmp(t->status, "ok") == 0 && s->parts[i].pre != NULL &&
		t->extension == NULL && !mf_system_schema(t->schema) &&
		(schema == NULL || strcmp(t->schema, schema) == 0);
}

/* partitioned table i goes into the script for schema (NULL: all) */
static bool
parent_in_script(const Script *s, int i, const char *schema)
{
	const MfTable *t = &s->m->partitioned[i];

	return s->pparts[i].pre != NULL &&
		(schema == NULL || strcmp(t->schema, schema) == 0);
}

/*
 * "ALTER TABLE parent ATTACH PARTITION t bound": once t is complete, when
 * t was a partition of a table this script creates (else its own script's
 * comment says what it was).
 */
static void
append_attach(StringInfo buf, const Script *s, const MfTable *t,
			  const char *schema)
{
	for (int k = 0; k < t->nddl; k++)
	{
		const MfDdl *d = &t->ddls[k];

		if (strcmp(d->kind, "partition_of") != 0 || d->name == NULL)
			continue;
		for (int i = 0; i < s->m->npartitioned; i++)
		{
			const MfTable *p = &s->m->partitioned[i];

			if (parent_in_script(s, i, schema) &&
				strcmp(quote_qualified_identifier(p->schema, p->name), d->name) == 0)
				appendStringInfo(buf, "ALTER TABLE %s ATTACH PARTITION %s %s;\n",
								 d->name, quote_qualified_identifier(t->schema, t->name),
								 d->sql);
		}
	}
}

/* what to do by hand for the tables of extensions */
static void
append_extension_tables(StringInfo buf, const Script *s, const char *schema)
{
	for (int i = 0; i < s->m->ntables; i++)
	{
		const MfTable *t = &s->m->tables[i];

		if (t->extension != NULL && strcmp(t->status, "ok") == 0 &&
			(schema == NULL || strcmp(t->schema, schema) == 0))
			appendStringInfo(buf, "-- %s belongs to extension %s: after CREATE EXTENSION, TRUNCATE it and \\copy its data in.\n",
							 ab_ddl_in_comment(quote_qualified_identifier(t->schema, t->name)),
							 ab_ddl_in_comment(quote_identifier(t->extension)));
	}
	for (int i = 0; i < s->m->nsequences; i++)
	{
		const MfSequence *q = &s->m->sequences[i];

		if (q->extension != NULL && (schema == NULL || strcmp(q->schema, schema) == 0))
			appendStringInfo(buf, "-- and after CREATE EXTENSION: SELECT pg_catalog.setval(%s, " INT64_FORMAT ", %s);\n",
							 ab_ddl_in_comment(quote_literal_cstr(s->seq_qual[i])),
							 (int64) q->last_value, q->is_called ? "true" : "false");
	}
}

static int
cmp_owned(const void *a, const void *b)
{
	return strcmp(((const Owned *) a)->seq, ((const Owned *) b)->seq);
}

static const Owned *
find_owned(const Script *s, const char *seq)
{
	Owned		probe = {seq, 0, false, NULL};

	return bsearch(&probe, s->owned, s->nowned, sizeof(Owned), cmp_owned);
}

static bool
has_line_break(const char *p)
{
	return strpbrk(p, "\r\n") != NULL;
}

/*
 * \copy is a psql command, which ends at the end of its line: a name with a
 * line break cannot be written in one, and would make the rest of the line
 * a statement.
 */
static bool
copyable(const MfTable *t)
{
	if (has_line_break(t->schema) || has_line_break(t->name))
		return false;
	for (int i = 0; i < t->ncolumns; i++)
	{
		if (has_line_break(t->columns[i].name))
			return false;
	}
	return true;
}

/* the \copy of table i's data file, <schema>.<table>.csv as downloaded */
static void
append_copy(StringInfo buf, const MfTable *t)
{
	const char *file = data_file(t);

	if (!copyable(t))
	{
		appendStringInfo(buf, "-- %s is not loaded: a line break in its name or a column's cannot be written in \\copy.\n"
						 "\\echo 'a table was not loaded (see the comment in the script): load %s with COPY ... FROM STDIN'\n",
						 ab_ddl_in_comment(quote_qualified_identifier(t->schema, t->name)),
						 file);
		return;
	}
	appendStringInfo(buf, "\\copy %s ", quote_qualified_identifier(t->schema, t->name));
	for (int i = 0; i < t->ncolumns; i++)
		appendStringInfo(buf, "%s%s", i ? ", " : "(", quote_identifier(t->columns[i].name));
	/* the key's characters are A-Z a-z 0-9 _ - . %: nothing to quote */
	appendStringInfo(buf, "%sFROM '%s' WITH (FORMAT csv, HEADER true)\n",
					 t->ncolumns ? ") " : "", file);
}

/*
 * Is sequence i one of no table, to create with the defaults in the script
 * for schema (NULL: all)?  Not an extension's: CREATE EXTENSION makes it.
 */
static bool
free_sequence(const Script *s, int i, const char *schema)
{
	const MfSequence *q = &s->m->sequences[i];

	return s->seq_owner[i] == NULL && q->extension == NULL &&
		(schema == NULL || strcmp(q->schema, schema) == 0);
}

/* the value sequence i had when the backup ended (after its data) */
static void
append_setval(StringInfo buf, const Script *s, int i, const char *schema)
{
	const MfSequence *q = &s->m->sequences[i];
	const char *qual = s->seq_qual[i];
	const Owned *o = s->seq_owner[i];
	const char *called = q->is_called ? "true" : "false";

	if (o != NULL)
	{
		const MfTable *t = &s->m->tables[o->table];

		if (o->partitioned)
			t = &s->m->partitioned[o->table];
		if (o->partitioned ? !parent_in_script(s, o->table, schema) :
			!in_script(s, o->table, schema))
			return;				/* its table is not in this script */
		if (strcmp(o->piece->kind, "identity") == 0)
			/* CREATE TABLE names the sequence itself */
			appendStringInfo(buf, "SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(%s, %s), " INT64_FORMAT ", %s);\n",
							 quote_literal_cstr(quote_qualified_identifier(t->schema, t->name)),
							 quote_literal_cstr(o->piece->target),
							 (int64) q->last_value, called);
		else
			appendStringInfo(buf, "SELECT pg_catalog.setval(%s, " INT64_FORMAT ", %s);\n",
							 quote_literal_cstr(qual), (int64) q->last_value, called);
		return;
	}
	if (!free_sequence(s, i, schema))
		return;					/* another schema's; an extension's */
	/* created with the defaults: set only a value they allow */
	appendStringInfo(buf, "SELECT pg_catalog.setval(s.seqrelid, " INT64_FORMAT ", %s) "
					 "FROM pg_catalog.pg_sequence s WHERE s.seqrelid = %s::pg_catalog.regclass "
					 "AND " INT64_FORMAT " BETWEEN s.seqmin AND s.seqmax;\n",
					 (int64) q->last_value, called, quote_literal_cstr(qual),
					 (int64) q->last_value);
}

static int
cmp_name_cells(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

/*
 * The schemas of the tables a script creates (of schema only, or all) and
 * of the sequences it creates, sorted, once each; with_extensions, also
 * those of extensions' tables (which have a script of their schema too, but
 * whose schema the extension creates).
 */
static List *
script_schemas(const Script *s, const char *schema, bool with_extensions)
{
	List	   *names = NIL;
	List	   *out = NIL;
	const char *last = NULL;
	ListCell   *lc;

	for (int i = 0; i < s->m->ntables; i++)
	{
		const MfTable *t = &s->m->tables[i];

		if (in_script(s, i, schema) ||
			(with_extensions && t->extension != NULL && strcmp(t->status, "ok") == 0 &&
			 (schema == NULL || strcmp(t->schema, schema) == 0)))
			names = lappend(names, t->schema);
	}
	for (int i = 0; i < s->m->npartitioned; i++)
	{
		if (parent_in_script(s, i, schema))
			names = lappend(names, s->m->partitioned[i].schema);
	}
	for (int i = 0; i < s->m->nsequences; i++)
	{
		if (free_sequence(s, i, schema))
			names = lappend(names, s->m->sequences[i].schema);
	}
	list_sort(names, cmp_name_cells);
	foreach(lc, names)
	{
		if (last == NULL || strcmp(last, lfirst(lc)) != 0)
			out = lappend(out, lfirst(lc));
		last = lfirst(lc);
	}
	return out;
}

/* the script of every table (schema NULL), or of one schema's */
static char *
script_text(const Script *s, const char *schema, const char *relpath)
{
	const Manifest *m = s->m;
	StringInfoData buf;
	bool		fks = false;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "-- aibackup backup %s of database %s: %s.\n",
					 m->backup_id, ab_ddl_in_comment(quote_identifier(m->database)),
					 schema ? psprintf("the tables of schema %s",
									   ab_ddl_in_comment(quote_identifier(schema))) :
					 "every table");
	appendStringInfo(&buf,
					 "-- In a folder holding the backup's objects, into an empty database:\n"
					 "--   gunzip *.csv.gz\n"
					 "--   psql -X -d NEW_DATABASE -f %s\n"
					 "-- It stops at the first error; each table is in when its COMMIT is.\n"
					 "\\set ON_ERROR_STOP on\n", relpath);
	ab_ddl_script_settings(&buf, m->server_encoding);
	append_extension_tables(&buf, s, schema);

	foreach(lc, script_schemas(s, schema, false))
		appendStringInfo(&buf, "CREATE SCHEMA IF NOT EXISTS %s;\n",
						 quote_identifier(lfirst(lc)));
	for (int i = 0; i < m->nsequences; i++)
		if (free_sequence(s, i, schema))
			appendStringInfo(&buf, "CREATE SEQUENCE IF NOT EXISTS %s;  -- options not recorded\n",
							 s->seq_qual[i]);
	for (int i = 0; i < m->npartitioned; i++)
		if (parent_in_script(s, i, schema))
			appendStringInfoString(&buf, s->pparts[i].seq);
	for (int i = 0; i < m->ntables; i++)
		if (in_script(s, i, schema))
			appendStringInfoString(&buf, s->parts[i].seq);

	/* partitioned tables, each parent before its children: no data */
	for (int i = 0; i < m->npartitioned; i++)
	{
		if (!parent_in_script(s, i, schema))
			continue;
		appendStringInfoString(&buf, "BEGIN;\n");
		appendStringInfoString(&buf, s->pparts[i].pre);
		appendStringInfoString(&buf, s->pparts[i].post);
		append_attach(&buf, s, &m->partitioned[i], schema);
		appendStringInfoString(&buf, "COMMIT;\n");
		fks = fks || s->pparts[i].fk[0] != '\0';
	}
	for (int i = 0; i < m->ntables; i++)
	{
		if (!in_script(s, i, schema))
			continue;
		appendStringInfoString(&buf, "BEGIN;\n");
		appendStringInfoString(&buf, s->parts[i].pre);
		append_copy(&buf, &m->tables[i]);
		appendStringInfoString(&buf, s->parts[i].post);
		append_attach(&buf, s, &m->tables[i], schema);
		appendStringInfoString(&buf, "COMMIT;\n");
		fks = fks || s->parts[i].fk[0] != '\0';
	}
	for (int i = 0; i < m->nsequences; i++)
		append_setval(&buf, s, i, schema);

	/*
	 * What may fail alone: the large objects (their files may not have been
	 * downloaded: signing them needs more than reading the tables), each
	 * foreign key (the table it references may not be here).
	 */
	appendStringInfoString(&buf, "-- from here on, what fails does so alone\n"
						   "\\set ON_ERROR_STOP off\n");
	if (schema == NULL)
		append_large_objects(&buf, s);
	if (fks)
	{
		appendStringInfoString(&buf, "-- foreign keys, each on its own\n");
		for (int i = 0; i < m->npartitioned; i++)
			if (parent_in_script(s, i, schema))
				appendStringInfoString(&buf, s->pparts[i].fk);
		for (int i = 0; i < m->ntables; i++)
			if (in_script(s, i, schema))
				appendStringInfoString(&buf, s->parts[i].fk);
	}
	return buf.data;
}

/* the script for schema (NULL: every table) into its object */
static void
put_script(S3Client *c, const Script *s, const char *schema)
{
	const Manifest *m = s->m;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "aibackup restore script",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	char	   *key = ab_repo_script_key(m->database, m->backup_id, schema);
	char	   *folder = ab_repo_backup_folder(m->database, m->backup_id);
	char	   *text = script_text(s, schema, key + strlen(folder));
	S3Error		err;

	if (!s3_put_object(c, key, text, strlen(text), "application/sql", &err))
		ab_s3_report(&err);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* the sequences entry t (index i) owns, into s->owned */
static void
add_owned(Script *s, const MfTable *t, int i, bool partitioned, int *cap)
{
	for (int k = 0; k < t->nddl; k++)
	{
		const MfDdl *d = &t->ddls[k];

		if (strcmp(d->kind, "sequence") == 0 || strcmp(d->kind, "identity") == 0)
		{
			if (s->nowned == *cap)
				s->owned = repalloc(s->owned, sizeof(Owned) * (*cap *= 2));
			s->owned[s->nowned].seq = d->name;
			s->owned[s->nowned].table = i;
			s->owned[s->nowned].partitioned = partitioned;
			s->owned[s->nowned].piece = d;
			s->nowned++;
		}
	}
}

void
ab_restore_scripts_put(S3Client *c, Manifest *m, const AbDdlParts *parts,
					   const AbDdlParts *pparts)
{
	Script		s = {m, parts, pparts, NULL, 0, NULL, NULL};
	int			cap = 16;
	List	   *schemas;
	ListCell   *lc;

	/* without definitions (they could not be read) there is no script */
	for (int i = 0; i < m->ntables; i++)
	{
		if (strcmp(m->tables[i].status, "ok") == 0 && parts[i].pre == NULL &&
			!mf_system_schema(m->tables[i].schema))
			return;
	}

	s.owned = palloc(sizeof(Owned) * cap);
	for (int i = 0; i < m->ntables; i++)
		add_owned(&s, &m->tables[i], i, false, &cap);
	for (int i = 0; i < m->npartitioned; i++)
		add_owned(&s, &m->partitioned[i], i, true, &cap);
	qsort(s.owned, s.nowned, sizeof(Owned), cmp_owned);
	s.seq_qual = palloc(sizeof(char *) * (m->nsequences + 1));
	s.seq_owner = palloc(sizeof(Owned *) * (m->nsequences + 1));
	for (int i = 0; i < m->nsequences; i++)
	{
		s.seq_qual[i] = quote_qualified_identifier(m->sequences[i].schema,
												   m->sequences[i].name);
		s.seq_owner[i] = find_owned(&s, s.seq_qual[i]);
	}

	put_script(c, &s, NULL);
	schemas = script_schemas(&s, NULL, true);
	foreach(lc, schemas)
	{
		CHECK_FOR_INTERRUPTS();
		put_script(c, &s, lfirst(lc));
	}
	m->restore_scripts = true;
}
