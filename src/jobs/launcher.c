/*
 * launcher.c
 *		The scheduler: a static background worker that owns the schedule and
 *		nothing else.  At each slot it starts one dynamic worker per database
 *		(worker.c), at most aibackup.max_workers at a time; the work itself
 *		is the same backup aibackup_backup_now() runs.
 *
 * Schedule: slots are multiples of aibackup.interval since the Unix epoch,
 * so with 4h runs start at 00:00, 04:00, ... UTC whatever the server's start
 * time.  At start (and after a crash restart) the launcher
 *	- aborts multipart uploads left under the prefix by runs that died
 *	  (a FATAL or SIGKILL skips a worker's own cleanup),
 *	- looks up each database's newest backup in S3: one older than an
 *	  interval (or none) is due at once ("catch-up"), and its facts seed
 *	  pg_stat_aibackup when shared memory was lost.
 * A database still being backed up when its next slot comes (by a worker
 * or by a manual aibackup_backup_now()) is skipped, and that is logged.
 *
 * Standbys (aibackup.backup_from_standby, set on both): a standby's
 * launcher serves only with the setting on; a primary's then backs up a
 * database only when no standby's backup of it began in the last 1.25
 * intervals (the standby down, its runs failing, its setting off).  Each
 * sweeps only the uploads of its own kind of backup id (a primary's even
 * seconds, a standby's odd ones): the other's may be in flight.  The role
 * is asked every turn, so a promotion or a reload changes it.
 *
 * The loop reads like autoprewarm's: signals, then "while not shutting
 * down": reload settings, reap finished workers, do what is due, start what
 * is queued, sleep on the latch until the next thing to do.  The launcher
 * connects to no database: it reads pg_database only, a shared catalog.
 */
#include "postgres.h"

#include <time.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_database.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "core/manifest.h"
#include "jobs/launcher.h"
#include "jobs/worker.h"
#include "pg/repo.h"
#include "pg/repo_index.h"
#include "pg/s3_session.h"
#include "pg/settings.h"
#include "pg/state.h"
#include "pg/table_stats.h"

PGDLLEXPORT void aibackup_launcher_main(Datum main_arg);

/* a database the scheduler serves */
typedef struct LDatabase
{
	Oid			oid;
	char		name[NAMEDATALEN];
	char	   *repo_name;		/* its S3 folder's spelling (UTF-8), NULL if
								 * not known here */
} LDatabase;

/* a database waiting for a worker, or being backed up by one */
typedef struct LJob
{
	Oid			oid;
	char		name[NAMEDATALEN];
	BackgroundWorkerHandle *handle; /* NULL while queued */
	int			retries;		/* runs tried again after a conflict */
	TimestampTz not_before;		/* queued: start it then, not earlier */
} LJob;

/* a standby's run ended by a conflict with recovery is tried again */
#define AB_CONFLICT_RETRIES		3

/* the queue, in TopMemoryContext; it grows with the number of databases */
static LJob *jobs = NULL;
static int	njobs = 0;
static int	jobs_cap = 0;

/* uploads begun before this cannot be this launcher's workers' */
static TimestampTz launcher_started = 0;

/* the next slot (Unix seconds) after t, for the current interval */
static time_t
next_slot_after(time_t t)
{
	time_t		iv = ab_interval_s > 0 ? ab_interval_s : 4 * 3600;

	return (t / iv + 1) * iv;
}

static TimestampTz
unix_to_ts(time_t t)
{
	return time_t_to_timestamptz((pg_time_t) t);
}

/*
 * A database's name as its S3 folder spells it (UTF-8; see repo.h).  The
 * launcher is connected to no database and cannot convert encodings (that
 * needs a database's pg_conversion), so: what the database's last backup
 * recorded; else the name itself when it is ASCII or already UTF-8; else
 * NULL (unknown until the database's first backup here).
 */
