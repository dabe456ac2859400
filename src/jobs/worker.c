/*
 * worker.c
 *		The per-database background worker the launcher starts for a
 *		scheduled run: it runs exactly the backup aibackup_backup_now() runs
 *		(ab_backup_run), then applies retention, logs one line, and exits.
 *
 * Shutdown: SIGTERM does not end the process on the spot (a FATAL would
 * skip the cleanup that aborts open multipart uploads).  It raises a query
 * cancel instead: the copy, or libcurl through its abort callback, stops
 * within moments, the ERROR unwinds through backup.c (which aborts the
 * uploads and writes no manifest), and the worker exits.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "jobs/backup.h"
#include "jobs/retention.h"
#include "jobs/worker.h"
#include "pg/state.h"

PGDLLEXPORT void aibackup_worker_main(Datum main_arg);

volatile sig_atomic_t ab_worker_terminated = false;

void
ab_worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	ab_worker_terminated = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static char *
pretty_bytes(int64 n)
{
	return text_to_cstring(DatumGetTextPP(DirectFunctionCall1(pg_size_pretty,
															  Int64GetDatum(n))));
}

void
aibackup_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	char	   *dbname;
	TimestampTz start;
	AbBackupResult *res;
	volatile bool backed_up = false;

	pqsignal(SIGTERM, ab_worker_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/*
	 * Read only.  The backup registers its own snapshot once its locks are
	 * held (backup.c); the one pushed here serves the catalog reads before.
	 */
	DefaultXactIsoLevel = XACT_READ_COMMITTED;
	DefaultXactReadOnly = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(dboid));
	pgstat_report_activity(STATE_RUNNING, "aibackup: scheduled backup");
	start = GetCurrentTimestamp();

	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		res = ab_backup_run(NIL, true, false);
		ereport(LOG,
				(errmsg("aibackup: backup \"%s\" of database \"%s\" %s: %d tables, " INT64_FORMAT " rows, %s raw, %s compressed in %.1f s",
						res->backup_id, dbname,
						strcmp(res->status, "ok") == 0 ? "finished" :
						strcmp(res->status, "partial") == 0 ? "finished partially" :
						"failed for every table",
						res->tables_ok, res->rows,
						pretty_bytes(res->raw_bytes), pretty_bytes(res->compressed_bytes),
						(double) (GetCurrentTimestamp() - start) / USECS_PER_SEC),
				 res->tables_failed ?
				 errdetail("%d tables failed; first: %s", res->tables_failed,
						   res->first_error ? res->first_error : "") :
				 res->tables_copied ?
				 errdetail("%d unchanged tables were copied from backup \"%s\".",
						   res->tables_copied, res->copied_from) : 0));
		backed_up = true;

		/*
		 * Retention in a transaction of its own: the backup's locks and
		 * snapshot are let go first (on a standby they hold up WAL replay),
		 * all but the database's backup lock, taken again (a backup begun in
		 * between fails it: retention waits for the next run).
		 */
		PopActiveSnapshot();
		CommitTransactionCommand();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		ab_backup_lock_database(dbname);
		ab_retention_apply(dbname);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		if (backed_up)
			ereport(LOG,
					(errmsg("aibackup: retention of database \"%s\" failed: %s",
							dbname, edata->message),
					 errdetail("The backup itself is complete.")));
		else if (ab_worker_terminated)
			ereport(LOG,
					(errmsg("aibackup: backup of database \"%s\" stopped by shutdown; no manifest was written",
							dbname)));
		else
		{
			/* the launcher tries a standby's run again (launcher.c) */
			if (edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE &&
				RecoveryInProgress())
				ab_state_note_conflict(dboid);
			ereport(LOG,
					(errmsg("aibackup: backup of database \"%s\" failed: %s",
							dbname, edata->message),
					 edata->detail ? errdetail("%s", edata->detail) : 0,
					 edata->hint ? errhint("%s", edata->hint) : 0));
		}
		RESUME_INTERRUPTS();
		proc_exit(1);
	}
	PG_END_TRY();

	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}

bool
ab_worker_start(Oid dboid, const char *dbname, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;	/* a standby's too */
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "aibackup", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "aibackup_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "aibackup worker for database %s", dbname);
	strlcpy(worker.bgw_type, "aibackup worker", BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}
