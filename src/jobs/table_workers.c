/*
 * table_workers.c
 *		A backup's tables copied by several processes at once, under the
 *		backup's one snapshot (aibackup.max_parallel_tables).
 *
 * The backup's process (the leader: a backend in aibackup_backup_now(), or
 * a scheduled run's worker) has locked every table, taken the snapshot and
 * made every manifest entry.  It then starts up to max_parallel_tables
 * dynamic background workers and, until they are done, only coordinates:
 *	- A DSM segment holds what a worker needs: the leader's settings
 *	  (SerializeGUCState), its snapshot (SerializeSnapshot), its user, the
 *	  backup's id, every table's entry (mf_table_pack), the order of the
 *	  tables (largest on disk first), a counter the workers take the next
 *	  table from, and one message queue per worker back to the leader.
 *	- A worker joins the leader's lock group first.  A DDL statement queued
 *	  behind the leader's ACCESS SHARE lock on a table would otherwise queue
 *	  the worker's own ACCESS SHARE request behind it, and the three would
 *	  wait on each other unseen; in the group, the worker's request is
 *	  granted at once, as the leader's own would be.
 *	- It takes the leader's snapshot as its transaction snapshot (the
 *	  leader's xmin keeps it valid), so every table is read as of the same
 *	  moment, whichever process reads it.
 *	- It copies each table as the leader would (backup_table.c) and sends
 *	  the filled entry back; the leader puts it into the manifest, which it
 *	  alone writes, last.  Notices and errors reach the leader through the
 *	  same queue (pq_redirect_to_shm_mq) and from there its client.
 *	- An error that fails the backup in a worker (S3 itself, a cancel, a
 *	  shutdown) fails it in the leader; any error in the leader stops every
 *	  worker and waits for them to end.  A worker aborts its own open upload
 *	  before it ends, so neither leaves a manifest or an upload behind.  A
 *	  worker killed outright takes the cluster through crash recovery: the
 *	  launcher's start-up sweep aborts what it left.
 *
 * max_rate is shared: each worker takes an equal part of the rate the
 * leader sees (it republishes it, so a reload reaches a scheduled run).
 * Progress: each worker has a row of its own in pg_stat_progress_aibackup;
 * the leader's row counts the tables finished and sums the workers' bytes.
 */
#include "postgres.h"

#include <signal.h>

#include "access/parallel.h"
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "libpq/libpq.h"
#include "libpq/pqformat.h"
#include "libpq/pqmq.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/bufmgr.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "jobs/backup_table.h"
#include "jobs/incremental.h"
#include "jobs/table_workers.h"
#include "jobs/worker.h"
#include "pg/s3_session.h"
#include "pg/settings.h"
#include "pg/state.h"
#include "pg/throttle.h"

#define TW_MAGIC		0x61627477	/* "abtw" */
#define TW_KEY_SHARED	1
#define TW_KEY_GUC		2
#define TW_KEY_SNAPSHOT	3
#define TW_KEY_TABLES	4
#define TW_KEY_QUEUES	5
#define TW_QUEUE_SIZE	(64 * 1024)

/* a message from a worker: its first byte */
#define TW_MSG_RESULT	'r'		/* int32 index, then the packed entry */
#define TW_MSG_DONE		'd'		/* no table left */

typedef struct TwShared
{
	Oid			dboid;
	Oid			auth_userid;	/* who the leader's session logged in as */
	Oid			userid;			/* and whose rights it runs with */
	int			sec_context;
	PGPROC	   *leader;
	int			leader_pid;
	int			nworkers;
	int			ntables;
	char		backup_id[AB_ID_LEN];
	char		base_id[AB_ID_LEN]; /* the incremental base, or "" */
	pg_atomic_uint32 next;		/* the next place in order[] to take */
	pg_atomic_uint32 rate_mb;	/* the leader's max_rate, for all of them */
} TwShared;

/*
 * The tables: offsets[ntables + 1] into data, order[ntables] (indexes into
 * the manifest, largest first), then data, the packed entries.
 */
