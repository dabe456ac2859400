/*-------------------------------------------------------------------------
 *
 * restore_lo.c
 *		aibackup_restore_large_objects(): the large objects of a backup, all
 *		or some, back into the current database.
 *
 * A backup holds them as the rows of their two catalogs (catalog.c):
 * pg_largeobject_metadata (oid, owner, privileges) and pg_largeobject (one
 * row per page), with the page size and the owners' names in the manifest.
 * Both objects are loaded, checked whole, into temporary tables; then, in
 * the caller's transaction, each large object that exists is unlinked,
 * created again under its OID and written page by page (a page missing
 * from a sparse object stays a hole); one whose last page is empty is cut
 * to where that page starts.  A superuser creates each as the role that owned it, when
 * that role exists (by name); anyone else owns what they restore, and can
 * replace only large objects they own.  Privileges come back to the roles
 * that exist.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "libpq/libpq-fs.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/large_object.h"
#include "storage/lock.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "jobs/recreate.h"
#include "jobs/restore.h"
#include "jobs/restore_lo.h"
#include "pg/query.h"
#include "pg/repo.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"
#include "pg/state.h"

#define META_TABLE	"aibackup_lo_meta"
#define DATA_TABLE	"aibackup_lo_data"

/* is the pair of catalogs in m, both copied? */
static bool
has_large_objects(const Manifest *m)
{
	const MfTable *meta = mf_find_table(m, "pg_catalog", "pg_largeobject_metadata");
	const MfTable *data = mf_find_table(m, "pg_catalog", "pg_largeobject");

	return meta != NULL && data != NULL && m->lo_page_size > 0 &&
		strcmp(meta->status, "ok") == 0 && strcmp(data->status, "ok") == 0;
}

/*
 * backup_id's manifest, or the newest with large objects.  (Not inlined
 * into a function with PG_TRY: its loop's variables are not volatile.)
 */
static pg_noinline Manifest *
find_backup(const char *backup_id)
{
	char	   *dbname = get_database_name(MyDatabaseId);
	Manifest   *m = NULL;

	ab_repo_check_backup_id(backup_id);
	ab_repo_check_folder_unique();
	if (backup_id != NULL)
	{
		m = ab_restore_read_backup(ab_s3_client(), dbname, backup_id);
		if (!has_large_objects(m))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("backup \"%s\" holds no large objects", m->backup_id)));
	}
	else
	{
		AbBackupWalk *w = ab_walk_begin(ab_s3_client(), dbname, AB_WALK_MANIFEST);
		AbBackup	b;

		while (m == NULL && ab_walk_next(w, &b))
		{
			if (has_large_objects(b.manifest))
				m = b.manifest;
		}
		ab_walk_end(w);
		if (m == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("no backup of database \"%s\" holds large objects", dbname)));
	}
	return m;
}

/* load the entry into a new temporary table of columns cols */
static void
load_temp(const Manifest *m, const char *name, const char *table,
		  const char *cols)
{
	AbQuery		q;
	Oid			relid;
	Relation	rel;

	ab_query_begin(&q);
	ab_query_exec(psprintf("DROP TABLE IF EXISTS pg_temp.%s", table), false, 0);
	ab_query_exec(psprintf("CREATE TEMPORARY TABLE %s (%s)", table, cols), false, 0);
	ab_query_end(&q);
	CommandCounterIncrement();
	relid = RangeVarGetRelid(makeRangeVar("pg_temp", (char *) table, -1),
							 AccessExclusiveLock, false);
	rel = table_open(relid, NoLock);
	(void) ab_restore_load_object(ab_s3_client(), m,
								  mf_find_table(m, "pg_catalog", name), rel);
	table_close(rel, NoLock);
	CommandCounterIncrement();
}

/*
 * The count a one-row, one-column query returned.  (The queries here are not
 * read-only: a read-only one would see the caller's snapshot, from before
 * the temporary tables were filled.)
 */
