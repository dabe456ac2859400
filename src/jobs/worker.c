/*
 * worker.c
 *		The per-database background worker the launcher starts for a
 *		scheduled run: it runs exactly the backup aibackup_backup_now() runs
 *		(ab_backup_run), then applies retention, logs one line, and exits.
 *
 * On a standby (aibackup.backup_from_standby) a run that WAL replay cancels
 * is tried again, AB_CONFLICT_RETRIES times.
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

/* how a run ended */
typedef enum AbRunEnd
{
	AB_RUN_DONE,				/* a manifest was written */
	AB_RUN_FAILED,
	AB_RUN_CONFLICT,			/* canceled by a conflict with recovery */
} AbRunEnd;

/* a run canceled by a conflict with recovery is tried again this often */
#define AB_CONFLICT_RETRIES		3

static AbRunEnd
run_backup(const char *dbname, bool may_retry)
{
	TimestampTz start = GetCurrentTimestamp();
	AbBackupResult *res;
	AbRunEnd	end = AB_RUN_DONE;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "aibackup: scheduled backup");
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
		end = AB_RUN_FAILED;
		if (ab_worker_terminated)
			ereport(LOG,
					(errmsg("aibackup: backup of database \"%s\" stopped by shutdown; no manifest was written",
							dbname)));
		else if (may_retry && RecoveryInProgress() &&
				 edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE)
			end = AB_RUN_CONFLICT;	/* the caller says it */
		else
			ereport(LOG,
					(errmsg("aibackup: backup of database \"%s\" failed: %s",
							dbname, edata->message),
					 edata->detail ? errdetail("%s", edata->detail) : 0,
					 edata->hint ? errhint("%s", edata->hint) : 0));
		FreeErrorData(edata);
		RESUME_INTERRUPTS();
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return end;
}

/*
 * Wait secs on the latch; false when a shutdown came.  No CHECK_FOR_-
 * INTERRUPTS here: outside a transaction the cancel SIGTERM raises would be
 * an ERROR with nothing to catch it.
 */
static bool
nap(int secs)
{
	TimestampTz until = GetCurrentTimestamp() + (TimestampTz) secs * USECS_PER_SEC;

	while (!ab_worker_terminated)
	{
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		if (ms <= 0)
			return true;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	return false;
}

void
aibackup_worker_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	char	   *dbname;
	AbRunEnd	end;

	pqsignal(SIGTERM, ab_worker_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/*
	 * Read only.  The backup registers its own snapshot once its locks are
	 * held (backup.c); the one pushed in run_backup() serves the catalog
	 * reads before.
	 */
	DefaultXactIsoLevel = XACT_READ_COMMITTED;
	DefaultXactReadOnly = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(dboid));
	CommitTransactionCommand();

	/*
	 * On a standby, WAL replay cancels a backup whose snapshot or locks hold
	 * it up longer than max_standby_streaming_delay (a VACUUM on the primary
	 * removed rows the snapshot sees, an ACCESS EXCLUSIVE lock there).  The
	 * run is tried again with a new snapshot, after a pause that lets the
	 * lock go.
	 */
	for (int attempt = 1;; attempt++)
	{
		int			pause = 5 << (attempt - 1);

		end = run_backup(dbname, attempt <= AB_CONFLICT_RETRIES);
		if (end != AB_RUN_CONFLICT)
			break;
		ereport(LOG,
				(errmsg("aibackup: backup of database \"%s\" was canceled by a conflict with recovery; trying again in %d s (attempt %d of %d)",
						dbname, pause, attempt, AB_CONFLICT_RETRIES),
				 errhint("Set hot_standby_feedback = on, or raise max_standby_streaming_delay, on this standby.")));
		if (!nap(pause))
		{
			ereport(LOG,
					(errmsg("aibackup: backup of database \"%s\" stopped by shutdown; no manifest was written",
							dbname)));
			end = AB_RUN_FAILED;
			break;
		}
	}
	proc_exit(end == AB_RUN_DONE ? 0 : 1);
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