typedef struct TwTables
{
	int			ntables;
	int		   *order;
	Size	   *offsets;
	char	   *data;
} TwTables;

typedef struct TwWorker
{
	BackgroundWorkerHandle *handle;
	shm_mq_handle *mqh;
	bool		done;			/* sent TW_MSG_DONE */
	bool		gone;			/* its queue is detached */
	int64		raw;			/* its bytes in its progress row, last seen */
	int64		compressed;
	int64		transferred;
	int64		finished_raw;	/* of the tables it has sent back */
	int64		finished_compressed;
} TwWorker;

PGDLLEXPORT void aibackup_table_worker_main(Datum main_arg);

/* ----------------------------------------------------------------
 * The leader
 * ----------------------------------------------------------------
 */

/* the size on disk of each table, heap and TOAST, to copy the largest first */
static int64 *tw_sizes;

static int
tw_cmp_size(const void *a, const void *b)
{
	int64		sa = tw_sizes[*(const int *) a];
	int64		sb = tw_sizes[*(const int *) b];

	if (sa != sb)
		return sa > sb ? -1 : 1;
	return *(const int *) a - *(const int *) b;
}

static int64
table_size(Oid relid)
{
	Relation	rel = RelationIdGetRelation(relid);
	int64		size = 0;

	if (!RelationIsValid(rel))
		return 0;
	if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		size = (int64) RelationGetNumberOfBlocks(rel);
	if (OidIsValid(rel->rd_rel->reltoastrelid))
	{
		Relation	toast = RelationIdGetRelation(rel->rd_rel->reltoastrelid);

		if (RelationIsValid(toast))
		{
			size += (int64) RelationGetNumberOfBlocks(toast);
			RelationClose(toast);
		}
	}
	RelationClose(rel);
	return size;
}

/* every entry packed, in manifest order, and the order to copy them in */
static void
pack_tables(List *tables, const Manifest *m, TwTables *tt, StringInfo data)
{
	ListCell   *lc;

	tt->ntables = list_length(tables);
	tt->order = palloc(sizeof(int) * tt->ntables);
	tt->offsets = palloc(sizeof(Size) * (tt->ntables + 1));
	tw_sizes = palloc(sizeof(int64) * tt->ntables);
	initStringInfo(data);
	foreach(lc, tables)
	{
		int			i = foreach_current_index(lc);
		size_t		len;
		char	   *packed = mf_table_pack(&m->tables[i], &len);

		if (packed == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		tt->offsets[i] = data->len;
		appendBinaryStringInfo(data, packed, len);
		free(packed);
		tt->order[i] = i;
		/* locked by the backup: it is there, and stays as it is */
		tw_sizes[i] = table_size(((AbTable *) lfirst(lc))->relid);
	}
	tt->offsets[tt->ntables] = data->len;
	qsort(tt->order, tt->ntables, sizeof(int), tw_cmp_size);
}

static bool
start_worker(dsm_segment *seg, int n, const char *backup_id,
			 BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "aibackup", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "aibackup_table_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "aibackup table worker %d of backup %s",
			 n + 1, backup_id);
	strlcpy(worker.bgw_type, "aibackup table worker", BGW_MAXLEN);
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
	memcpy(worker.bgw_extra, &n, sizeof(n));
	worker.bgw_notify_pid = MyProcPid;
	return RegisterDynamicBackgroundWorker(&worker, handle);
}

