/*
 * read.c
 *		aibackup_read(): stream a table's object through the CSV reader and
 *		each column's input function into a tuplestore (which spills to
 *		disk past work_mem), as the caller, with a restore's read checks.
 *		The rows reach the caller only after the function returns, so an
 *		object that fails its SHA-256 at the end gives no row at all.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "core/csv.h"
#include "jobs/read.h"
#include "jobs/restore.h"
#include "jobs/restore_int.h"
#include "pg/repo.h"
#include "pg/s3_session.h"

#define AB_READ_CHUNK		(64 * 1024)

/* where a row's conversion stands, for the error context */
typedef struct ReadState
{
	const MfTable *table;
	const char *backup_id;
	int64		row;			/* 1-based, the header not counted */
	const char *column;
} ReadState;

static void
read_error_context(void *arg)
{
	ReadState  *st = arg;

	if (st->column)
		errcontext("row " INT64_FORMAT ", column \"%s\" of table \"%s.%s\" in backup \"%s\"",
				   st->row, st->column, st->table->schema, st->table->name,
				   st->backup_id);
	else
		errcontext("row " INT64_FORMAT " of table \"%s.%s\" in backup \"%s\"",
				   st->row, st->table->schema, st->table->name, st->backup_id);
}

/* the qualified name of the table whose row type typid is */
static char *
source_of_rowtype(Oid typid)
{
	Oid			relid = typeidTypeRelid(typid);
	char		kind = OidIsValid(relid) ? get_rel_relkind(relid) : '\0';

	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("type %s is not the row type of a table", format_type_be(typid)),
				 errhint("Name the backed-up table with source_table.")));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* for each of the backup's columns, the row type's attribute it fills (-1: none) */
static int *
match_columns(const MfTable *t, TupleDesc desc, const char *backup_id)
{
	int		   *map = palloc(sizeof(int) * Max(t->ncolumns, 1));
	int			matched = 0;

	for (int j = 0; j < t->ncolumns; j++)
	{
		map[j] = -1;
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped &&
				strcmp(NameStr(att->attname), t->columns[j].name) == 0)
			{
				map[j] = i;
				matched++;
				break;
			}
		}
	}
	if (matched == 0 && t->ncolumns > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("no column of the row type is a column of table \"%s.%s\" in backup \"%s\"",
						t->schema, t->name, backup_id),
				 errhint("Columns are matched by name; aibackup_table_ddl() shows the backed-up ones.")));
	return map;
}

/*
 * Reading a value into a domain runs the domain's CHECKs, which are code of
 * the domain's owner, as the caller: a superuser (or a role with powers)
 * "just looking" at a backup must not run another role's code.  An
 * ordinary role runs it as casting to the domain in SQL would.
 */
static void
check_code_owners(TupleDesc desc, const int *map, int ncolumns)
{
	if (ab_restore_ordinary_role(GetUserId()))
		return;
	for (int j = 0; j < ncolumns; j++)
	{
		Form_pg_attribute att;
		Oid			owner;

		if (map[j] < 0)
			continue;
		att = TupleDescAttr(desc, map[j]);
		owner = ab_restore_type_code_owner(att->atttypid, 0);
		if (OidIsValid(owner) && owner != GetUserId())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot read column \"%s\" of type %s with the rights of role \"%s\": its checks are code of role \"%s\"",
							NameStr(att->attname),
							format_type_be_qualified(att->atttypid),
							GetUserNameFromId(GetUserId(), false),
							GetUserNameFromId(owner, false)),
					 errdetail("Reading the rows into that type would run that role's functions with superuser or other special rights."),
					 errhint("Read with a row type whose column has the domain's base type, or as role \"%s\".",
							 GetUserNameFromId(owner, false))));
	}
}

/* one CSV record into one row of ts */
static void
put_row(ReadState *st, const CsvRecord *rec, const int *map, FmgrInfo *in,
		Oid *ioparams, TupleDesc desc, int encoding, Tuplestorestate *ts,
		Datum *values, bool *nulls)
{
	const MfTable *t = st->table;

	/* COPY writes a row of no columns as an empty line: one NULL field */
	if (!(t->ncolumns == 0 && rec->nfields == 1 && rec->nulls[0]) &&
		rec->nfields != t->ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("backup object of table \"%s.%s\" has %d fields in row " INT64_FORMAT ", the manifest records %d columns",
						t->schema, t->name, rec->nfields, st->row, t->ncolumns)));
	for (int i = 0; i < desc->natts; i++)
		nulls[i] = true;
	for (int j = 0; j < t->ncolumns; j++)
	{
		int			i = map[j];
		char	   *text;

		if (i < 0 || rec->nulls[j])
			continue;
		st->column = t->columns[j].name;
		text = pg_any_to_server(rec->fields[j], (int) rec->lens[j], encoding);

		values[i] = InputFunctionCall(&in[i], text, ioparams[i],
									  TupleDescAttr(desc, i)->atttypmod);
		nulls[i] = false;
	}
	st->column = NULL;
	tuplestore_putvalues(ts, desc, values, nulls);
}

