/*
 * backup.c
 *		One backup of the current database: lock, snapshot, and for each
 *		table COPY TO -> gzip -> SHA-256 -> S3, then the manifest, last.
 *
 * The flow, and why:
 *	1. A transaction-level advisory lock per database: two backups of one
 *	   database never overlap (the second fails at once, naming the first).
 *	2. ACCESS SHARE locks on every table up front, like pg_dump, each with
 *	   aibackup.lock_timeout, so a table held exclusively elsewhere fails the
 *	   backup clearly instead of queueing forever, and no table's definition
 *	   can change under the copy.
 *	3. One snapshot, taken after the locks, for every table: rows moved
 *	   between two tables by concurrent transactions are in both or neither.
 *	   In READ COMMITTED the snapshot is pushed explicitly for each COPY.
 *	4. Each table in its own subtransaction: a table that fails (an output
 *	   function that errors, say) is recorded as failed and the others go
 *	   on; the backup is then "partial", or "failed" if no table made it
 *	   (its manifest says why).  So does an S3 error that belongs to the
 *	   table's object and would recur on every run (a key over S3's 1024
 *	   bytes, an object that outgrows its parts: s3_error_is_per_object):
 *	   one such table must not keep every other from being backed up.
 *	   A failure of S3 itself (unreachable, credentials, bucket), a cancel
 *	   or a shutdown fails the whole backup: open multipart uploads are
 *	   aborted and no manifest is written.
 *	5. manifest.json is written last: a backup exists only once it does.
 *
 * Memory: one part buffer (see s3_choose_part_size) plus the deflater's
 * slots (about 9 MiB, core/gzdeflate.c) per table, whatever the table's
 * size.  The S3 and deflate objects are malloc'd by the core; they are
 * freed on success, in PG_CATCH, and by a reset callback of the table's
 * memory context should an error escape both.
 *
 * Hazard: the snapshot holds back the xmin horizon for the whole backup
 * (as pg_dump does): long backups delay vacuum cleanup.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/large_object.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "core/digest.h"
#include "core/gzstream.h"
#include "core/manifest.h"
#include "core/s3.h"
#include "jobs/backup.h"
#include "jobs/backup_table.h"
#include "jobs/incremental.h"
#include "jobs/restore_script.h"
#include "jobs/table_workers.h"
#include "pg/catalog.h"
#include "pg/compat.h"
#include "pg/copy.h"
#include "pg/repo.h"
#include "pg/ddl.h"
#include "pg/repo_index.h"
#include "pg/table_stats.h"
#include "pg/s3_session.h"
#include "pg/settings.h"
#include "pg/state.h"
#include "pg/subxact.h"
#include "pg/throttle.h"
#include "pg/unchanged.h"

#define AB_EXTENSION_VERSION	"0.4"
#define AB_ADVISORY_KEY			0x61696262	/* "aibb" */

/*
 * The backup lock is an advisory lock whose fourth field SQL never uses
 * (pg_advisory_lock(int8) uses 1, the (int4, int4) forms 2), so no session
 * can take it, or block our backups, through the SQL functions.  pg_locks
 * shows it as locktype advisory, objsubid 171.
 */
#define AB_LOCKTAG_FIELD4		0xAB

static char *
backup_id_of(TimestampTz ts)
{
	pg_time_t	t = timestamptz_to_time_t(ts);
	struct pg_tm *tm = pg_gmtime(&t);
	char		buf[32];

	snprintf(buf, sizeof(buf), "%04d%02d%02dT%02d%02d%02dZ",
			 tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday,
			 tm->tm_hour, tm->tm_min, tm->tm_sec);
	return pstrdup(buf);
}

static void
free_manifest_cb(void *arg)
{
	mf_free((Manifest *) arg);
}

/* take the per-database backup lock or fail naming the holder */
void
ab_backup_lock_database(const char *dbname)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, AB_ADVISORY_KEY, MyDatabaseId,
						 AB_LOCKTAG_FIELD4);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
	{
		VirtualTransactionId *holders = GetLockConflicts(&tag, ExclusiveLock, NULL);
		int			pid = 0;
		char		running_id[AB_ID_LEN] = "";
		bool		scheduled = false;
		int			state_pid = ab_state_running(MyDatabaseId, running_id, &scheduled);

		if (holders)
			pid = ab_vxid_pid(holders[0]);
		if (state_pid != 0 && running_id[0])
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("another backup of database \"%s\" is running: %s backup \"%s\" in process %d",
							dbname, scheduled ? "scheduled" : "manual",
							running_id, state_pid),
					 errhint("Wait for it to finish; backups of one database never overlap.")));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("another backup of database \"%s\" is running", dbname),
				 pid ? errdetail("The backup is running in process %d.", pid) : 0,
				 errhint("Wait for it to finish; backups of one database never overlap.")));
	}
}