/* the workers' bytes, from their progress rows, into the leader's row */
static void
sum_progress(TwWorker *workers, int nworkers)
{
	AbProgress	rows[AB_MAX_PROGRESS];
	int			nrows = ab_progress_snapshot(rows, AB_MAX_PROGRESS);
	int64		raw = 0,
				compressed = 0,
				transferred = 0;

	for (int w = 0; w < nworkers; w++)
	{
		pid_t		pid;

		if (GetBackgroundWorkerPid(workers[w].handle, &pid) == BGWH_STARTED)
		{
			for (int r = 0; r < nrows; r++)
			{
				if (rows[r].pid != pid)
					continue;
				/* a row only grows; one that ended keeps its last values */
				workers[w].raw = Max(workers[w].raw, rows[r].bytes_raw);
				workers[w].compressed = Max(workers[w].compressed,
											rows[r].bytes_compressed);
				workers[w].transferred = Max(workers[w].transferred,
											 rows[r].bytes_transferred);
			}
		}

		/*
		 * A row moves every 4 MB, and there may be none (AB_MAX_PROGRESS):
		 * the tables sent back count in full however small.
		 */
		raw += Max(workers[w].raw, workers[w].finished_raw);
		compressed += Max(workers[w].compressed, workers[w].finished_compressed);
		transferred += Max(workers[w].transferred, workers[w].finished_compressed);
	}
	ab_progress_bytes(raw, compressed, transferred);
}

/* one message from worker w */
static void
handle_message(TwWorker *w, char *data, Size len, Manifest *m,
			   bool *filled, int *nfilled, AbTableDone done, void *arg)
{
	StringInfoData msg;
	int32		i;
	MfTable		entry;

	if (len < 1)
		elog(ERROR, "empty message from an aibackup table worker");
	switch (data[0])
	{
		case 'E':
		case 'N':
			{
				ErrorData	edata;

				/* a notice, or the error that ended the worker: as its own */
				msg.data = data;
				msg.len = msg.maxlen = (int) len;
				msg.cursor = 1;
				pq_parse_errornotice(&msg, &edata);
				edata.elevel = Min(edata.elevel, ERROR);
				edata.context = edata.context ?
					psprintf("%s\n%s", edata.context, "aibackup table worker") :
					pstrdup("aibackup table worker");
				ThrowErrorData(&edata);
				return;
			}
		case TW_MSG_DONE:
			w->done = true;
			return;
		case TW_MSG_RESULT:
			if (len < 1 + sizeof(int32))
				break;
			memcpy(&i, data + 1, sizeof(int32));
			if (i < 0 || i >= m->ntables || filled[i] ||
				!mf_table_unpack(data + 1 + sizeof(int32),
								 len - 1 - sizeof(int32), &entry))
				break;
			if (entry.status == NULL)
			{
				mf_free_table(&entry);
				break;
			}
			mf_free_table(&m->tables[i]);
			m->tables[i] = entry;
			filled[i] = true;
			(*nfilled)++;
			if (strcmp(entry.status, "ok") == 0 && entry.copied_from == NULL)
			{
				w->finished_raw += entry.raw_bytes;
				w->finished_compressed += entry.compressed_bytes;
			}
			done(arg, i);
			return;
		default:
			break;
	}
	elog(ERROR, "invalid message from an aibackup table worker (type %d, %zu bytes)",
		 (int) data[0], (size_t) len);
}

/* read the workers' messages until every one has said it is done */
static void
receive_all(TwWorker *workers, int nworkers, TwShared *sh, Manifest *m,
			AbTableDone done, void *arg)
{
	bool	   *filled = palloc0(sizeof(bool) * m->ntables);
	int			nfilled = 0;
	TimestampTz last_progress = 0;

	/* the total at once: the first table done may be hours away */
	ab_progress_table(InvalidOid, NULL, 0, m->ntables);

	for (;;)
	{
		bool		any = false;
		int			nended = 0;

		for (int n = 0; n < nworkers; n++)
		{
			TwWorker   *w = &workers[n];
			shm_mq_result r;
			Size		len;
			void	   *data;

			if (w->gone)
			{
				nended++;
				continue;
			}
			r = shm_mq_receive(w->mqh, &len, &data, true);
			if (r == SHM_MQ_WOULD_BLOCK)
				continue;
			if (r == SHM_MQ_DETACHED)
			{
				w->gone = true;
				nended++;
				if (!w->done)
					ereport(ERROR,
							(errcode(ERRCODE_INTERNAL_ERROR),
							 errmsg("aibackup table worker %d of backup \"%s\" ended without finishing its tables",
									n + 1, sh->backup_id)));
				continue;
			}
			any = true;
			/* data stays valid only until the next receive: parse it now */
			handle_message(w, data, len, m, filled, &nfilled, done, arg);
		}
		if (nended == nworkers)
			break;
		CHECK_FOR_INTERRUPTS();
		if (!any)
		{
			TimestampTz now = GetCurrentTimestamp();

			pg_atomic_write_u32(&sh->rate_mb, (uint32) ab_throttle_rate());
			if (now - last_progress >= USECS_PER_SEC)
			{
				sum_progress(workers, nworkers);
				last_progress = now;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	sum_progress(workers, nworkers);
	if (nfilled != m->ntables)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the table workers of backup \"%s\" copied %d of its %d tables",
						sh->backup_id, nfilled, m->ntables)));
}

