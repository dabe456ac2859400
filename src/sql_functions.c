/*
 * sql_functions.c
 *		SQL-callable entry points for backups: aibackup_backup_now(),
 *		aibackup_list_backups(), aibackup_list_tables(),
 *		aibackup_restore_table(), aibackup_take_over_folder(),
 *		aibackup_table_ddl(), aibackup_presign_table(),
 *		aibackup_presign_backup(), aibackup_restore_large_objects(),
 *		aibackup_read().  Thin: argument handling and result rows;
 *		the work is in jobs/ and pg/.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "core/manifest.h"
#include "jobs/backup.h"
#include "jobs/presign.h"
#include "jobs/read.h"
#include "jobs/restore.h"
#include "jobs/restore_lo.h"
#include "pg/repo.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"

PG_FUNCTION_INFO_V1(aibackup_backup_now);
PG_FUNCTION_INFO_V1(aibackup_list_backups);
PG_FUNCTION_INFO_V1(aibackup_list_tables);
PG_FUNCTION_INFO_V1(aibackup_restore_table);
PG_FUNCTION_INFO_V1(aibackup_take_over_folder);
PG_FUNCTION_INFO_V1(aibackup_table_ddl);
PG_FUNCTION_INFO_V1(aibackup_presign_table);
PG_FUNCTION_INFO_V1(aibackup_presign_backup);
PG_FUNCTION_INFO_V1(aibackup_restore_large_objects);
PG_FUNCTION_INFO_V1(aibackup_read);

Datum
aibackup_backup_now(PG_FUNCTION_ARGS)
{
	List	   *relids = NIL;
	AbBackupResult *res;
	bool		full;

	if (!PG_ARGISNULL(0))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
						  &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("the list of tables must not contain NULL")));
			relids = list_append_unique_oid(relids, DatumGetObjectId(elems[i]));
		}
		if (relids == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the list of tables is empty"),
					 errhint("Pass NULL to back up every table.")));
	}
	/* 0.3's aibackup_backup_now(regclass[]) has no second argument */
	full = PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);
	res = ab_backup_run(relids, false, full);
	ereport(NOTICE,
			(errmsg("backup \"%s\" %s: %d tables, " INT64_FORMAT " rows, " INT64_FORMAT " bytes raw, " INT64_FORMAT " bytes compressed%s",
					res->backup_id,
					strcmp(res->status, "ok") == 0 ? "finished" : "is partial",
					res->tables_ok, res->rows, res->raw_bytes, res->compressed_bytes,
					res->tables_failed ? psprintf(", %d tables failed", res->tables_failed) : ""),
			 res->tables_copied ?
			 errdetail("%d unchanged tables were copied from backup \"%s\".",
					   res->tables_copied, res->copied_from) : 0));
	PG_RETURN_TEXT_P(cstring_to_text(res->backup_id));
}

/* ISO 8601 text from a manifest -> timestamptz datum (NULL if absent) */
static Datum
ts_datum(const char *iso, bool *isnull)
{
	*isnull = (iso == NULL || iso[0] == '\0');
	if (*isnull)
		return (Datum) 0;
	return DirectFunctionCall3(timestamptz_in, CStringGetDatum(iso),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

Datum
aibackup_list_backups(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *dbname = get_database_name(MyDatabaseId);
	S3Client   *client;
	AbBackupWalk *w;
	AbBackup	b;

	InitMaterializedSRF(fcinfo, 0);
	ab_repo_check_folder_unique();
	client = ab_s3_client();
	w = ab_walk_begin(client, dbname, 0);
	while (ab_walk_next(w, &b))
	{
		AbBackupSummary *s = b.summary;
		Datum		values[8];
		bool		nulls[8] = {0};

		values[0] = CStringGetTextDatum(s->backup_id);
		values[1] = CStringGetTextDatum(s->status);
		values[2] = ts_datum(s->started_at, &nulls[2]);
		values[3] = ts_datum(s->finished_at, &nulls[3]);
		values[4] = Int32GetDatum(s->tables_ok);
		values[5] = Int64GetDatum(s->rows);
		values[6] = Int64GetDatum(s->raw_bytes);
		values[7] = Int64GetDatum(s->compressed_bytes);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	ab_walk_end(w);
	return (Datum) 0;
}

Datum
aibackup_list_tables(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *dbname = get_database_name(MyDatabaseId);
	S3Client   *client;
	Manifest   *m = NULL;

	InitMaterializedSRF(fcinfo, 0);
	if (!PG_ARGISNULL(0))
		ab_repo_check_backup_id(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	ab_repo_check_folder_unique();
	client = ab_s3_client();
	if (!PG_ARGISNULL(0))
		m = ab_restore_read_backup(client, dbname,
								   text_to_cstring(PG_GETARG_TEXT_PP(0)));
	else
	{
		AbBackupWalk *w = ab_walk_begin(client, dbname, AB_WALK_MANIFEST);
		AbBackup	b;

		if (ab_walk_next(w, &b))
			m = b.manifest;
		ab_walk_end(w);
		if (m == NULL)
			return (Datum) 0;	/* no backups: no rows */
	}

	for (int i = 0; i < m->ntables; i++)
	{
		const MfTable *t = &m->tables[i];
		Datum		values[9];
		bool		nulls[9] = {0};

		if (strcmp(t->status, "ok") != 0)
			continue;
		/* 0.3's definition has no copied_from: setDesc has 8 columns then */
		nulls[8] = (t->copied_from == NULL);
		values[8] = nulls[8] ? (Datum) 0 : CStringGetTextDatum(t->copied_from);
		values[0] = CStringGetTextDatum(m->backup_id);
		values[1] = CStringGetTextDatum(t->schema);
		values[2] = CStringGetTextDatum(t->name);
		values[3] = Int64GetDatum(t->rows);
		values[4] = Int64GetDatum(t->raw_bytes);
		values[5] = Int64GetDatum(t->compressed_bytes);
		values[6] = CStringGetTextDatum(t->object_key);
		nulls[7] = (t->sha256 == NULL);
		values[7] = nulls[7] ? (Datum) 0 : CStringGetTextDatum(t->sha256);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
aibackup_restore_table(PG_FUNCTION_ARGS)
{
	char	   *source;
	char	   *backup_id = NULL;
	char	   *target = NULL;
	AbRestoreOptions opts = {false, false, true};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source_table must not be NULL")));
	source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
		backup_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!PG_ARGISNULL(2))
		target = text_to_cstring(PG_GETARG_TEXT_PP(2));
	/* 0.3's options; the 0.1 and 0.2 function has three arguments */
	for (int i = 3; i < PG_NARGS(); i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not be NULL",
							i == 3 ? "foreign_keys" : i == 4 ? "grants" : "owner")));
	}
	if (PG_NARGS() == 6)
	{
		opts.foreign_keys = PG_GETARG_BOOL(3);
		opts.grants = PG_GETARG_BOOL(4);
		opts.owner = PG_GETARG_BOOL(5);
	}
	PG_RETURN_INT64(ab_restore_table(source, backup_id, target, &opts));
}

Datum
aibackup_take_over_folder(PG_FUNCTION_ARGS)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to take over the backup folder"),
				 errdetail("Only superusers may decide which cluster writes a database's backups.")));
	ab_backup_take_over_folder();
	PG_RETURN_VOID();
}