static char *
repo_name_of(Form_pg_database db)
{
	char		buf[4 * NAMEDATALEN];
	const char *name = NameStr(db->datname);
	bool		ascii = true;

	if (ab_state_repo_name(db->oid, buf, sizeof(buf)))
		return pstrdup(buf);
	for (const char *p = name; *p; p++)
	{
		if (IS_HIGHBIT_SET(*p))
			ascii = false;
	}
	if (ascii ||
		((db->encoding == PG_UTF8 || db->encoding == PG_SQL_ASCII) &&
		 pg_verify_mbstr(PG_UTF8, name, strlen(name), true)))
		return pstrdup(name);
	return NULL;
}

/* the databases aibackup.databases names, that exist and allow connections */
/*
 * Rows of pg_stat_aibackup and table histories of databases that were
 * dropped: gone, so that aibackup.max_databases counts live databases.
 */
static void
forget_dropped(List *existing, TimestampTz seen_at)
{
	int			n = list_length(existing);
	Oid		   *oids = palloc(sizeof(Oid) * Max(n, 1));
	Oid		   *gone = palloc(sizeof(Oid) * Max(ab_state_capacity(), 1));
	int			ngone;

	for (int i = 0; i < n; i++)
		oids[i] = list_nth_oid(existing, i);
	ngone = ab_state_forget_missing(oids, n, seen_at, gone,
									Max(ab_state_capacity(), 1));
	for (int i = 0; i < ngone; i++)
		ab_table_stats_forget(gone[i]);
	pfree(oids);
	pfree(gone);
}

static List *
target_databases(void)
{
	List	   *result = NIL;
	List	   *wanted = NIL;
	List	   *existing = NIL;
	TimestampTz seen_at;
	bool		all = (ab_databases == NULL || strcmp(ab_databases, "*") == 0);
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext outer = CurrentMemoryContext;
	ListCell   *lc;

	if (!all)
	{
		char	   *raw = pstrdup(ab_databases);

		if (!SplitIdentifierString(raw, ',', &wanted))
			wanted = NIL;
	}

	SetCurrentStatementStartTimestamp();
	seen_at = GetCurrentTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		bool		take;

		{
			/* the transaction's memory goes at commit */
			MemoryContext old = MemoryContextSwitchTo(outer);

			existing = lappend_oid(existing, db->oid);
			MemoryContextSwitchTo(old);
		}

		if (all)
			take = db->datallowconn && !db->datistemplate;
		else
		{
			take = false;
			foreach(lc, wanted)
			{
				if (strcmp(lfirst(lc), NameStr(db->datname)) == 0)
					take = db->datallowconn;
			}
		}
		/* an interrupted DROP DATABASE leaves it invalid: no connecting */
		if (db->datconnlimit == DATCONNLIMIT_INVALID_DB)
			take = false;
		if (take)
		{
			MemoryContext old = MemoryContextSwitchTo(outer);
			LDatabase  *d = palloc(sizeof(LDatabase));

			d->oid = db->oid;
			strlcpy(d->name, NameStr(db->datname), NAMEDATALEN);
			d->repo_name = repo_name_of(db);
			result = lappend(result, d);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(outer);
	forget_dropped(existing, seen_at);

	/* a listed database that is missing is said, not silently dropped */
	foreach(lc, wanted)
	{
		const char *name = lfirst(lc);
		bool		found = false;
		ListCell   *lc2;

		foreach(lc2, result)
		{
			if (strcmp(((LDatabase *) lfirst(lc2))->name, name) == 0)
				found = true;
		}
		if (!found)
		{
			ereport(LOG,
					(errmsg("aibackup: database \"%s\" in aibackup.databases does not exist or does not allow connections",
							name)));
			ab_state_note_error(InvalidOid, name,
								"database does not exist or does not allow connections");
		}
	}
	return result;
}

static LJob *
find_job(Oid oid)
{
	for (int i = 0; i < njobs; i++)
	{
		if (jobs[i].oid == oid)
			return &jobs[i];
	}
	return NULL;
}

/* queue a database for a run now, unless one is queued or running */
static void
queue_database(const LDatabase *d, const char *why)
{
	char		running_id[AB_ID_LEN] = "";
	bool		scheduled;
	int			pid;

	if (find_job(d->oid) != NULL)
	{
		ereport(LOG,
				(errmsg("aibackup: skipping the %s run of database \"%s\": the previous run is still going",
						why, d->name)));
		return;
	}
	pid = ab_state_running(d->oid, running_id, &scheduled);
	if (pid != 0)
	{
		ereport(LOG,
				(errmsg("aibackup: skipping the %s run of database \"%s\": %s backup \"%s\" is running in process %d",
						why, d->name, scheduled ? "a scheduled" : "a manual",
						running_id, pid)));
		return;
	}
	if (njobs >= jobs_cap)
	{
		jobs_cap = Max(64, jobs_cap * 2);
		jobs = jobs == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(LJob) * jobs_cap) :
			repalloc(jobs, sizeof(LJob) * jobs_cap);
	}
	jobs[njobs].oid = d->oid;
	strlcpy(jobs[njobs].name, d->name, NAMEDATALEN);
	jobs[njobs].handle = NULL;
	jobs[njobs].retries = 0;
	jobs[njobs].not_before = 0;
	njobs++;
}