/* stop every worker and wait for it to end (each aborts its own upload) */
static void
stop_workers(TwWorker *workers, int nworkers)
{
	/* first, so that no worker blocks on a queue nobody reads */
	for (int n = 0; n < nworkers; n++)
	{
		if (workers[n].mqh != NULL)
			shm_mq_detach(workers[n].mqh);
		workers[n].mqh = NULL;
	}
	for (int n = 0; n < nworkers; n++)
		TerminateBackgroundWorker(workers[n].handle);
	for (int n = 0; n < nworkers; n++)
		(void) WaitForBackgroundWorkerShutdown(workers[n].handle);
}

/* the DSM segment a backup's workers share; NULL when there is none */
static dsm_segment *
create_segment(AbTableCopy *cx, List *tables, Manifest *m, int nworkers,
			   TwShared **shp, char **queuesp)
{
	shm_toc_estimator e;
	Size		guc_len = EstimateGUCStateSpace();
	Size		snap_len = EstimateSnapshotSpace(cx->snap);
	Size		tables_len;
	StringInfoData data;
	TwTables	tt;
	dsm_segment *seg;
	shm_toc    *toc;
	TwShared   *sh;
	char	   *p;

	pack_tables(tables, m, &tt, &data);
	tables_len = sizeof(int) * tt.ntables + sizeof(Size) * (tt.ntables + 1) + data.len;

	shm_toc_initialize_estimator(&e);
	shm_toc_estimate_chunk(&e, sizeof(TwShared));
	shm_toc_estimate_chunk(&e, guc_len);
	shm_toc_estimate_chunk(&e, snap_len);
	shm_toc_estimate_chunk(&e, tables_len);
	shm_toc_estimate_chunk(&e, (Size) TW_QUEUE_SIZE * nworkers);
	shm_toc_estimate_keys(&e, 5);
	seg = dsm_create(shm_toc_estimate(&e), DSM_CREATE_NULL_IF_MAXSEGMENTS);
	if (seg == NULL)
		return NULL;
	toc = shm_toc_create(TW_MAGIC, dsm_segment_address(seg), shm_toc_estimate(&e));

	sh = shm_toc_allocate(toc, sizeof(TwShared));
	memset(sh, 0, sizeof(TwShared));
	sh->dboid = MyDatabaseId;

	/*
	 * A scheduled run's worker connected as no one (the bootstrap superuser,
	 * without its login check): so do its table workers, or a NOLOGIN
	 * bootstrap superuser fails every scheduled backup on PostgreSQL 15,
	 * which has no BGWORKER_BYPASS_ROLELOGINCHECK.  They take the leader's
	 * user below, as a backend's do.
	 */
	sh->auth_userid = MyBackendType == B_BG_WORKER ? InvalidOid :
		GetAuthenticatedUserId();
	GetUserIdAndSecContext(&sh->userid, &sh->sec_context);
	sh->leader = MyProc;
	sh->leader_pid = MyProcPid;
	sh->nworkers = nworkers;
	sh->ntables = tt.ntables;
	strlcpy(sh->backup_id, cx->backup_id, sizeof(sh->backup_id));
	if (cx->base != NULL)
		strlcpy(sh->base_id, cx->base->backup_id, sizeof(sh->base_id));
	pg_atomic_init_u32(&sh->next, 0);
	pg_atomic_init_u32(&sh->rate_mb, (uint32) ab_throttle_rate());
	shm_toc_insert(toc, TW_KEY_SHARED, sh);

	p = shm_toc_allocate(toc, guc_len);
	SerializeGUCState(guc_len, p);
	shm_toc_insert(toc, TW_KEY_GUC, p);

	p = shm_toc_allocate(toc, snap_len);
	SerializeSnapshot(cx->snap, p);
	shm_toc_insert(toc, TW_KEY_SNAPSHOT, p);

	p = shm_toc_allocate(toc, tables_len);
	memcpy(p, tt.offsets, sizeof(Size) * (tt.ntables + 1));
	memcpy(p + sizeof(Size) * (tt.ntables + 1), tt.order, sizeof(int) * tt.ntables);
	memcpy(p + sizeof(Size) * (tt.ntables + 1) + sizeof(int) * tt.ntables,
		   data.data, data.len);
	shm_toc_insert(toc, TW_KEY_TABLES, p);

	*queuesp = shm_toc_allocate(toc, (Size) TW_QUEUE_SIZE * nworkers);
	shm_toc_insert(toc, TW_KEY_QUEUES, *queuesp);
	*shp = sh;
	return seg;
}