static int64
count_of(const char *sql)
{
	bool		isnull;

	ab_query_exec(sql, false, 0);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The role that owned the large objects of m->lo_owners[i], here; InvalidOid
 * if none, or if an earlier entry has the same source OID (a manifest made
 * by hand).
 */
static Oid
owner_here(const Manifest *m, int i)
{
	for (int j = 0; j < i; j++)
	{
		if (m->lo_owners[j].oid == m->lo_owners[i].oid)
			return InvalidOid;
	}
	return m->lo_owners[i].name == NULL ? InvalidOid :
		get_role_oid(m->lo_owners[i].name, true);
}

/*
 * Unlinking takes a lock per large object, until the end of the
 * transaction: refuse, before any, what would fill the lock table.
 */
static void
check_lock_budget(const Manifest *m)
{
	int64		existing = count_of("SELECT pg_catalog.count(*) FROM pg_temp." META_TABLE " l "
									"WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata x "
									"WHERE x.oid = l.oid)");
	int64		budget = (int64) max_locks_per_xact * MaxBackends / 2;

	if (existing > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("replacing " INT64_FORMAT " large objects in one transaction would take more locks than this server has",
						existing),
				 errdetail("Each large object replaced holds a lock until the transaction ends; half the lock table is %lld.",
						   (long long) budget),
				 errhint("Restore them in batches with aibackup_restore_large_objects('%s', oids), or raise max_locks_per_transaction.",
						 m->backup_id)));
}

/* create them, each as its old owner when a superuser restores */
static int64
create_all(const Manifest *m)
{
	int64		n = 0;
	StringInfoData done;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;

	initStringInfo(&done);
	appendStringInfoChar(&done, '{');
	for (int i = 0; superuser() && i < m->nlo_owners; i++)
	{
		Oid			role = owner_here(m, i);
		Oid			save_userid;
		int			save_sec_context;

		if (!OidIsValid(role))
			continue;
		/* read as the caller (the temporary table is the caller's) */
		ab_query_exec(psprintf("SELECT pg_catalog.array_agg(oid)::pg_catalog.text "
							   "FROM pg_temp." META_TABLE " WHERE lomowner = " INT64_FORMAT,
							   m->lo_owners[i].oid), false, 0);
		if (SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) == NULL)
			continue;			/* none of its (when some OIDs were asked for) */
		values[0] = CStringGetTextDatum(SPI_getvalue(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1));
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		ab_query_exec_args("SELECT pg_catalog.count(pg_catalog.lo_create(o)) "
						   "FROM pg_catalog.unnest($1::pg_catalog.oid[]) o",
						   1, types, values, false, 0);
		SetUserIdAndSecContext(save_userid, save_sec_context);
		n += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										 1, &isnull));
		appendStringInfo(&done, "%s" INT64_FORMAT, done.len > 1 ? "," : "",
						 m->lo_owners[i].oid);
	}
	appendStringInfoChar(&done, '}');
	values[0] = CStringGetTextDatum(done.data);
	ab_query_exec_args("SELECT pg_catalog.count(pg_catalog.lo_create(oid)) "
					   "FROM pg_temp." META_TABLE
					   " WHERE lomowner IS NULL OR lomowner <> ALL ($1::pg_catalog.oid[])",
					   1, types, values, false, 0);
	n += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									 1, &isnull));
	return n;
}

/* the backed-up privileges, to the roles that exist */
static void
grant_privileges(AbQuery *q, const Manifest *m)
{
	List	   *stmts = NIL;
	ListCell   *lc;

	ab_query_exec("SELECT l.oid, l.lomowner, l.lomacl, pg_catalog.pg_get_userbyid(x.lomowner) "
				  "FROM pg_temp." META_TABLE " l "
				  "JOIN pg_catalog.pg_largeobject_metadata x ON x.oid = l.oid "
				  "WHERE l.lomacl IS NOT NULL", false, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *oid = ab_query_value(q, i, 1);
		char	   *acl = ab_query_value(q, i, 3);
		char	   *owner = ab_query_value(q, i, 4);
		MemoryContext old = MemoryContextSwitchTo(q->outer);

		stmts = list_concat(stmts, ab_acl_grants(acl, "LARGE OBJECT", oid, owner));
		MemoryContextSwitchTo(old);
	}
	foreach(lc, stmts)
		ab_query_exec(lfirst(lc), false, 0);
}