Datum
aibackup_table_ddl(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source_table must not be NULL")));
	PG_RETURN_TEXT_P(cstring_to_text(ab_restore_table_ddl(text_to_cstring(PG_GETARG_TEXT_PP(0)),
														  PG_ARGISNULL(1) ? NULL :
														  text_to_cstring(PG_GETARG_TEXT_PP(1)))));
}

/* (object, url) rows */
static void
signed_rows(FunctionCallInfo fcinfo, List *rows)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	foreach(lc, rows)
	{
		AbSignedObject *o = lfirst(lc);
		Datum		values[2];
		bool		nulls[2] = {0};

		values[0] = CStringGetTextDatum(o->object);
		values[1] = CStringGetTextDatum(o->url);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

static long
expires_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("expires must not be NULL")));
	return ab_presign_seconds(PG_GETARG_INTERVAL_P(argno));
}

/* aibackup_presign_table(source_table, backup_id, expires) */
Datum
aibackup_presign_table(PG_FUNCTION_ARGS)
{
	long		seconds;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source_table must not be NULL")));
	seconds = expires_arg(fcinfo, 2);
	signed_rows(fcinfo,
				ab_presign_table(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								 PG_ARGISNULL(1) ? NULL :
								 text_to_cstring(PG_GETARG_TEXT_PP(1)),
								 seconds));
	return (Datum) 0;
}

/* aibackup_presign_backup(backup_id, expires, schemas) */
Datum
aibackup_presign_backup(PG_FUNCTION_ARGS)
{
	long		seconds;
	List	   *schemas = NIL;

	InitMaterializedSRF(fcinfo, 0);
	seconds = expires_arg(fcinfo, 1);
	if (!PG_ARGISNULL(2))
	{
		Datum	   *elems;
		bool	   *enulls;
		int			n;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &enulls, &n);
		for (int i = 0; i < n; i++)
		{
			char	   *name;
			bool		seen = false;
			ListCell   *lc;

			if (enulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("schemas must not contain NULL")));
			name = TextDatumGetCString(elems[i]);
			foreach(lc, schemas)
				seen = seen || strcmp(lfirst(lc), name) == 0;
			if (!seen)
				schemas = lappend(schemas, name);
		}
		if (schemas == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("schemas must not be empty"),
					 errhint("Pass NULL for every schema.")));
	}
	signed_rows(fcinfo,
				ab_presign_backup(PG_ARGISNULL(0) ? NULL :
								  text_to_cstring(PG_GETARG_TEXT_PP(0)),
								  seconds, schemas));
	return (Datum) 0;
}

/* aibackup_restore_large_objects(backup_id, oids) */
Datum
aibackup_restore_large_objects(PG_FUNCTION_ARGS)
{
	ArrayType  *oids = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);

	if (oids != NULL && array_contains_nulls(oids))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("oids must not contain NULL")));
	if (oids != NULL && ArrayGetNItems(ARR_NDIM(oids), ARR_DIMS(oids)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("oids must not be empty"),
				 errhint("Pass NULL for every large object.")));
	PG_RETURN_INT64(ab_restore_large_objects(PG_ARGISNULL(0) ? NULL :
											 text_to_cstring(PG_GETARG_TEXT_PP(0)),
											 oids));
}

/*
 * aibackup_read(rowtype anyelement, backup_id text, source_table text):
 * SETOF the row type of the first argument (NULL::schema.table).
 */
Datum
aibackup_read(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);

	if (!OidIsValid(rowtype) || rowtype == RECORDOID || !type_is_rowtype(rowtype))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the first argument of aibackup_read() must be of a named row type"),
				 errhint("Pass NULL::schema.table, or NULL of a composite type with source_table.")));
	InitMaterializedSRF(fcinfo, 0);
	ab_read_table(rowtype,
				  PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
				  PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
				  rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}
