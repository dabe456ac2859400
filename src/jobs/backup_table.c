/*
 * backup_table.c
 *		One table of a backup: COPY TO -> gzip -> SHA-256 -> S3 (or a copy
 *		inside S3 of an unchanged table's object, incremental.c), its
 *		definition beside it, and its manifest entry, in a subtransaction of
 *		its own.  The backup's process runs it for every table
 *		(aibackup.max_parallel_tables = 1), or table workers do
 *		(table_workers.c).
 *
 * A table that fails on its own (an output function that errors, say) is
 * recorded as failed and the others go on.  So does an S3 error that
 * belongs to the table's object and would recur on every run (a key over
 * S3's 1024 bytes, an object that outgrows its parts:
 * s3_error_is_per_object).  A failure of S3 itself, a cancel, a shutdown
 * or running out of memory is an ERROR: the backup as a whole fails.
 *
 * Memory: one part buffer (see s3_choose_part_size) plus the deflater's
 * slots (about 9 MiB, core/gzdeflate.c) per table, whatever the table's
 * size.  The S3 and deflate objects are malloc'd by the core; they are
 * freed on success, on failure, and by a reset callback of the table's
 * memory context should an error escape both.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "core/digest.h"
#include "core/gzstream.h"
#include "core/manifest.h"
#include "core/s3.h"
#include "jobs/backup_table.h"
#include "jobs/incremental.h"
#include "pg/copy.h"
#include "pg/repo.h"
#include "pg/s3_session.h"
#include "pg/settings.h"
#include "pg/state.h"
#include "pg/subxact.h"

#define AB_MIN_PART_SIZE		(16 * 1024 * 1024)

/*
 * How much larger than the table on disk its object may be, for the part
 * size.  gzip'd CSV is rarely larger than the heap and TOAST it comes from
 * (s3_choose_part_size leaves room for twice the estimate on top); plain
 * CSV (aibackup.compression_level = 0) is often several times larger, with
 * TOAST values decompressed and bytea in hex.
 */
#define AB_EST_FACTOR_UNCOMPRESSED	4

/* the streaming state of one table */
typedef struct TableJob
{
	S3Client   *client;
	S3Upload   *upload;
	GzsDeflate *gz;
	DigestSha256 *sha;
	S3Error		err;
	bool		s3_error;		/* err holds an error from S3 */
	bool		s3_failed;		/* ... that fails the backup, not the table */
	const AbTable *table;
	const Manifest *base;		/* the backup unchanged tables are copied
								 * from, or NULL */
	bool		copied;			/* this table was */
	int64		est_bytes;		/* estimate the part size was chosen for */
	size_t		part_size;
	int64		raw_bytes;
	int64		compressed_bytes;
	int64		reported;		/* raw bytes at the last progress report */
	int64		done_raw;		/* totals of the tables before this one */
	int64		done_compressed;
	AbThrottle *throttle;		/* the backup's aibackup.max_rate */
} TableJob;


/*
 * A name for the manifest: it must have a UTF-8 spelling (the manifest and
 * the keys are UTF-8, see repo.c), or this table cannot be backed up.
 */
char *
ab_mf_name(const char *s)
{
	if (s != NULL)
		(void) ab_repo_to_utf8(s, GetDatabaseEncoding(), false);
	return ab_repo_mstrdup(s);
}

/*
 * The owner's name for the manifest: a role is cluster-wide, so its name
 * may have no spelling in this database's encoding.  Then the backup
 * records no owner (a restore keeps the caller as owner) and goes on.
 */
char *
ab_mf_owner(const char *s)
{
	if (s != NULL && ab_repo_to_utf8(s, GetDatabaseEncoding(), true) == NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("aibackup: the owner of a table is recorded as unknown: the role's name has no UTF-8 spelling in encoding \"%s\"",
						GetDatabaseEncodingName())));
		return NULL;
	}
	return ab_repo_mstrdup(s);
}

static int
gz_to_s3(void *arg, const void *data, size_t len)
{
	TableJob   *j = arg;

	j->compressed_bytes += len;
	if (!digest_sha256_update(j->sha, data, len))
	{
		memset(&j->err, 0, sizeof(j->err));
		return 1;
	}
	if (!s3_upload_write(j->upload, data, len, &j->err))
	{
		j->s3_error = true;
		return 1;
	}
	return 0;
}