/* load both catalogs' rows, then write the large objects */
static int64
restore_from(const Manifest *m, ArrayType *oids)
{
	AbQuery		q;
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1] = {oids ? PointerGetDatum(oids) : (Datum) 0};
	char	   *page = psprintf(INT64_FORMAT, m->lo_page_size);
	int64		n;

	ab_progress_phase("downloading");
	load_temp(m, "pg_largeobject_metadata", META_TABLE,
			  "oid pg_catalog.oid, lomowner pg_catalog.oid, lomacl pg_catalog.text");
	load_temp(m, "pg_largeobject", DATA_TABLE,
			  "loid pg_catalog.oid, pageno pg_catalog.int4, data pg_catalog.bytea");

	ab_progress_phase("writing large objects");
	ab_query_begin(&q);
	if (oids != NULL)
	{
		/* the ones asked for, every one of them in the backup */
		ab_query_exec_args("SELECT o FROM pg_catalog.unnest($1) o "
						   "EXCEPT SELECT oid FROM pg_temp." META_TABLE " LIMIT 1",
						   1, types, values, false, 0);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("backup \"%s\" has no large object %s", m->backup_id,
							ab_query_value(&q, 0, 1))));
		ab_query_exec_args("DELETE FROM pg_temp." META_TABLE " WHERE oid <> ALL ($1)",
						   1, types, values, false, 0);
		ab_query_exec_args("DELETE FROM pg_temp." DATA_TABLE " WHERE loid <> ALL ($1)",
						   1, types, values, false, 0);
	}
	if (count_of(psprintf("SELECT pg_catalog.count(*) FROM pg_temp." DATA_TABLE
						  " WHERE pg_catalog.length(data) > %s OR pageno < 0", page)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the large objects of backup \"%s\" have pages that are not of %s bytes",
						m->backup_id, page)));
	check_lock_budget(m);
	(void) count_of("SELECT pg_catalog.count(pg_catalog.lo_unlink(l.oid)) "
					"FROM pg_temp." META_TABLE " l WHERE EXISTS "
					"(SELECT 1 FROM pg_catalog.pg_largeobject_metadata x WHERE x.oid = l.oid)");
	n = create_all(m);
	(void) count_of(psprintf("SELECT pg_catalog.count(pg_catalog.lo_put(loid, pageno::pg_catalog.int8 * %s, data)) "
							 "FROM pg_temp." DATA_TABLE, page));

	/*
	 * A last page may be empty (grown by lo_truncate): lo_put wrote nothing
	 * there, so cut those, and only those, to where it starts.
	 */
	(void) count_of(psprintf("SELECT pg_catalog.count(pg_catalog.lo_truncate64("
							 "pg_catalog.lo_open(d.loid, %d), d.pageno::pg_catalog.int8 * %s)) "
							 "FROM pg_temp." DATA_TABLE " d "
							 "WHERE pg_catalog.length(d.data) = 0 AND d.pageno = "
							 "(SELECT pg_catalog.max(x.pageno) FROM pg_temp." DATA_TABLE " x "
							 " WHERE x.loid = d.loid)",
							 INV_WRITE, page));
	grant_privileges(&q, m);
	ab_query_exec("DROP TABLE pg_temp." META_TABLE ", pg_temp." DATA_TABLE, false, 0);
	ab_query_end(&q);
	return n;
}

int64
ab_restore_large_objects(const char *backup_id, ArrayType *oids)
{
	Manifest   *m;
	volatile int64 n = 0;

	PreventCommandIfReadOnly("aibackup_restore_large_objects()");
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_DATA))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to restore large objects"),
				 errdetail("A backup's large objects are every role's: only superusers and members of pg_read_all_data read them.")));
	m = find_backup(backup_id);

	ab_progress_begin("restore", m->backup_id);
	PG_TRY();
	{
		n = restore_from(m, oids);
	}
	PG_FINALLY();
	{
		ab_progress_end();
	}
	PG_END_TRY();

	ereport(NOTICE,
			(errmsg("restored " INT64_FORMAT " large objects from backup \"%s\"",
					n, m->backup_id)));
	return n;
}
