/*-------------------------------------------------------------------------
 *
 * restore_lo.c
 *		aibackup_restore_large_objects(): the large objects of a backup, all
 *		or some, back into the current database.
 *
 * A backup holds them as the rows of their two catalogs (catalog.c):
 * pg_largeobject_metadata (oid, owner, privileges) and pg_largeobject (one
 * row per 2 kB page).  Both objects are loaded, checked whole, into
 * temporary tables; then, in the caller's transaction and with the
 * caller's rights, each large object that exists is unlinked, created again
 * under its OID and written page by page (a page missing from a sparse
 * object stays a hole).  Its owner comes back when the backup is of this
 * cluster (the manifest's system identifier) and the role still exists;
 * its privileges come back to the roles that exist.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/large_object.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "jobs/recreate.h"
#include "jobs/restore.h"
#include "jobs/restore_lo.h"
#include "commands/dbcommands.h"
#include "pg/query.h"
#include "pg/repo.h"
#include "pg/s3_session.h"
#include "pg/state.h"

#define META_TABLE	"aibackup_lo_meta"
#define DATA_TABLE	"aibackup_lo_data"

/* an entry of the backup that must be there and whole */
static const MfTable *
lo_entry(const Manifest *m, const char *name)
{
	const MfTable *t = mf_find_table(m, "pg_catalog", name);

	if (t == NULL || strcmp(t->status, "ok") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("backup \"%s\" holds no large objects", m->backup_id),
				 errdetail("Its pg_catalog.%s is %s.", name,
						   t == NULL ? "not in it" : "a table that failed")));
	return t;
}

/* load the entry into a new temporary table of columns cols */
static void
load_temp(const Manifest *m, const MfTable *t, const char *table,
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
	(void) ab_restore_load_object(m, t, rel);
	table_close(rel, NoLock);
	CommandCounterIncrement();
}

/* the count a one-row, one-column query returned */
static int64
count_of(const char *sql)
{
	bool		isnull;

	ab_query_exec(sql, false, 0);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Owners (this cluster's backups only) and privileges, as they were.  (The
 * queries here are not read-only: a read-only one would see the caller's
 * snapshot, from before the temporary tables were filled.)
 */
static void
restore_owners_and_privileges(AbQuery *q, const Manifest *m)
{
	bool		same_cluster = m->system_identifier != NULL &&
		strcmp(m->system_identifier,
			   psprintf(UINT64_FORMAT, GetSystemIdentifier())) == 0;
	List	   *stmts = NIL;
	ListCell   *lc;

	ab_query_exec("SELECT l.oid, r.rolname, l.lomacl "
				  "FROM pg_temp." META_TABLE " l "
				  "LEFT JOIN pg_catalog.pg_roles r ON r.oid = l.lomowner", false, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *oid = ab_query_value(q, i, 1);
		char	   *owner = same_cluster ? ab_query_value(q, i, 2) : NULL;
		char	   *acl = ab_query_value(q, i, 3);
		MemoryContext old = MemoryContextSwitchTo(q->outer);

		if (owner != NULL && strcmp(owner, GetUserNameFromId(GetUserId(), false)) != 0)
			stmts = lappend(stmts, psprintf("ALTER LARGE OBJECT %s OWNER TO %s", oid,
											quote_identifier(owner)));
		if (acl != NULL)
			stmts = list_concat(stmts, ab_acl_grants(acl, "LARGE OBJECT", oid,
													 owner ? owner :
													 GetUserNameFromId(GetUserId(), false)));
		MemoryContextSwitchTo(old);
	}
	foreach(lc, stmts)
		ab_query_exec(lfirst(lc), false, 0);
}

/* load both catalogs' rows, then write the large objects */
static int64
restore_from(const Manifest *m, const MfTable *meta, const MfTable *data,
			 ArrayType *oids)
{
	AbQuery		q;
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1] = {oids ? PointerGetDatum(oids) : (Datum) 0};
	int64		n;

	ab_progress_phase("downloading");
	load_temp(m, meta, META_TABLE,
			  "oid pg_catalog.oid, lomowner pg_catalog.oid, lomacl pg_catalog.text");
	load_temp(m, data, DATA_TABLE,
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
	if (count_of("SELECT pg_catalog.count(*) FROM pg_temp." DATA_TABLE
				 " WHERE pg_catalog.length(data) > " CppAsString2(LOBLKSIZE)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the large objects of backup \"%s\" have pages larger than this server's %d bytes",
						m->backup_id, (int) LOBLKSIZE),
				 errdetail("The backup was made by a server built with another block size.")));
	(void) count_of("SELECT pg_catalog.count(pg_catalog.lo_unlink(l.oid)) "
					"FROM pg_temp." META_TABLE " l WHERE EXISTS "
					"(SELECT 1 FROM pg_catalog.pg_largeobject_metadata x WHERE x.oid = l.oid)");
	n = count_of("SELECT pg_catalog.count(pg_catalog.lo_create(oid)) "
				 "FROM pg_temp." META_TABLE);
	(void) count_of("SELECT pg_catalog.count(pg_catalog.lo_put(loid, pageno::pg_catalog.int8 * "
					CppAsString2(LOBLKSIZE) ", data)) "
					"FROM (SELECT * FROM pg_temp." DATA_TABLE " ORDER BY loid, pageno) d");
	restore_owners_and_privileges(&q, m);
	ab_query_exec("DROP TABLE pg_temp." META_TABLE ", pg_temp." DATA_TABLE, false, 0);
	ab_query_end(&q);

	return n;
}

int64
ab_restore_large_objects(const char *backup_id, ArrayType *oids)
{
	Manifest   *m = NULL;
	const MfTable *meta;
	const MfTable *data;
	volatile int64 n = 0;

	PreventCommandIfReadOnly("aibackup_restore_large_objects()");
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_DATA))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to restore large objects"),
				 errdetail("A backup's large objects are every role's: only superusers and members of pg_read_all_data read them.")));
	if (backup_id != NULL)
	{
		ab_repo_check_backup_id(backup_id);
		ab_repo_check_folder_unique();
		m = ab_restore_read_backup(ab_s3_client(), get_database_name(MyDatabaseId),
								   backup_id);
		meta = lo_entry(m, "pg_largeobject_metadata");
	}
	else
		meta = ab_restore_find_table("pg_catalog.pg_largeobject_metadata", NULL, &m);
	data = lo_entry(m, "pg_largeobject");

	ab_progress_begin("restore", m->backup_id);
	PG_TRY();
	{
		n = restore_from(m, meta, data, oids);
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