/*
 * Report the S3 error in j->err.  One that belongs to this table's object
 * fails the table alone; any other fails the backup (j->s3_failed).
 */
static void
table_s3_report(TableJob *j)
{
	const AbTable *t = j->table;

	if (!s3_error_is_per_object(&j->err))
	{
		j->s3_failed = true;
		ab_s3_report(&j->err);
	}

	/* the key was checked before the copy: only the parts can run out */
	if (j->err.kind == S3ERR_LIMIT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("table \"%s.%s\" outgrew its S3 upload: its object needs more than %d parts of %zu MB",
						t->schema, t->name, S3_MAX_PARTS,
						j->part_size / (1024 * 1024)),
				 errdetail("Every part but the last must have the same size: it was chosen before the copy from the table's size on disk (" INT64_FORMAT " MB), for an object of up to " INT64_FORMAT " MB.",
						   t->est_bytes / (1024 * 1024),
						   (int64) (j->part_size / (1024 * 1024)) * S3_MAX_PARTS),
				 ab_compression_level == 0 ?
				 errhint("Set aibackup.compression_level above 0, or leave the table out with aibackup.exclude.") :
				 errhint("Leave the table out with aibackup.exclude and back it up by other means; the other tables are backed up.")));
	ab_s3_report(&j->err);
}

static void
table_job_fail(TableJob *j, const char *what)
{
	if (j->s3_error)
		table_s3_report(j);
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not %s table data: %s", what,
					j->gz ? gzs_deflate_error(j->gz) : "out of memory")));
}

static void
copy_to_gz(void *arg, const char *data, size_t len)
{
	TableJob   *j = arg;

	j->raw_bytes += len;
	if (!gzs_deflate_write(j->gz, data, len))
		table_job_fail(j, "compress");
	ab_throttle(j->throttle, len);
	/* progress every 4 MB, so the view moves during a long table */
	if (j->raw_bytes - j->reported >= 4 * 1024 * 1024)
	{
		j->reported = j->raw_bytes;
		ab_progress_bytes(j->done_raw + j->raw_bytes,
						  j->done_compressed + j->compressed_bytes,
						  j->done_compressed + s3_upload_bytes_sent(j->upload));
	}
}

static void
table_job_free(TableJob *j)
{
	/* freeing an unfinished upload aborts its multipart upload */
	s3_upload_free(j->upload);
	gzs_deflate_free(j->gz);
	digest_sha256_free(j->sha);
	j->upload = NULL;
	j->gz = NULL;
	j->sha = NULL;
}

static void
table_job_free_cb(void *arg)
{
	table_job_free((TableJob *) arg);
}

/*
 * The columns of rel as COPY writes them into mt: from the relation as it
 * is now that it is locked (a definition read before the lock could
 * differ).  Types are schema-qualified so a restore does not depend on its
 * search_path.
 */
void
ab_record_columns(Relation rel, MfTable *mt)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			nestlevel = NewGUCNestLevel();

	/* with an empty search_path only types outside pg_catalog are qualified */
	(void) set_config_option("search_path", "", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		MfColumn   *mc;

		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		mc = mf_add_column(mt);
		if (mc == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		mc->name = ab_mf_name(NameStr(att->attname));
		mc->type = ab_mf_name(format_type_extended(att->atttypid, att->atttypmod,
												   FORMAT_TYPE_TYPEMOD_GIVEN));
		mc->position = att->attnum;
		mc->not_null = ab_att_not_null(rel, att);
	}
	AtEOXact_GUC(false, nestlevel);
}