/* ACCESS SHARE on every table, each bounded by aibackup.lock_timeout */
static List *
lock_tables(List *tables)
{
	int			nestlevel = NewGUCNestLevel();
	char		timeout[32];
	List	   *locked = NIL;
	ListCell   *lc;

	snprintf(timeout, sizeof(timeout), "%d", ab_lock_timeout_ms);
	(void) set_config_option("lock_timeout", timeout, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, ERROR, false);
	foreach(lc, tables)
	{
		AbTable    *t = lfirst(lc);
		MemoryContext oldcxt = CurrentMemoryContext;

		/* for the messages below, made while the catalogs can be read */
		char	   *shown = psprintf("%s.%s", ab_repo_quotable(t->schema),
									 ab_repo_quotable(t->name));

		PG_TRY();
		{
			LockRelationOid(t->relid, AccessShareLock);
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcxt);
			edata = CopyErrorData();
			if (edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY &&
				edata->message_id != NULL &&
				strcmp(edata->message_id, "out of shared memory") == 0)
			{
				/*
				 * the shared lock table is full: as pg_dump, say what to
				 * raise
				 */
				FlushErrorState();
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not lock table \"%s\" for backup: the lock table is full after %d of %d tables",
								shown, foreach_current_index(lc),
								list_length(tables)),
						 errdetail("A backup holds an ACCESS SHARE lock on every table until it ends, in the lock table sized by max_locks_per_transaction (%d) for all sessions.",
								   max_locks_per_xact),
						 errhint("Raise max_locks_per_transaction (a restart is needed) so that it times max_connections covers %d tables, or back up fewer tables at once with aibackup.exclude or aibackup_backup_now(tables).",
								 list_length(tables))));
			}
			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
				PG_RE_THROW();
			FlushErrorState();
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not lock table \"%s\" for backup within aibackup.lock_timeout (%d ms)",
							shown, ab_lock_timeout_ms),
					 errdetail("Another session holds a lock that conflicts with ACCESS SHARE (such as ALTER TABLE, TRUNCATE, DROP or LOCK TABLE)."),
					 errhint("Find it in pg_locks, or raise aibackup.lock_timeout.")));
		}
		PG_END_TRY();

		/* dropped while we waited? then it is simply not in this backup */
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(t->relid)))
		{
			UnlockRelationOid(t->relid, AccessShareLock);
			continue;
		}
		locked = lappend(locked, t);
	}
	AtEOXact_GUC(false, nestlevel);
	return locked;
}