/* the leader's handles on its workers, in TopMemoryContext (see below) */
typedef struct TwLeader
{
	int			nstarted;
	TwWorker	workers[FLEXIBLE_ARRAY_MEMBER];
} TwLeader;

/*
 * When the leader lets go of the segment without having stopped its
 * workers (a FATAL: pg_terminate_backend, a lost client), they are told to
 * stop, and abort their uploads, rather than copy on for nobody.
 */
static void
leader_detached(dsm_segment *seg, Datum arg)
{
	TwLeader   *lead = (TwLeader *) DatumGetPointer(arg);

	for (int n = 0; n < lead->nstarted; n++)
		TerminateBackgroundWorker(lead->workers[n].handle);
}

static void
leader_free(dsm_segment *seg, TwLeader *lead)
{
	cancel_on_dsm_detach(seg, leader_detached, PointerGetDatum(lead));
	for (int n = 0; n < lead->nstarted; n++)
		pfree(lead->workers[n].handle);
	pfree(lead);
}

bool
ab_table_workers_run(AbTableCopy *cx, List *tables, Manifest *m,
					 AbTableDone done, void *arg)
{
	int			nworkers = Min(ab_max_parallel_tables, list_length(tables));
	TwShared   *sh;
	char	   *queues;
	dsm_segment *seg;
	TwLeader   *lead;
	MemoryContext oldcxt;

	/* one table, or a session inside a parallel operation: alone */
	if (nworkers < 2 || IsInParallelMode() ||
		(MyProc->lockGroupLeader != NULL && MyProc->lockGroupLeader != MyProc))
		return false;

	seg = create_segment(cx, tables, m, nworkers, &sh, &queues);
	if (seg == NULL)
		return false;
	BecomeLockGroupLeader();

	/* the handles must outlive an error, for leader_detached */
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	lead = palloc0(offsetof(TwLeader, workers) + sizeof(TwWorker) * nworkers);
	on_dsm_detach(seg, leader_detached, PointerGetDatum(lead));
	for (int n = 0; n < nworkers; n++)
	{
		TwWorker   *w = &lead->workers[lead->nstarted];
		shm_mq	   *mq = shm_mq_create(queues + (Size) TW_QUEUE_SIZE * n,
									   TW_QUEUE_SIZE);

		shm_mq_set_receiver(mq, MyProc);
		if (!start_worker(seg, n, cx->backup_id, &w->handle))
			break;
		w->mqh = shm_mq_attach(mq, seg, w->handle);
		lead->nstarted++;
	}
	MemoryContextSwitchTo(oldcxt);
	if (lead->nstarted == 0)
	{
		ereport(DEBUG1,
				(errmsg_internal("aibackup: no table worker could be started (max_worker_processes): the backup copies its tables itself")));
		leader_free(seg, lead);
		dsm_detach(seg);
		return false;
	}
	/* a worker's share of max_rate */
	sh->nworkers = lead->nstarted;
	ereport(DEBUG1,
			(errmsg_internal("aibackup: %d table workers copy the %d tables",
							 lead->nstarted, list_length(tables))));

	PG_TRY();
	{
		receive_all(lead->workers, lead->nstarted, sh, m, done, arg);
	}
	PG_CATCH();
	{
		HOLD_INTERRUPTS();
		stop_workers(lead->workers, lead->nstarted);
		leader_free(seg, lead);
		RESUME_INTERRUPTS();
		PG_RE_THROW();
	}
	PG_END_TRY();
	stop_workers(lead->workers, lead->nstarted);
	leader_free(seg, lead);
	dsm_detach(seg);
	return true;
}