/* stream one table to S3 and fill its manifest entry */
static void
backup_table(TableJob *j, AbTable *t, const char *backup_id, MfTable *mt)
{
	Relation	rel;
	uint64		rows;
	char		sha[DIGEST_SHA256_HEX];
	AclResult	acl;
	char	   *key;

	/*
	 * The key spells the names in UTF-8: a name without a UTF-8 spelling (in
	 * an SQL_ASCII database) fails this table alone.
	 */
	key = ab_repo_table_key(get_database_name(MyDatabaseId), backup_id,
							t->schema, t->name);

	/*
	 * S3 refuses a longer key on every run: fail this table alone, before any
	 * request, and say which part of the key to shorten.
	 */
	if (strlen(key) > S3_MAX_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the S3 key of table \"%s.%s\" would be %zu bytes long, more than S3's limit of %d bytes",
						t->schema, t->name, strlen(key), S3_MAX_KEY_LEN),
				 errdetail("The key is aibackup.s3_prefix (%zu bytes), the database's name, the backup id and the table's schema and name, in UTF-8 with every byte outside A-Z, a-z, 0-9, \"_\" and \"-\" written as three (%%XX).",
						   strlen(ab_s3_prefix ? ab_s3_prefix : "")),
				 errhint("Shorten aibackup.s3_prefix, or rename the table or its schema.")));
	mt->object_key = ab_repo_mstrdup(key);
	if (t->parent != NULL)
		(void) ab_repo_to_utf8(t->parent, GetDatabaseEncoding(), false);
	if (t->extension != NULL)
		(void) ab_repo_to_utf8(t->extension, GetDatabaseEncoding(), false);

	rel = table_open(t->relid, NoLock); /* locked: backup.c, or the worker */
	mt->owner = ab_mf_owner(GetUserNameFromId(rel->rd_rel->relowner, true));

	ab_record_columns(rel, mt);
	ab_incremental_record(rel, mt);

	/*
	 * Size for the part size: heap and TOAST, now that it is locked.  Rows
	 * our snapshot sees are all in there, and dead ones only add to it.
	 */
	t->est_bytes = (int64) RelationGetNumberOfBlocks(rel) * BLCKSZ;
	if (OidIsValid(rel->rd_rel->reltoastrelid))
	{
		Relation	toast = table_open(rel->rd_rel->reltoastrelid, AccessShareLock);

		t->est_bytes += (int64) RelationGetNumberOfBlocks(toast) * BLCKSZ;
		table_close(toast, AccessShareLock);
	}
	j->est_bytes = t->est_bytes;
	if (ab_compression_level == 0)
		j->est_bytes *= AB_EST_FACTOR_UNCOMPRESSED;

	/* a granted non-superuser must not read what they could not SELECT */
	acl = pg_class_aclcheck(t->relid, GetUserId(), ACL_SELECT);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, RelationGetRelationName(rel));
	if (check_enable_rls(t->relid, InvalidOid, true) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("table \"%s.%s\" has row-level security enabled for the backing-up role",
						ab_repo_quotable(t->schema), ab_repo_quotable(t->name)),
				 errhint("Back up as a role that bypasses row-level security.")));

	if (j->base != NULL &&
		ab_incremental_copy(j->client, j->base, rel, mt, GetActiveSnapshot(),
							&j->s3_failed))
	{
		j->copied = true;
		table_close(rel, NoLock);
		return;
	}

	j->sha = digest_sha256_new();
	j->gz = gzs_deflate_new(ab_compression_level, gz_to_s3, j);
	if (j->sha == NULL || j->gz == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	j->table = t;
	j->part_size = s3_choose_part_size(j->est_bytes, AB_MIN_PART_SIZE);
	j->upload = s3_upload_begin(j->client, key, "application/gzip",
								j->part_size, &j->err);
	if (j->upload == NULL)
	{
		j->s3_error = true;
		table_s3_report(j);
	}

	rows = ab_copy_out(rel, copy_to_gz, j);

	if (!gzs_deflate_finish(j->gz))
		table_job_fail(j, "compress");
	if (!digest_sha256_final(j->sha, sha))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("could not compute SHA-256")));
	if (!s3_upload_finish(j->upload, &j->err))
	{
		j->s3_error = true;
		table_s3_report(j);
	}
	ab_incremental_recheck(rel, mt);
	table_close(rel, NoLock);

	mt->status = ab_repo_mstrdup("ok");
	mt->etag = ab_repo_mstrdup(s3_upload_etag(j->upload));
	mt->rows = (int64) rows;
	mt->raw_bytes = j->raw_bytes;
	mt->compressed_bytes = j->compressed_bytes;
	mt->sha256 = ab_repo_mstrdup(sha);
	table_job_free(j);
}

/* what one table's subtransaction needs */
typedef struct TableCall
{
	TableJob   *job;
	AbTable    *table;
	const char *backup_id;
	MfTable    *mt;
	Snapshot	snap;
} TableCall;