/* is oid in l, sorted by list_oid_cmp? */
static bool
sorted_member_oid(List *l, Oid oid)
{
	int			lo = 0;
	int			hi = list_length(l) - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		Oid			x = list_nth_oid(l, mid);

		if (x == oid)
			return true;
		if (x < oid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/* where WAL is: inserted on a primary, replayed on a standby */
static XLogRecPtr
current_lsn(void)
{
	return RecoveryInProgress() ? GetXLogReplayRecPtr(NULL) :
		GetXLogInsertRecPtr();
}

/*
 * Lock every table to back up, then take the backup's snapshot and read the
 * catalog again under it: a table created, or renamed, while we waited for
 * the locks is seen there, and is locked in turn, until a read finds
 * nothing new.  Names come from the last read, when they can no longer
 * change (a rename needs a lock that conflicts with ours).
 *
 * The snapshot comes after the locks, whatever the caller's isolation
 * level: one taken earlier could predate a TRUNCATE or rewrite that
 * committed while we waited, and show the table empty.
 */
static List *
lock_catalog_tables(List *relids, Snapshot *snapp, XLogRecPtr *lsn_before)
{
	List	   *locked = NIL;	/* OIDs */
	List	   *pending = ab_catalog_tables(relids, true);

	for (int round = 0; round < 10; round++)
	{
		List	   *tables;
		List	   *fresh = NIL;
		ListCell   *lc;

		foreach(lc, lock_tables(pending))
			locked = lappend_oid(locked, ((AbTable *) lfirst(lc))->relid);

		/* before the snapshot: see pg/unchanged.c for why */
		*lsn_before = current_lsn();
		*snapp = RegisterSnapshot(GetLatestSnapshot());
		PushActiveSnapshot(*snapp);
		tables = ab_catalog_tables(relids, true);
		PopActiveSnapshot();

		list_sort(locked, list_oid_cmp);	/* thousands of tables: no n^2 */
		foreach(lc, tables)
		{
			if (!sorted_member_oid(locked, ((AbTable *) lfirst(lc))->relid))
				fresh = lappend(fresh, lfirst(lc));
		}
		if (fresh == NIL)
			return tables;
		UnregisterSnapshot(*snapp);
		pending = fresh;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the tables of the database kept changing while the backup locked them"),
			 errdetail("New tables appeared in each of 10 reads of the catalog."),
			 errhint("Run the backup again when fewer tables are being created.")));
	return NIL;					/* keep compiler quiet */
}

/*
 * Run fn in a subtransaction; false, with a WARNING that what is left out
 * of the backup, when it fails.  The data matters more than what is around
 * it, but what ab_error_ends_backup() names ends the backup.
 */
static bool
run_or_leave_out(void (*fn) (void *), void *arg, const char *what)
{
	ErrorData  *edata = ab_subxact_run(fn, arg);

	if (edata == NULL)
		return true;
	if (ab_error_ends_backup(edata))
		ReThrowError(edata);
	ereport(WARNING,
			(errmsg("aibackup: %s are left out of this backup: %s",
					what, edata->message)));
	FreeErrorData(edata);
	return false;
}

typedef struct DefinitionsCall
{
	List	   *tables;
	Manifest   *m;
	AbDdlParts *parts;
} DefinitionsCall;

static void
capture_definitions_call(void *arg)
{
	DefinitionsCall *call = arg;

	ab_ddl_capture(call->tables, call->m->tables, call->parts);
}

/*
 * Lock the partitioned tables above the leaves, and record each with its
 * owner, columns and definition; the parts of their scripts into parts.
 */
static void
capture_partitioned_call(void *arg)
{
	DefinitionsCall *call = arg;
	ListCell   *lc;

	call->tables = lock_tables(call->tables);
	foreach(lc, call->tables)
	{
		AbTable    *t = lfirst(lc);
		MfTable    *mt = mf_add_partitioned(call->m);
		Relation	rel;

		if (mt == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		mt->schema = ab_mf_name(t->schema);
		mt->name = ab_mf_name(t->name);
		mt->relid = t->relid;
		mt->parent = ab_mf_name(t->parent);
		mt->partitions = t->partitions;
		rel = table_open(t->relid, NoLock); /* locked by lock_tables */
		mt->owner = ab_mf_owner(GetUserNameFromId(rel->rd_rel->relowner, true));
		ab_record_columns(rel, mt);
		table_close(rel, NoLock);
	}
	ab_ddl_capture(call->tables, call->m->partitioned, call->parts);
}

/*
 * The partitioned tables above the tables backed up, found under the
 * backup's snapshot, then locked (ACCESS SHARE) and read as the tables'
 * definitions are: a restore recreates a whole partitioned table from them.
 * If they cannot be read, the backup goes on without them, and says so;
 * their parts into *parts.
 */
static void
capture_partitioned(List *tables, Snapshot snap, Manifest *m,
					AbDdlParts **parts)
{
	DefinitionsCall call;
	List	   *parents;

	PushActiveSnapshot(snap);
	parents = ab_catalog_partitioned(tables);
	PopActiveSnapshot();
	*parts = palloc0(sizeof(AbDdlParts) * (list_length(parents) + 1));
	call.tables = parents;
	call.m = m;
	call.parts = *parts;
	if (parents != NIL &&
		!run_or_leave_out(capture_partitioned_call, &call,
						  "the definitions of the partitioned tables"))
		mf_clear_partitioned(m);
}

/*
 * Every table's definition, read at once after the locks.  The data
 * matters more: if the catalogs cannot be read so, the backup goes on
 * without definitions, and says so.
 */
static void
capture_definitions(List *tables, Manifest *m, AbDdlParts *parts)
{
	DefinitionsCall call = {tables, m, parts};

	ab_progress_phase("reading definitions");
	if (run_or_leave_out(capture_definitions_call, &call,
						 "the definitions of the tables"))
		return;
	for (int i = 0; i < m->ntables; i++)
		mf_clear_definition(&m->tables[i]);
	memset(parts, 0, sizeof(AbDdlParts) * m->ntables);
}

typedef struct ScriptsCall
{
	S3Client   *client;
	Manifest   *m;
	AbDdlParts *parts;
	AbDdlParts *pparts;
} ScriptsCall;

static void
restore_scripts_call(void *arg)
{
	ScriptsCall *call = arg;

	ab_restore_scripts_put(call->client, call->m, call->parts, call->pparts);
}

/*
 * restore.sql and the schemas' scripts.  The data matters more: if they
 * cannot be written, the backup goes on without them, and says so.
 */
static void
restore_scripts(S3Client *client, Manifest *m, AbDdlParts *parts,
				AbDdlParts *pparts)
{
	ScriptsCall call = {client, m, parts, pparts};

	ab_progress_phase("writing restore scripts");
	if (!run_or_leave_out(restore_scripts_call, &call, "the restore scripts"))
		m->restore_scripts = false;
}

/*
 * With both catalogs of the large objects copied: their page size (a
 * restore writes each page at pageno times it) and their owners' names
 * (roles are matched by name, as tables' owners are), under the backup's
 * snapshot.
 */
static void
record_large_objects(Manifest *m, Snapshot snap)
{
	const MfTable *meta = mf_find_table(m, "pg_catalog", "pg_largeobject_metadata");
	const MfTable *data = mf_find_table(m, "pg_catalog", "pg_largeobject");
	ListCell   *lc;
	List	   *owners;

	if (meta == NULL || data == NULL ||
		strcmp(meta->status, "ok") != 0 || strcmp(data->status, "ok") != 0)
		return;
	m->lo_page_size = LOBLKSIZE;
	PushActiveSnapshot(snap);
	owners = ab_catalog_lo_owners();
	PopActiveSnapshot();
	foreach(lc, owners)
	{
		AbRole	   *r = lfirst(lc);
		MfRole	   *o;

		if (ab_repo_to_utf8(r->name, GetDatabaseEncoding(), true) == NULL)
			continue;			/* no UTF-8 spelling: the restorer owns them */
		o = mf_add_lo_owner(m);
		if (o == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		o->oid = r->oid;
		o->name = ab_repo_mstrdup(r->name);
	}
}

/* the manifest entry for t, before its data is copied (and its key known) */
static MfTable *
manifest_table(Manifest *m, AbTable *t)
{
	MfTable    *mt = mf_add_table(m);

	if (mt == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	mt->schema = ab_repo_mstrdup(t->schema);
	mt->name = ab_repo_mstrdup(t->name);
	mt->relid = t->relid;
	mt->parent = ab_repo_mstrdup(t->parent);
	mt->extension = ab_repo_mstrdup(t->extension);
	mt->format = ab_repo_mstrdup("csv");
	mt->compression = ab_repo_mstrdup("gzip");
	return mt;
}

/* counts objects; stops at the first */
static int
count_one(void *arg, const S3ListEntry *e)
{
	(*(int *) arg)++;
	return 1;
}

/*
 * A backup id not used yet in this database's folder.  This is also the
 * backup's first request, a listing: unlike a HEAD its error answers carry
 * S3's code (SignatureDoesNotMatch, NoSuchBucket), so bad settings are
 * reported as what they are.
 */
static char *
new_backup_id(S3Client *c, const char *dbname, TimestampTz *started)
{
	for (int tries = 0; tries < 5; tries++)
	{
		char	   *id;
		int			n = 0;
		S3Error		err;

		*started = GetCurrentTimestamp();

		/*
		 * With aibackup.backup_from_standby a primary and its standby can
		 * start a run of one database in the same second (the primary taking
		 * over as the standby comes back): a primary takes even seconds and a
		 * standby odd ones (ab_repo_id_parity), so they never pick the same
		 * id, nor sweep each other's uploads.
		 */
		while (ab_repo_id_parity() >= 0 &&
			   (*started / USECS_PER_SEC) % 2 != ab_repo_id_parity())
		{
			pg_usleep(USECS_PER_SEC - (*started % USECS_PER_SEC) + 1000);
			CHECK_FOR_INTERRUPTS();
			*started = GetCurrentTimestamp();
		}
		id = backup_id_of(*started);
		if (!s3_list_objects(c, ab_repo_backup_folder(dbname, id),
							 NULL, count_one, &n, &err))
			ab_s3_report(&err);
		if (n == 0)
			return id;
		/* ids have one-second resolution: wait for the next second */
		pg_usleep(USECS_PER_SEC - (*started % USECS_PER_SEC) + 1000);
		CHECK_FOR_INTERRUPTS();
	}
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("could not find an unused backup id for database \"%s\"", dbname)));
	return NULL;				/* keep compiler quiet */
}

typedef struct IndexCall
{
	S3Client   *client;
	const char *dbname;
	const Manifest *m;
} IndexCall;

static void
update_index_call(void *arg)
{
	IndexCall  *call = arg;

	ab_index_update(call->client, call->dbname, call->m, NIL, false);
}

/* the index is a cache: a backup whose manifest is written stands anyway */
static void
update_index(S3Client *client, const char *dbname, const Manifest *m)
{
	IndexCall	call = {client, dbname, m};
	ErrorData  *edata;

	ab_progress_phase("updating index");
	edata = ab_subxact_run(update_index_call, &call);
	if (edata == NULL)
		return;
	/* even a cancel: the backup is done, and counts as done */
	ereport(WARNING,
			(errmsg("aibackup: the backup index of database \"%s\" was not updated: %s",
					dbname, edata->message),
			 errdetail("Backup \"%s\" is complete; listing falls back to reading its manifest.",
					   m->backup_id)));
	FreeErrorData(edata);
}

/* the counts of a backup's tables, as each is finished */
typedef struct Outcome
{
	AbBackupResult *res;
	List	   *tables;			/* AbTable, as m->tables */
	Manifest   *m;
} Outcome;

static void
table_outcome(void *arg, int i)
{
	Outcome    *o = arg;
	AbTable    *t = list_nth(o->tables, i);
	MfTable    *mt = &o->m->tables[i];
	bool		ok = strcmp(mt->status, "ok") == 0;

	if (ok)
	{
		o->res->tables_ok++;
		if (mt->copied_from != NULL)
			o->res->tables_copied++;
		o->res->rows += mt->rows;
		o->res->raw_bytes += mt->raw_bytes;
		o->res->compressed_bytes += mt->compressed_bytes;
	}
	else
		o->res->tables_failed++;
	ab_progress_table(t->relid, psprintf("%s.%s", t->schema, t->name),
					  o->res->tables_ok + o->res->tables_failed,
					  list_length(o->tables));
	if (ok)
		return;

	/*
	 * Names as every client can receive them (the error already is): one not
	 * valid in a UTF-8 client's encoding would make the WARNING itself fail,
	 * and the whole backup with it.
	 */
	ereport(WARNING,
			(errmsg("aibackup: table \"%s.%s\" was not backed up: %s",
					ab_repo_quotable(t->schema), ab_repo_quotable(t->name),
					mt->error ? mt->error : "")));
}

/* set once this process's backup is recorded as running in shared memory */
static bool backup_registered = false;

static void record_result(const AbBackupResult *res);

static AbBackupResult *
backup_run(List *relids, bool scheduled, bool full)
{
	char	   *dbname = get_database_name(MyDatabaseId);
	S3Client   *client;
	List	   *tables;
	List	   *seqs;
	Snapshot	snap;
	TimestampTz started;
	char	   *backup_id;
	Manifest   *m;
	MemoryContextCallback *cb;
	AbBackupResult *res = palloc0(sizeof(AbBackupResult));
	ListCell   *lc;
	char		lsn[64];
	XLogRecPtr	lsn_before;
	XLogRecPtr	snapshot_lsn;
	const Manifest *base;
	MemoryContext tablecxt;
	AbThrottle	throttle;
	AbTableCopy cx;
	Outcome		outcome;
	AbDdlParts *parts;
	AbDdlParts *pparts = NULL;

	/*
	 * Any snapshot of a transaction that has written shows its own
	 * uncommitted changes, which a ROLLBACK may undo after the backup
	 * recorded them: refuse rather than back up data that never existed.
	 */
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot back up in a transaction that has written data"),
				 errdetail("The backup would include changes of this transaction that are not committed and may be rolled back."),
				 errhint("Call aibackup_backup_now() in its own transaction, or after COMMIT.")));

	ab_repo_check_folder_unique();
	ab_backup_lock_database(dbname);
	/* from here on this backup counts, even if S3 fails before it has an id */
	ab_state_backup_started(MyDatabaseId, dbname,
							ab_repo_to_utf8(dbname, GetDatabaseEncoding(), true),
							"", scheduled);
	backup_registered = true;
	ab_progress_begin("backup", NULL);
	ab_progress_phase("locking tables");
	client = ab_s3_client();
	ab_folder_check_owner(client, dbname);

	/*
	 * Every backup of this database would fail at its manifest: say so before
	 * any work (a table key too long fails that table alone).
	 */
	{
		char	   *mkey = ab_repo_manifest_key(dbname, "00000000T000000Z");

		if (strlen(mkey) > S3_MAX_KEY_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the S3 key of a backup manifest of database \"%s\" would be %zu bytes long, more than S3's limit of %d bytes",
							dbname, strlen(mkey), S3_MAX_KEY_LEN),
					 errdetail("The key is aibackup.s3_prefix (%zu bytes), the database's name, the backup id and \"manifest.json\".",
							   strlen(ab_s3_prefix ? ab_s3_prefix : "")),
					 errhint("Shorten aibackup.s3_prefix.")));
	}

	tables = lock_catalog_tables(relids, &snap, &lsn_before);
	snapshot_lsn = current_lsn();
	snprintf(lsn, sizeof(lsn), "%X/%X", LSN_FORMAT_ARGS(snapshot_lsn));

	backup_id = new_backup_id(client, dbname, &started);
	ab_state_backup_started(MyDatabaseId, dbname, NULL, backup_id, scheduled);
	ab_progress_begin("backup", backup_id);
	ab_progress_phase("copying");

	m = mf_new();
	if (m == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	cb = palloc(sizeof(MemoryContextCallback));
	cb->func = free_manifest_cb;
	cb->arg = m;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);

	m->format = MANIFEST_FORMAT;
	m->backup_id = ab_repo_mstrdup(backup_id);
	m->database = ab_repo_mstrdup(dbname);
	m->started_at = ab_repo_mstrdup(ab_repo_iso_utc(started));
	m->server_version = ab_repo_mstrdup(GetConfigOption("server_version", false, false));
	m->server_encoding = ab_repo_mstrdup(GetDatabaseEncodingName());
	m->system_identifier = ab_repo_mstrdup(psprintf(UINT64_FORMAT, GetSystemIdentifier()));
	m->extension_version = ab_repo_mstrdup(AB_EXTENSION_VERSION);
	m->snapshot_lsn = ab_repo_mstrdup(lsn);
	m->from_standby = RecoveryInProgress();

	/*
	 * What a later backup's proof needs (pg/unchanged.c), on a primary only.
	 * The WAL up to the snapshot is flushed first: a crash must not undo a
	 * commit this backup saw (synchronous_commit = off), or hand out its LSNs
	 * and transaction ids again.  The flush goes to the end of what has been
	 * inserted: at a page boundary the insert position points past a page
	 * header not written yet, which XLogFlush refuses ("not satisfied").
	 */
	if (!RecoveryInProgress())
	{
		XLogFlush(GetXLogInsertEndRecPtr());
		m->reuse_lsn = ab_repo_mstrdup(psprintf("%X/%X", LSN_FORMAT_ARGS(lsn_before)));
		m->snapshot_xmin = (int64) U64FromFullTransactionId(ab_snapshot_xmin_full(snap));
		m->timeline = GetWALInsertionTimeLine();
		m->database_oid = MyDatabaseId;
	}
	base = full ? NULL : ab_incremental_base(client, dbname);

	/* every entry first: m->tables moves no more, its pointers stay good */
	foreach(lc, tables)
		(void) manifest_table(m, lfirst(lc));
	parts = palloc0(sizeof(AbDdlParts) * (list_length(tables) + 1));
	capture_definitions(tables, m, parts);
	capture_partitioned(tables, snap, m, &pparts);
	ab_progress_phase("copying");

	tablecxt = AllocSetContextCreate(CurrentMemoryContext, "aibackup table",
									 ALLOCSET_DEFAULT_SIZES);
	ab_throttle_init(&throttle);
	memset(&cx, 0, sizeof(cx));
	cx.client = client;
	cx.base = base;
	cx.backup_id = backup_id;
	cx.snap = snap;
	cx.throttle = &throttle;
	cx.tablecxt = tablecxt;
	cx.ntables = list_length(tables);
	outcome.res = res;
	outcome.tables = tables;
	outcome.m = m;
	if (!ab_table_workers_run(&cx, tables, m, table_outcome, &outcome))
	{
		foreach(lc, tables)
		{
			(void) ab_backup_table(&cx, lfirst(lc),
								   &m->tables[foreach_current_index(lc)]);
			table_outcome(&outcome, foreach_current_index(lc));
		}
	}

	record_large_objects(m, snap);
	seqs = ab_catalog_sequences();
	foreach(lc, seqs)
	{
		AbSequence *s = lfirst(lc);
		MfSequence *ms;

		if (ab_repo_to_utf8(s->schema, GetDatabaseEncoding(), true) == NULL ||
			ab_repo_to_utf8(s->name, GetDatabaseEncoding(), true) == NULL ||
			(s->extension != NULL &&
			 ab_repo_to_utf8(s->extension, GetDatabaseEncoding(), true) == NULL))
		{
			ereport(WARNING,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("aibackup: sequence \"%s.%s\" is left out of the manifest: its name has no UTF-8 spelling",
							ab_repo_quotable(s->schema), ab_repo_quotable(s->name))));
			continue;
		}
		ms = mf_add_sequence(m);
		if (ms == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		ms->schema = ab_repo_mstrdup(s->schema);
		ms->name = ab_repo_mstrdup(s->name);
		ms->extension = ab_repo_mstrdup(s->extension);
		ms->last_value = s->last_value;
		ms->is_called = s->is_called;
	}

	/* a run that backed up no table, though it had some, is no backup */
	if (res->tables_failed == 0)
		res->status = "ok";
	else if (res->tables_ok == 0)
		res->status = "failed";
	else
		res->status = "partial";
	m->status = ab_repo_mstrdup(res->status);
	m->finished_at = ab_repo_mstrdup(ab_repo_iso_utc(GetCurrentTimestamp()));
	if (res->tables_ok > 0)
		restore_scripts(client, m, parts, pparts);
	ab_progress_phase("writing manifest");
	ab_repo_check_backup_objects(client, m);
	ab_repo_write_manifest(client, m);

	res->backup_id = backup_id;
	if (base != NULL)
		res->copied_from = pstrdup(base->backup_id);
	if (res->tables_failed > 0)
	{
		for (int i = 0; i < m->ntables; i++)
			if (m->tables[i].error)
			{
				res->first_error = psprintf("table %s.%s: %s",
											ab_repo_quotable(m->tables[i].schema),
											ab_repo_quotable(m->tables[i].name),
											m->tables[i].error);
				break;
			}
	}

	/*
	 * The backup stands from here: it is recorded as such at once, so that
	 * what follows (the index, a cache) cannot make it count as failed, nor a
	 * process that ends now (a conflict with recovery on a standby) as one to
	 * run again.
	 */
	record_result(res);
	if (m->reuse_lsn != NULL)
		ab_history_mark(backup_id);
	UnregisterSnapshot(snap);
	ab_table_stats_record(m);
	update_index(client, dbname, m);
	return res;
}