/*
 * On a standby, WAL replay cancels a backup whose snapshot or locks hold it
 * up longer than max_standby_streaming_delay (a VACUUM on the primary that
 * removed rows the snapshot sees, an ACCESS EXCLUSIVE lock taken there):
 * an ERROR, or a FATAL when it comes in a table's subtransaction.  Either
 * way the run is queued again with a new snapshot to come, after a pause
 * that lets a lock go.  True when job j is queued again.
 */
static bool
retry_after_conflict(LJob *job)
{
	int			pause = 5 << job->retries;

	if (!RecoveryInProgress() || !ab_state_take_conflict(job->oid))
		return false;
	if (job->retries >= AB_CONFLICT_RETRIES)
	{
		ereport(LOG,
				(errmsg("aibackup: backup of database \"%s\" on this standby was ended by a conflict with recovery %d times in a row; it waits for the next slot",
						job->name, job->retries + 1),
				 errhint("Set hot_standby_feedback = on, or raise max_standby_streaming_delay, on this standby.")));
		return false;
	}
	job->retries++;
	job->handle = NULL;
	job->not_before = GetCurrentTimestamp() + (TimestampTz) pause * USECS_PER_SEC;
	ereport(LOG,
			(errmsg("aibackup: backup of database \"%s\" was canceled by a conflict with recovery; trying again in %d s (attempt %d of %d)",
					job->name, pause, job->retries, AB_CONFLICT_RETRIES),
			 errdetail("A worker that ends on a standby with its backup unfinished is taken for one: a conflict met while a table is copied ends the process.")));
	return true;
}

/* forget finished workers; true if any job is still queued or running */
static bool
reap_jobs(void)
{
	int			j = 0;

	for (int i = 0; i < njobs; i++)
	{
		pid_t		pid;

		if (jobs[i].handle != NULL &&
			GetBackgroundWorkerPid(jobs[i].handle, &pid) == BGWH_STOPPED)
		{
			pfree(jobs[i].handle);
			jobs[i].handle = NULL;
			if (!retry_after_conflict(&jobs[i]))
				continue;
		}
		jobs[j++] = jobs[i];
	}
	njobs = j;
	return njobs > 0;
}

static void
start_jobs(void)
{
	int			running = 0;

	for (int i = 0; i < njobs; i++)
	{
		if (jobs[i].handle != NULL)
			running++;
	}
	for (int i = 0; i < njobs && running < ab_max_workers; i++)
	{
		MemoryContext old;
		bool		started;

		if (jobs[i].handle != NULL ||
			jobs[i].not_before > GetCurrentTimestamp())
			continue;
		/* what an earlier process left says nothing of this run */
		(void) ab_state_take_conflict(jobs[i].oid);
		old = MemoryContextSwitchTo(TopMemoryContext);
		started = ab_worker_start(jobs[i].oid, jobs[i].name,
								  &jobs[i].handle);

		MemoryContextSwitchTo(old);
		if (!started)
		{
			ereport(LOG,
					(errmsg("aibackup: could not start a worker for database \"%s\"",
							jobs[i].name),
					 errhint("Raise max_worker_processes.")));
			jobs[i].handle = NULL;
			break;				/* try again at the next wake-up */
		}
		running++;
	}
}