/* ----------------------------------------------------------------
 * A worker
 * ----------------------------------------------------------------
 */

static TwShared *my_shared;

/* this worker's share of the backup's rate */
static double
tw_rate(void)
{
	return (double) pg_atomic_read_u32(&my_shared->rate_mb) / my_shared->nworkers;
}

static void
tw_send(shm_mq_handle *mqh, StringInfo msg)
{
	if (shm_mq_send(mqh, msg->len, msg->data, false, true) != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("the backup this table worker serves has ended")));
}

/* the backup's incremental base, if it is still the leader's */
static const Manifest *
tw_base(S3Client *client)
{
	const Manifest *base;

	if (my_shared->base_id[0] == '\0')
		return NULL;
	base = ab_incremental_base(client, get_database_name(MyDatabaseId));
	if (base == NULL || strcmp(base->backup_id, my_shared->base_id) != 0)
		return NULL;			/* then every table is read in full: safe */
	return base;
}

/* take tables until none is left */
static void
tw_copy_tables(shm_toc *toc, shm_mq_handle *mqh, Snapshot snap)
{
	char	   *p = shm_toc_lookup(toc, TW_KEY_TABLES, false);
	Size	   *offsets = (Size *) p;
	int		   *order = (int *) (offsets + my_shared->ntables + 1);
	char	   *data = (char *) (order + my_shared->ntables);
	AbThrottle	throttle;
	AbTableCopy cx;
	StringInfoData msg;
	uint32		next;

	memset(&cx, 0, sizeof(cx));
	cx.client = ab_s3_client();
	cx.base = tw_base(cx.client);
	cx.backup_id = my_shared->backup_id;
	cx.snap = snap;
	cx.throttle = &throttle;
	cx.tablecxt = AllocSetContextCreate(CurrentMemoryContext, "aibackup table",
										ALLOCSET_DEFAULT_SIZES);
	cx.ntables = my_shared->ntables;
	ab_throttle_set_source(tw_rate);
	ab_throttle_init(&throttle);
	initStringInfo(&msg);

	while ((next = pg_atomic_fetch_add_u32(&my_shared->next, 1)) <
		   (uint32) my_shared->ntables)
	{
		int32		i = order[next];
		MfTable		mt;
		AbTable		t;
		size_t		len;
		char	   *packed;

		CHECK_FOR_INTERRUPTS();
		if (!mf_table_unpack(data + offsets[i], offsets[i + 1] - offsets[i], &mt))
			elog(ERROR, "invalid table entry %d in the table workers' segment", i);
		memset(&t, 0, sizeof(t));
		t.relid = mt.relid;
		t.schema = pstrdup(mt.schema);
		t.name = pstrdup(mt.name);
		t.parent = mt.parent ? pstrdup(mt.parent) : NULL;
		t.extension = mt.extension ? pstrdup(mt.extension) : NULL;

		/* granted at once: the leader, in our lock group, holds it */
		LockRelationOid(t.relid, AccessShareLock);
		(void) ab_backup_table(&cx, &t, &mt);

		packed = mf_table_pack(&mt, &len);
		mf_free_table(&mt);
		if (packed == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		resetStringInfo(&msg);
		appendStringInfoChar(&msg, TW_MSG_RESULT);
		appendBinaryStringInfo(&msg, (char *) &i, sizeof(i));
		appendBinaryStringInfo(&msg, packed, len);
		free(packed);
		tw_send(mqh, &msg);
	}
	resetStringInfo(&msg);
	appendStringInfoChar(&msg, TW_MSG_DONE);
	tw_send(mqh, &msg);
}

/* what must differ from the leader's settings */
static void
worker_settings(void)
{
	char		timeout[32];

	/*
	 * Our messages go to the leader, which converts them for its client: we
	 * send them in the database's encoding, as parallel workers do.
	 */
	(void) set_config_option("client_encoding", GetDatabaseEncodingName(),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SET, true,
							 ERROR, false);
	/* never wait unbounded, should a lock not come from the group at once */
	snprintf(timeout, sizeof(timeout), "%d", ab_lock_timeout_ms);
	(void) set_config_option("lock_timeout", timeout, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SET, true, ERROR, false);
}

void
aibackup_table_worker_main(Datum main_arg)
{
	dsm_segment *seg;
	shm_toc    *toc;
	shm_mq	   *mq;
	shm_mq_handle *mqh;
	int			n;
	Snapshot	snap;
	uint32		flags;

	memcpy(&n, MyBgworkerEntry->bgw_extra, sizeof(n));
	pqsignal(SIGTERM, ab_worker_sigterm);
	BackgroundWorkerUnblockSignals();

	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
		proc_exit(1);			/* the backup ended before we began */
	toc = shm_toc_attach(TW_MAGIC, dsm_segment_address(seg));
	if (toc == NULL)
		elog(FATAL, "invalid aibackup table workers' segment");
	my_shared = shm_toc_lookup(toc, TW_KEY_SHARED, false);
	mq = (shm_mq *) ((char *) shm_toc_lookup(toc, TW_KEY_QUEUES, false) +
					 (Size) TW_QUEUE_SIZE * n);
	shm_mq_set_sender(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);
	/* our notices and errors go to the leader from here on */
	pq_redirect_to_shm_mq(seg, mqh);

	/* a lock group can be joined only before any lock is taken */
	if (!BecomeLockGroupMember(my_shared->leader, my_shared->leader_pid))
		proc_exit(1);			/* the backup has ended */

	/* as the leader, which is connected already: ALLOW_CONNECTIONS false */
	flags = BGWORKER_BYPASS_ALLOWCONN;
#ifdef BGWORKER_BYPASS_ROLELOGINCHECK
	flags |= BGWORKER_BYPASS_ROLELOGINCHECK;
#endif
	BackgroundWorkerInitializeConnectionByOid(my_shared->dboid,
											  my_shared->auth_userid, flags);

	/* the leader's settings, then its snapshot before any other */
	StartTransactionCommand();
	/* as a parallel worker: accept the transaction settings as they are */
	InitializingParallelWorker = true;
	RestoreGUCState(shm_toc_lookup(toc, TW_KEY_GUC, false));
	InitializingParallelWorker = false;
	worker_settings();
	CommitTransactionCommand();

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	XactIsoLevel = XACT_REPEATABLE_READ;
	XactReadOnly = true;
	RestoreTransactionSnapshot(RestoreSnapshot(shm_toc_lookup(toc, TW_KEY_SNAPSHOT,
															  false)),
							   my_shared->leader);
	snap = RegisterSnapshot(GetTransactionSnapshot());
	SetUserIdAndSecContext(my_shared->userid, my_shared->sec_context);
	pgstat_report_activity(STATE_RUNNING, "aibackup: table worker");
	ab_progress_begin("backup", my_shared->backup_id);
	ab_progress_phase("copying");

	PG_TRY();
	{
		tw_copy_tables(toc, mqh, snap);
		UnregisterSnapshot(snap);
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* to the leader, which fails the backup, and to the log */
		HOLD_INTERRUPTS();
		if (!ab_worker_terminated)
			EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		if (ab_worker_terminated)
			ereport(FATAL,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("terminating aibackup table worker due to administrator command")));
		RESUME_INTERRUPTS();
		proc_exit(1);
	}
	PG_END_TRY();
	ab_progress_end();
	proc_exit(0);
}