/*
 * The table's definition (read with the others, capture_definitions)
 * beside its data as <schema>.<table>.sql, readable without aibackup.
 * The script is in the database's encoding, as the data is, and says so
 * to psql.
 */
static void
backup_definition(TableJob *j, AbTable *t, MfTable *mt)
{
	size_t		n = strlen(mt->object_key);
	char	   *key;
	S3Error		err;

	if (mt->ddl == NULL)
		return;					/* its definition could not be read */
	Assert(n > 7 && strcmp(mt->object_key + n - 7, ".csv.gz") == 0);
	key = psprintf("%.*s.sql", (int) (n - 7), mt->object_key);
	if (!s3_put_object(j->client, key, mt->ddl, strlen(mt->ddl),
					   "application/sql", &err))
	{
		j->s3_failed = true;
		ab_s3_report(&err);
	}
}

static void
backup_table_call(void *arg)
{
	TableCall  *call = arg;

	PushActiveSnapshot(call->snap);
	backup_table(call->job, call->table, call->backup_id, call->mt);
	backup_definition(call->job, call->table, call->mt);
	PopActiveSnapshot();
}


/*
 * Back up table t into mt in a subtransaction (see backup_table.h).
 */
bool
ab_backup_table(AbTableCopy *cx, AbTable *t, MfTable *mt)
{
	TableJob   *job;
	MemoryContextCallback *jobcb;
	TableCall	call;
	ErrorData  *edata;
	MemoryContext oldcxt = MemoryContextSwitchTo(cx->tablecxt);
	bool		ok = true;

	/*
	 * In tablecxt, with a callback that frees what the core holds (the
	 * deflater's thread, the upload) if an error escapes this function.
	 */
	job = palloc0(sizeof(TableJob));
	jobcb = palloc(sizeof(MemoryContextCallback));
	jobcb->func = table_job_free_cb;
	jobcb->arg = job;
	MemoryContextRegisterResetCallback(cx->tablecxt, jobcb);
	job->throttle = cx->throttle;
	job->client = cx->client;
	job->base = cx->base;
	job->done_raw = cx->done_raw;
	job->done_compressed = cx->done_compressed;
	ab_progress_table(t->relid, psprintf("%s.%s", t->schema, t->name),
					  cx->done, cx->ntables);

	call.job = job;
	call.table = t;
	call.backup_id = cx->backup_id;
	call.mt = mt;
	call.snap = cx->snap;
	edata = ab_subxact_run(backup_table_call, &call);
	MemoryContextSwitchTo(oldcxt);
	if (edata != NULL)
	{
		/* aborts the table's multipart upload, if one was open */
		table_job_free(job);

		/*
		 * S3 down or misconfigured, cancel, shutdown, a conflict with
		 * recovery: the backup as a whole fails.  An S3 error of this table's
		 * own object does not.
		 */
		if (job->s3_failed || ab_error_ends_backup(edata))
			ReThrowError(edata);

		/*
		 * The message as every client can receive it: one that is not valid
		 * in a UTF-8 client's encoding would make the WARNING about it fail,
		 * and the whole backup with it.
		 */
		free(mt->status);
		free(mt->error);
		mt->status = ab_repo_mstrdup("failed");
		mt->error = ab_repo_mstrdup(ab_repo_quotable(edata->message));
		if (mt->object_key == NULL)
			mt->object_key = ab_repo_mstrdup("");	/* its name has no key */
		mt->rows = mt->raw_bytes = mt->compressed_bytes = 0;
		FreeErrorData(edata);
		ok = false;
	}
	MemoryContextReset(cx->tablecxt);
	cx->done++;
	if (ok)
	{
		cx->done_raw += mt->raw_bytes;
		cx->done_compressed += mt->compressed_bytes;
	}
	return ok;
}

bool
ab_error_ends_backup(const ErrorData *edata)
{
	/*
	 * A standby cancels a query whose snapshot or locks hold up the replay of
	 * WAL (max_standby_streaming_delay) with a serialization failure, and
	 * keeps canceling until the transaction ends; a backup reads nothing else
	 * that could fail with one.
	 */
	return edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
		edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY ||
		edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE;
}