/* the backup's outcome in pg_stat_aibackup, once */
static void
record_result(const AbBackupResult *res)
{
	if (!backup_registered)
		return;
	backup_registered = false;
	ab_state_backup_finished(MyDatabaseId, res->status, res->first_error,
							 res->tables_ok, res->tables_failed, res->rows,
							 res->raw_bytes, res->compressed_bytes);
}

AbBackupResult *
ab_backup_run(List *relids, bool scheduled, bool full)
{
	AbBackupResult *res = NULL;
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		res = backup_run(relids, scheduled, full);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		/* a backup refused before it began (another one runs) counts nothing */
		if (backup_registered)
			ab_state_backup_finished(MyDatabaseId, "failed", edata->message,
									 0, 0, 0, 0, 0);
		backup_registered = false;
		ab_progress_end();
		FreeErrorData(edata);
		PG_RE_THROW();
	}
	PG_END_TRY();
	record_result(res);
	ab_progress_end();
	return res;
}

void
ab_backup_take_over_folder(void)
{
	char	   *dbname = get_database_name(MyDatabaseId);
	S3Client   *client;

	ab_repo_check_folder_unique();
	ab_backup_lock_database(dbname);
	client = ab_s3_client();
	ab_index_update(client, dbname, NULL, NIL, true);
	ereport(NOTICE,
			(errmsg("the backups of database \"%s\" now belong to this cluster (system identifier %s)",
					dbname, ab_system_identifier())));
}