/* S3's Initiated is in whole seconds, rounded either way */
#define AB_INITIATED_MARGIN		(2 * USECS_PER_SEC)

/* an upload older than this, of a database with no backup running, is debris */
#define AB_DEBRIS_AGE			(10 * 60 * USECS_PER_SEC)

static bool
str_member(List *l, const char *s)
{
	ListCell   *lc;

	foreach(lc, l)
	{
		if (strcmp(lfirst(lc), s) == 0)
			return true;
	}
	return false;
}

/*
 * In a PG_CATCH, back in cxt: the error as one LOG line, "aibackup: could
 * not <what>: <message>" (its hint, and detail if given), then forgotten.
 * The launcher goes on; the next turn or slot tries again.
 */
static void
log_and_forget(MemoryContext cxt, const char *what, const char *detail)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	ereport(LOG,
			(errmsg("aibackup: could not %s: %s", what, edata->message),
			 detail ? errdetail("%s", detail) : 0,
			 edata->hint ? errhint("%s", edata->hint) : 0));
	FreeErrorData(edata);
}

/*
 * Abort the multipart uploads begun before `before` in the folders of our
 * databases, except those with a backup running now (a manual one, or a
 * worker's): what is left was opened by a run that died.
 */
static void
abort_debris_uploads(S3Client *client, TimestampTz before, List *dbs)
{
	AbDbState  *states = palloc(sizeof(AbDbState) * Max(ab_state_capacity(), 1));
	int			n = ab_state_snapshot(states, ab_state_capacity());
	List	   *running = NIL;
	List	   *names = NIL;
	List	   *ours = NIL;
	ListCell   *lc;
	int			aborted;

	/* full: a backup beyond aibackup.max_databases has no row to say it runs */
	if (n >= ab_state_capacity())
	{
		ereport(LOG,
				(errmsg("aibackup: not looking for abandoned uploads: aibackup.max_databases is full, so running backups cannot all be seen")));
		return;
	}
	for (int i = 0; i < n; i++)
	{
		if (states[i].running_pid == 0)
			continue;
		if (states[i].repo_name[0] == '\0')
			return;				/* a running backup we cannot place: wait */
		running = lappend(running, ab_repo_db_prefix(states[i].repo_name));
	}

	/*
	 * Only folders of our databases (served, or backed up here by hand), with
	 * no backup running now, that no other cluster owns: another cluster's
	 * uploads are none of our business.
	 */
	foreach(lc, dbs)
	{
		if (((LDatabase *) lfirst(lc))->repo_name)
			names = lappend(names, ((LDatabase *) lfirst(lc))->repo_name);
	}
	for (int i = 0; i < n; i++)
	{
		if (states[i].repo_name[0] != '\0')
			names = lappend(names, pstrdup(states[i].repo_name));
	}
	foreach(lc, names)
	{
		char	   *prefix = ab_repo_db_prefix(lfirst(lc));
		char	   *source;
		char	   *owner;

		if (str_member(running, prefix) || str_member(ours, prefix))
			continue;
		owner = ab_folder_owner(client, lfirst(lc), &source);
		if (owner == NULL || strcmp(owner, ab_system_identifier()) == 0)
			ours = lappend(ours, prefix);
	}
	aborted = ab_repo_abort_stale_uploads(client, before, ours,
										  ab_repo_id_parity());
	if (aborted > 0)
		ereport(LOG,
				(errmsg("aibackup: aborted %d multipart uploads left by earlier runs", aborted)));
}