/* every record of the stream into ts; the end only once its checksum matched */
static void
read_rows(ReadState *st, RestoreStream *rs, const int *map, FmgrInfo *in,
		  Oid *ioparams, TupleDesc desc, Tuplestorestate *ts)
{
	const MfTable *t = st->table;
	char	   *buf = palloc(AB_READ_CHUNK);
	int			encoding = ab_restore_stream_encoding(rs);
	Datum	   *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "aibackup_read row",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = CurrentMemoryContext;
	CsvReader  *volatile csv = csv_new(MaxAllocSize);
	ErrorContextCallback ctx;
	bool		header = true;

	if (csv == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	ctx.callback = read_error_context;
	ctx.arg = st;
	ctx.previous = error_context_stack;
	error_context_stack = &ctx;
	PG_TRY();
	{
		for (;;)
		{
			CsvRecord	rec;
			int			rc = csv_next(csv, &rec);

			if (rc == 0)
			{
				size_t		n = ab_restore_stream_read(rs, buf, AB_READ_CHUNK);

				CHECK_FOR_INTERRUPTS();
				if (n == 0)
				{
					csv_end(csv);
					if (csv_next(csv, &rec) == 0)
						break;	/* the end, checksum verified */
					continue;
				}
				if (!csv_feed(csv, buf, n))
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("backup object of table \"%s.%s\" cannot be read: %s",
									t->schema, t->name, csv_error(csv))));
				continue;
			}
			if (rc < 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("backup object of table \"%s.%s\" is not valid CSV: %s",
								t->schema, t->name, csv_error(csv))));
			if (header)
			{
				header = false;
				continue;
			}
			st->row++;
			MemoryContextSwitchTo(rowcxt);
			put_row(st, &rec, map, in, ioparams, desc, encoding, ts,
					values, nulls);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(rowcxt);
		}
	}
	PG_FINALLY();
	{
		csv_free(csv);
	}
	PG_END_TRY();
	error_context_stack = ctx.previous;
	MemoryContextDelete(rowcxt);
}

int64
ab_read_table(Oid rowtype, const char *backup_id, const char *source,
			  Tuplestorestate *ts, TupleDesc desc)
{
	Manifest   *m = NULL;
	const MfTable *t;
	RestoreStream *rs;
	ReadState	st = {0};
	int		   *map;
	FmgrInfo   *in = palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1));
	Oid		   *ioparams = palloc0(sizeof(Oid) * Max(desc->natts, 1));
	MemoryContext oldcxt = CurrentMemoryContext;
	int			nestlevel;

	if (source == NULL)
		source = source_of_rowtype(rowtype);
	t = ab_restore_find_table(source, backup_id, &m);
	if (ab_repo_is_partitioned(m, t) || mf_system_schema(t->schema))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s.%s\" of backup \"%s\" has no rows of its own to read",
						t->schema, t->name, m->backup_id),
				 errhint("Read its partitions, one by one.")));
	ab_restore_check_read(m, t, "read");
	map = match_columns(t, desc, m->backup_id);
	check_code_owners(desc, map, t->ncolumns);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			func;

		if (att->attisdropped)
			continue;
		getTypeInputInfo(att->atttypid, &func, &ioparams[i]);
		fmgr_info(func, &in[i]);
	}

	/* COPY FROM's own settings for reading values (pg/copy_in.c) */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("xmloption", "content", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR, false);

	st.table = t;
	st.backup_id = m->backup_id;
	rs = ab_restore_stream_open(ab_s3_client(), m, t);
	PG_TRY();
	{
		read_rows(&st, rs, map, in, ioparams, desc, ts);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		const char *why = NULL;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();

		/*
		 * A value no input function or CHECK accepts, or a record that is not
		 * CSV, may come from a damaged object: then say that instead.
		 */
		if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED &&
			edata->sqlerrcode != ERRCODE_ADMIN_SHUTDOWN &&
			edata->sqlerrcode != ERRCODE_OUT_OF_MEMORY &&
			(why = ab_restore_stream_verify_rest(rs)) != NULL)
		{
			FlushErrorState();
			ab_restore_stream_close(rs);
			ab_restore_stream_corrupt(rs, why);
		}
		ab_restore_stream_close(rs);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ab_restore_stream_close(rs);
	AtEOXact_GUC(false, nestlevel);
	if (st.row != t->rows)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("backup object of table \"%s.%s\" holds " INT64_FORMAT " rows, the manifest records " INT64_FORMAT,
						t->schema, t->name, st.row, t->rows)));
	return st.row;
}