/*
 * Each scheduled slot looks again, for uploads of runs that died since the
 * start (a worker killed by SIGKILL or OOM, a backend that crashed).
 * False (and a LOG line) when S3 is not usable; the next slot tries again.
 */
static bool
debris_pass(List *dbs)
{
	MemoryContext old = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		abort_debris_uploads(ab_s3_client(),
							 GetCurrentTimestamp() - AB_DEBRIS_AGE, dbs);
	}
	PG_CATCH();
	{
		log_and_forget(old, "look for abandoned uploads in S3", NULL);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * The start of database d's newest backup that did not fail (0 if none),
 * seeding pg_stat_aibackup with it when seed; with standby, also the start
 * of the newest such backup a standby made (0 if none).  One walk, newest
 * first, that goes past the newest only to find a standby's.
 */
static TimestampTz
walk_newest(S3Client *client, const LDatabase *d, bool seed,
			TimestampTz *standby)
{
	TimestampTz newest = 0;
	AbBackupWalk *w = ab_walk_begin(client, d->repo_name, 0);
	AbBackup	b;

	if (standby)
		*standby = 0;
	while (ab_walk_next(w, &b))
	{
		TimestampTz t;

		if (strcmp(b.summary->status, "failed") == 0)
			continue;
		t = ab_repo_backup_time(b.backup_id);
		if (newest == 0)
		{
			newest = t;
			if (seed)
				ab_state_seed(d->oid, d->name, b.backup_id, b.summary->status, t);
		}
		if (standby == NULL)
			break;
		if (b.summary->from_standby)
		{
			*standby = t;
			break;
		}
	}
	ab_walk_end(w);
	return newest;
}

/*
 * A primary with aibackup.backup_from_standby leaves database d to a
 * standby while the standby's backups keep coming: it backs d up only when
 * none of them began in the last 1.25 intervals (the standby is down, its
 * setting is off, its runs fail), and says so when it begins to.  standby:
 * the start of the standby's newest backup of d, 0 if none.
 */
static bool
primary_takes_over(const LDatabase *d, TimestampTz standby, TimestampTz now)
{
	TimestampTz window = (TimestampTz) ab_interval_s * USECS_PER_SEC * 5 / 4;
	static List *taken_over = NIL;	/* at their last decision: said once */
	MemoryContext old;
	bool		said;

	if (standby != 0 && now - standby <= window)
	{
		taken_over = list_delete_oid(taken_over, d->oid);
		return false;
	}
	said = list_member_oid(taken_over, d->oid);
	old = MemoryContextSwitchTo(TopMemoryContext);
	taken_over = list_append_unique_oid(taken_over, d->oid);
	MemoryContextSwitchTo(old);
	if (said)
		return true;
	if (standby != 0)
		ereport(LOG,
				(errmsg("aibackup: no backup of database \"%s\" from a standby since %s; the primary backs it up",
						d->name, timestamptz_to_str(standby)),
				 errhint("The primary stands down again once a standby's backup of it comes (aibackup.backup_from_standby).")));
	else
		ereport(LOG,
				(errmsg("aibackup: no backup of database \"%s\" from a standby yet; the primary backs it up",
						d->name),
				 errhint("The primary stands down once a standby's backup of it comes (aibackup.backup_from_standby).")));
	return true;
}

/*
 * The databases of dbs a primary with aibackup.backup_from_standby backs up
 * at this slot (see primary_takes_over).  When S3 cannot tell, all of them:
 * a backup twice is better than none, and the runs report S3's error.
 */
static List *
deferred_due(List *dbs)
{
	MemoryContext old = CurrentMemoryContext;
	TimestampTz now = GetCurrentTimestamp();
	List	   *due = NIL;
	ListCell   *lc;
	static int	last_deferred = -1;

	PG_TRY();
	{
		S3Client   *client = ab_s3_client();

		foreach(lc, dbs)
		{
			LDatabase  *d = lfirst(lc);
			TimestampTz standby = 0;

			/* a folder not known here yet: back it up to learn it */
			if (d->repo_name)
				(void) walk_newest(client, d, false, &standby);
			if (primary_takes_over(d, standby, now))
				due = lappend(due, d);
		}
		/* said when it changes, not at every slot */
		if (list_length(dbs) - list_length(due) != last_deferred)
		{
			last_deferred = list_length(dbs) - list_length(due);
			ereport(LOG,
					(errmsg("aibackup: a standby backs up %d of %d databases; the primary stands down for those (aibackup.backup_from_standby)",
							last_deferred, list_length(dbs))));
		}
	}
	PG_CATCH();
	{
		log_and_forget(old, "look for standbys' backups in S3",
					   "The primary backs up every database at this slot.");
		due = list_copy(dbs);
	}
	PG_END_TRY();
	return due;
}

/*
 * Start-up work that needs S3: abort stale uploads, find databases whose
 * newest backup is older than one interval, seed the stats.  A primary
 * deferring to a standby (aibackup.backup_from_standby) finds the databases
 * no standby backs up; a standby looks at standbys' backups only.  False
 * (and a LOG line) when S3 is not usable yet; the caller retries later.
 */
static bool
startup_pass(List *dbs, bool deferring, List **due)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "aibackup startup",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	bool		ok = true;

	*due = NIL;
	PG_TRY();
	{
		S3Client   *client = ab_s3_client();
		TimestampTz now = GetCurrentTimestamp();
		ListCell   *lc;

		/*
		 * S3 reports an upload's start in whole seconds (Swift rounds up):
		 * one begun just before a crash restart can look newer than this
		 * launcher, hence the margin.  Uploads of backups running now are
		 * skipped by database; one that a manual backup opens within the
		 * margin after registering later than our look is the residual risk
		 * (its table then fails and the next run retries it).
		 */
		abort_debris_uploads(client, launcher_started + AB_INITIATED_MARGIN, dbs);
		foreach(lc, dbs)
		{
			LDatabase  *d = lfirst(lc);
			TimestampTz newest = 0;
			TimestampTz standby = 0;
			bool		is_due;

			/* a folder we cannot name yet: back it up to learn it */
			if (d->repo_name)
				newest = walk_newest(client, d, true,
									 ab_backup_from_standby ? &standby : NULL);

			/*
			 * A deferring primary catches up only what no one backed up
			 * within the interval and no standby backs up.  A standby counts
			 * only standbys' backups: one that comes back after the primary
			 * took over catches up now, so that the primary stands down at
			 * its next slot instead of running alongside it.
			 */
			if (deferring)
				is_due = (newest == 0 ||
						  now - newest > (TimestampTz) ab_interval_s * USECS_PER_SEC) &&
					primary_takes_over(d, standby, now);
			else
			{
				TimestampTz last = RecoveryInProgress() ? standby : newest;

				is_due = last == 0 ||
					now - last > (TimestampTz) ab_interval_s * USECS_PER_SEC;
			}
			if (is_due)
			{
				MemoryContext o = MemoryContextSwitchTo(old);

				*due = lappend(*due, d);
				MemoryContextSwitchTo(o);
			}
		}
	}
	PG_CATCH();
	{
		log_and_forget(old, "check earlier backups in S3", NULL);
		*due = NIL;
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return ok;
}

void
aibackup_launcher_main(Datum main_arg)
{
	time_t		next_slot;
	time_t		published_slot = 0;
	bool		startup_done = false;
	bool		standby_served = false; /* last turn, as a standby */
	TimestampTz startup_retry = 0;
	int			last_interval;
	MemoryContext loopcxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	launcher_started = GetCurrentTimestamp();
	loopcxt = AllocSetContextCreate(TopMemoryContext, "aibackup launcher",
									ALLOCSET_DEFAULT_SIZES);
	last_interval = ab_interval_s;
	next_slot = next_slot_after(time(NULL));
	if (!ab_enabled)
		ereport(LOG,
				(errmsg("aibackup launcher started; scheduled backups are off (aibackup.enabled)")));
	else if (RecoveryInProgress() && !ab_backup_from_standby)
		ereport(LOG,
				(errmsg("aibackup launcher started on a standby; scheduled backups run here only with aibackup.backup_from_standby = on")));
	else
		ereport(LOG,
				(errmsg("aibackup launcher started%s: every %d s, next run at %s",
						RecoveryInProgress() ? " on a standby" : "",
						ab_interval_s,
						timestamptz_to_str(unix_to_ts(next_slot)))));

	while (!ShutdownRequestPending)
	{
		long		sleep_ms;
		time_t		now;
		bool		busy;
		List	   *dbs;		/* read from pg_database at most once a turn */
		bool		dbs_read;
		bool		in_recovery;
		bool		serving;
		bool		deferring;

		MemoryContextReset(loopcxt);
		MemoryContextSwitchTo(loopcxt);

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			ab_state_publish_rate(ab_max_rate_mb);
			published_slot = 0; /* databases or schedule may have changed */
			if (ab_interval_s != last_interval)
			{
				last_interval = ab_interval_s;
				next_slot = next_slot_after(time(NULL));
				ereport(LOG,
						(errmsg("aibackup: interval is now %d s, next run at %s",
								ab_interval_s,
								timestamptz_to_str(unix_to_ts(next_slot)))));
			}
		}

		busy = reap_jobs();
		now = time(NULL);
		dbs = NIL;
		dbs_read = false;

		/*
		 * Who backs up: a primary, or a standby with backup_from_standby; a
		 * primary with it leaves each database to the standby while the
		 * standby's backups come.  Asked each turn: a promotion or a reload
		 * changes it.
		 */
		in_recovery = RecoveryInProgress();
		serving = ab_enabled && (!in_recovery || ab_backup_from_standby);
		deferring = serving && !in_recovery && ab_backup_from_standby;

		/*
		 * A standby that takes up the schedule again (a reload) catches up as
		 * at a start, so that it does not meet the primary at the slot.
		 */
		if (serving && in_recovery && !standby_served)
			startup_done = false;
		standby_served = serving && in_recovery;

		if (serving && !startup_done && GetCurrentTimestamp() >= startup_retry)
		{
			List	   *due;
			ListCell   *lc;

			dbs = target_databases();
			dbs_read = true;
			if (startup_pass(dbs, deferring, &due))
			{
				startup_done = true;
				foreach(lc, due)
					queue_database(lfirst(lc), "catch-up");
			}
			else
				startup_retry = GetCurrentTimestamp() + 60 * USECS_PER_SEC;
		}

		if (now >= next_slot)
		{
			if (serving)
			{
				ListCell   *lc;

				if (!dbs_read)
				{
					dbs = target_databases();
					dbs_read = true;
				}
				foreach(lc, deferring ? deferred_due(dbs) : dbs)
					queue_database(lfirst(lc), "scheduled");
				if (startup_done)
					(void) debris_pass(dbs);
			}
			next_slot = next_slot_after(now);
		}

		/* tell the view when each served database runs next */
		if (serving && published_slot != next_slot)
		{
			ListCell   *lc;

			if (!dbs_read)
				dbs = target_databases();
			foreach(lc, dbs)
			{
				LDatabase  *d = lfirst(lc);

				ab_state_set_next_run(d->oid, d->name, unix_to_ts(next_slot));
			}
			published_slot = next_slot;
		}

		start_jobs();
		busy = busy || njobs > 0;

		/* sleep until the next slot, checking on workers now and then */
		sleep_ms = (long) (next_slot - time(NULL)) * 1000L;
		if (sleep_ms < 100)
			sleep_ms = 100;
		if (busy && sleep_ms > 1000)
			sleep_ms = 1000;
		if (serving && !startup_done && sleep_ms > 5000)
			sleep_ms = 5000;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	proc_exit(0);
}

void
ab_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* on a hot standby too: aibackup.backup_from_standby */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, "aibackup", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "aibackup_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "aibackup launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "aibackup launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}
