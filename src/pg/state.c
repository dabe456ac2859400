/*
 * state.c
 *		aibackup's shared memory: what runs now and what ran, per database,
 *		plus progress slots.  Written by backups (manual and scheduled alike)
 *		and the launcher; read by the views.
 *
 * Shape, as pg_stat_statements does it: space is requested in
 * shmem_request_hook and set up in shmem_startup_hook under
 * AddinShmemInitLock; one LWLock guards everything (updates are a few per
 * table, never in a hot loop: progress is written at most every few MB).
 * The per-database counters are saved to pg_stat/aibackup.stat at a clean
 * shutdown and read back at start; after a crash they start empty and the
 * launcher rebuilds the last backup's facts from the manifests in S3.
 *
 * Without shared_preload_libraries there is no shared memory: every
 * function quietly does nothing, so backup and restore still work.
 *
 * Text in shared memory (errors, table names) is UTF-8, whatever the
 * encoding of the database that wrote it, and is cut at a character
 * boundary: any database's views read it, converting it to their own
 * encoding.  The writer converts (it is connected to its database), with
 * '?' for what has no UTF-8 equivalent.  Database names are the exception:
 * datname is kept as pg_database holds it.
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xlog.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "pg/repo.h"
#include "pg/settings.h"
#include "pg/state.h"

#define AB_STATE_FILE		"pg_stat/aibackup.stat"
#define AB_STATE_MAGIC		0x61627331	/* "abs1" */

/*
 * The file's layout: bump AB_STATE_FORMAT whenever AbDbState changes.  The
 * record size is written and checked too, so a change that forgot the bump
 * (or a build for another PostgreSQL with other sizes) is still refused.
 */
#define AB_STATE_FORMAT		3

/* what the file starts with */
typedef struct AbStateHeader
{
	uint32		magic;
	uint32		format;
	uint32		record_size;
	int32		nrecords;
} AbStateHeader;

/* everything in shared memory */
typedef struct AbShared
{
	LWLock	   *lock;
	pg_atomic_uint32 max_rate_mb;	/* aibackup.max_rate, as the launcher last
									 * read the settings file */
	AbProgress	progress[AB_MAX_PROGRESS];
	int			ndb;			/* aibackup.max_databases at start */
	AbDbState	db[FLEXIBLE_ARRAY_MEMBER];
} AbShared;

#define AB_SHARED_SIZE(n)	add_size(offsetof(AbShared, db), mul_size((n), sizeof(AbDbState)))

/* AbDbState.conflict took padding: the statistics file's records keep their size */
StaticAssertDecl(offsetof(AbDbState, dboid) == sizeof(Oid),
				 "AbDbState.conflict must sit in the padding before dboid");

static AbShared *ab_shared = NULL;
static int	my_progress = -1;	/* this process's progress slot */
static bool warned_full = false;	/* said once that max_databases is full */

static void ab_state_shutdown(int code, Datum arg);

/*
 * s (server encoding) as shared memory keeps text: UTF-8, at most size - 1
 * bytes, cut at a character boundary (palloc'd: call it before taking the
 * lock).
 */
static char *
shared_text(const char *s, size_t size)
{
	char	   *u = ab_repo_text_to_utf8(s ? s : "");
	int			len = strlen(u);

	if ((size_t) len >= size)
		u[pg_encoding_mbcliplen(PG_UTF8, u, len, size - 1)] = '\0';
	return u;
}

void
ab_state_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(AB_SHARED_SIZE(ab_max_databases)));
	RequestNamedLWLockTranche("aibackup", 1);
}

static void
ab_state_load(void)
{
	FILE	   *f = AllocateFile(AB_STATE_FILE, PG_BINARY_R);
	AbStateHeader h;
	int32		n;

	if (f == NULL)
		return;
	if (fread(&h, sizeof(h), 1, f) != 1 || h.magic != AB_STATE_MAGIC ||
		h.format != AB_STATE_FORMAT || h.record_size != sizeof(AbDbState) ||
		h.nrecords < 0)
	{
		ereport(LOG,
				(errmsg("ignoring aibackup statistics file \"%s\": not valid", AB_STATE_FILE)));
		FreeFile(f);
		unlink(AB_STATE_FILE);
		return;
	}
	n = h.nrecords;
	if (n > ab_shared->ndb)
	{
		ereport(LOG,
				(errmsg("aibackup: keeping the statistics of %d of %d databases", ab_shared->ndb, n),
				 errhint("Raise aibackup.max_databases.")));
		n = ab_shared->ndb;
	}
	for (int i = 0; i < n; i++)
	{
		AbDbState	s;

		if (fread(&s, sizeof(s), 1, f) != 1)
			break;
		s.running_pid = 0;
		s.running_id[0] = '\0';
		s.conflict = false;
		if (strcmp(s.last_status, "running") == 0)
			strlcpy(s.last_status, "failed", sizeof(s.last_status));
		ab_shared->db[i] = s;
	}
	FreeFile(f);
	unlink(AB_STATE_FILE);
}

void
ab_state_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ab_shared = ShmemInitStruct("aibackup", AB_SHARED_SIZE(ab_max_databases), &found);
	if (!found)
	{
		memset(ab_shared, 0, AB_SHARED_SIZE(ab_max_databases));
		ab_shared->ndb = ab_max_databases;
		ab_shared->lock = &(GetNamedLWLockTranche("aibackup"))->lock;
		pg_atomic_init_u32(&ab_shared->max_rate_mb, (uint32) ab_max_rate_mb);
	}
	LWLockRelease(AddinShmemInitLock);

	/* the postmaster loads the saved counters and saves them at shutdown */
	if (!IsUnderPostmaster)
	{
		ab_state_load();
		on_shmem_exit(ab_state_shutdown, (Datum) 0);
	}
}

/*
 * aibackup.max_rate for the scheduled backups: the launcher publishes what
 * it read from the settings file, so that a running worker sees a new rate
 * without reloading every setting in the middle of its run.
 */
void
ab_state_publish_rate(int mb)
{
	pg_atomic_write_u32(&ab_shared->max_rate_mb, (uint32) mb);
}

int
ab_state_rate(void)
{
	return (int) pg_atomic_read_u32(&ab_shared->max_rate_mb);
}

static void
ab_state_shutdown(int code, Datum arg)
{
	FILE	   *f;
	int32		n = 0;
	AbStateHeader h;

	/* after a crash the contents are not trusted */
	if (code != 0 || ab_shared == NULL)
		return;
	for (int i = 0; i < ab_shared->ndb; i++)
	{
		if (ab_shared->db[i].in_use)
			n = i + 1;
	}
	memset(&h, 0, sizeof(h));
	h.magic = AB_STATE_MAGIC;
	h.format = AB_STATE_FORMAT;
	h.record_size = sizeof(AbDbState);
	h.nrecords = n;
	f = AllocateFile(AB_STATE_FILE ".tmp", PG_BINARY_W);
	if (f == NULL)
		goto error;
	if (fwrite(&h, sizeof(h), 1, f) != 1)
		goto error;
	for (int i = 0; i < n; i++)
	{
		if (fwrite(&ab_shared->db[i], sizeof(AbDbState), 1, f) != 1)
			goto error;
	}
	if (FreeFile(f))
	{
		f = NULL;
		goto error;
	}
	(void) durable_rename(AB_STATE_FILE ".tmp", AB_STATE_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", AB_STATE_FILE ".tmp")));
	if (f)
		FreeFile(f);
	unlink(AB_STATE_FILE ".tmp");
}




/* the slot of dboid, created if needed; caller holds the lock exclusively */
static AbDbState *
db_slot(Oid dboid, const char *datname)
{
	AbDbState  *free_slot = NULL;

	for (int i = 0; i < ab_shared->ndb; i++)
	{
		AbDbState  *s = &ab_shared->db[i];

		if (s->in_use && s->dboid == dboid &&
			(OidIsValid(dboid) || (datname && strcmp(s->datname, datname) == 0)))
		{
			if (datname)
				strlcpy(s->datname, datname, sizeof(s->datname));
			return s;
		}
		if (!s->in_use && free_slot == NULL)
			free_slot = s;
	}
	if (free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof(AbDbState));
	free_slot->in_use = true;
	free_slot->dboid = dboid;
	if (datname)
		strlcpy(free_slot->datname, datname, sizeof(free_slot->datname));
	free_slot->stats_reset = GetCurrentTimestamp();
	return free_slot;
}

/*
 * A process that exits while its backup is marked running (terminated,
 * FATAL) leaves it failed, not running forever: the launcher would
 * otherwise skip that database until the next restart.
 */
static void
ab_state_exit(int code, Datum arg)
{
	if (!ab_shared)
		return;
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ab_shared->ndb; i++)
	{
		AbDbState  *s = &ab_shared->db[i];

		if (s->in_use && s->running_pid == MyProcPid)
		{
			s->running_pid = 0;
			s->running_id[0] = '\0';
			strlcpy(s->last_status, "failed", sizeof(s->last_status));
			strlcpy(s->last_error, "the backing-up process exited before the backup finished",
					sizeof(s->last_error));
			s->last_finished_at = GetCurrentTimestamp();
			s->backups_failed++;
			s->conflict = RecoveryInProgress();
		}
	}
	LWLockRelease(ab_shared->lock);
}

void
ab_state_backup_started(Oid dboid, const char *datname, const char *repo_name,
						const char *backup_id, bool scheduled)
{
	static bool exit_cb = false;
	AbDbState  *s;

	if (!ab_shared)
		return;
	if (!exit_cb)
	{
		before_shmem_exit(ab_state_exit, (Datum) 0);
		exit_cb = true;
	}
	/* the error of this backup may be converted in error cleanup */
	ab_repo_prepare_text_to_utf8();
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	s = db_slot(dboid, datname);
	if (s)
	{
		s->running_pid = MyProcPid;
		s->running_scheduled = scheduled;
		s->conflict = false;
		if (repo_name)
			strlcpy(s->repo_name, repo_name, sizeof(s->repo_name));
		strlcpy(s->running_id, backup_id, sizeof(s->running_id));
		strlcpy(s->last_id, backup_id, sizeof(s->last_id));
		strlcpy(s->last_status, "running", sizeof(s->last_status));
		s->last_started_at = GetCurrentTimestamp();
	}
	LWLockRelease(ab_shared->lock);
	if (s == NULL && !warned_full)
	{
		warned_full = true;
		ereport(WARNING,
				(errmsg("aibackup: database \"%s\" has no row in pg_stat_aibackup: aibackup.max_databases (%d) are already kept",
						datname, ab_shared->ndb),
				 errdetail("The backup runs; only its statistics are not kept."),
				 errhint("Raise aibackup.max_databases (it takes effect at server start).")));
	}
}

bool
ab_state_repo_name(Oid dboid, char *out, size_t outlen)
{
	bool		found = false;

	if (!ab_shared)
		return false;
	LWLockAcquire(ab_shared->lock, LW_SHARED);
	for (int i = 0; i < ab_shared->ndb; i++)
	{
		AbDbState  *s = &ab_shared->db[i];

		if (s->in_use && s->dboid == dboid && s->repo_name[0] != '\0')
		{
			strlcpy(out, s->repo_name, outlen);
			found = true;
			break;
		}
	}
	LWLockRelease(ab_shared->lock);
	return found;
}

int
ab_state_capacity(void)
{
	return ab_shared ? ab_shared->ndb : 0;
}

void
ab_state_backup_finished(Oid dboid, const char *status, const char *error,
						 int tables_ok, int tables_failed, int64 rows,
						 int64 raw, int64 compressed)
{
	AbDbState  *s;

	if (!ab_shared)
		return;
	if (error)
		error = shared_text(error, AB_ERROR_LEN);
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	s = db_slot(dboid, NULL);
	if (s)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (s->running_pid == MyProcPid)
		{
			s->running_pid = 0;
			s->running_id[0] = '\0';
		}
		strlcpy(s->last_status, status, sizeof(s->last_status));
		s->last_finished_at = now;
		if (strcmp(status, "failed") == 0)
		{
			s->backups_failed++;
			strlcpy(s->last_error, error ? error : "", sizeof(s->last_error));
		}
		else
		{
			s->backups_succeeded++;
			/* a success is a backup of every selected table */
			if (strcmp(status, "ok") == 0)
				s->last_success_at = now;
			if (error)
				strlcpy(s->last_error, error, sizeof(s->last_error));
			else
				s->last_error[0] = '\0';
		}
		s->tables_backed_up += tables_ok;
		s->tables_failed += tables_failed;
		s->rows_backed_up += rows;
		s->raw_bytes += raw;
		s->compressed_bytes += compressed;
	}
	LWLockRelease(ab_shared->lock);
}

int
ab_state_running(Oid dboid, char *backup_id, bool *scheduled)
{
	int			pid = 0;

	if (!ab_shared)
		return 0;
	LWLockAcquire(ab_shared->lock, LW_SHARED);
	for (int i = 0; i < ab_shared->ndb; i++)
	{
		AbDbState  *s = &ab_shared->db[i];

		if (s->in_use && s->dboid == dboid && s->running_pid != 0)
		{
			pid = s->running_pid;
			if (backup_id)
				strlcpy(backup_id, s->running_id, AB_ID_LEN);
			if (scheduled)
				*scheduled = s->running_scheduled;
		}
	}
	LWLockRelease(ab_shared->lock);
	return pid;
}

void
ab_state_set_next_run(Oid dboid, const char *datname, TimestampTz next)
{
	AbDbState  *s;

	if (!ab_shared)
		return;
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	s = db_slot(dboid, datname);
	if (s)
		s->next_run_at = next;
	LWLockRelease(ab_shared->lock);
}

void
ab_state_seed(Oid dboid, const char *datname, const char *backup_id,
			  const char *status, TimestampTz finished)
{
	AbDbState  *s;

	if (!ab_shared)
		return;
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	s = db_slot(dboid, datname);
	if (s && s->last_id[0] == '\0')
	{
		strlcpy(s->last_id, backup_id, sizeof(s->last_id));
		strlcpy(s->last_status, status, sizeof(s->last_status));
		s->last_finished_at = finished;
		if (strcmp(status, "ok") == 0)
			s->last_success_at = finished;
	}
	LWLockRelease(ab_shared->lock);
}

void
ab_state_note_conflict(Oid dboid)
{
	if (!ab_shared)
		return;
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ab_shared->ndb; i++)
	{
		if (ab_shared->db[i].in_use && ab_shared->db[i].dboid == dboid)
			ab_shared->db[i].conflict = true;
	}
	LWLockRelease(ab_shared->lock);
}

bool
ab_state_take_conflict(Oid dboid)
{
	bool		conflict = false;

	if (!ab_shared)
		return false;
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ab_shared->ndb; i++)
	{
		AbDbState  *s = &ab_shared->db[i];

		if (s->in_use && s->dboid == dboid)
		{
			conflict = s->conflict;
			s->conflict = false;
		}
	}
	LWLockRelease(ab_shared->lock);
	return conflict;
}

void
ab_state_note_error(Oid dboid, const char *datname, const char *error)
{
	AbDbState  *s;

	if (!ab_shared)
		return;
	ab_repo_prepare_text_to_utf8();
	error = shared_text(error, AB_ERROR_LEN);
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	s = db_slot(dboid, datname);
	if (s)
		strlcpy(s->last_error, error, sizeof(s->last_error));
	LWLockRelease(ab_shared->lock);
}

int
ab_state_snapshot(AbDbState *out, int max)
{
	int			n = 0;

	if (!ab_shared)
		return 0;
	LWLockAcquire(ab_shared->lock, LW_SHARED);
	for (int i = 0; i < ab_shared->ndb && n < max; i++)
	{
		if (ab_shared->db[i].in_use)
			out[n++] = ab_shared->db[i];
	}
	LWLockRelease(ab_shared->lock);
	return n;
}

void
ab_state_reset(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (!ab_shared)
		return;
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ab_shared->ndb; i++)
	{
		AbDbState  *s = &ab_shared->db[i];

		s->backups_succeeded = s->backups_failed = 0;
		s->tables_backed_up = s->tables_failed = 0;
		s->rows_backed_up = s->raw_bytes = s->compressed_bytes = 0;
		s->stats_reset = now;
	}
	LWLockRelease(ab_shared->lock);
}

/* --- progress --- */

static void
ab_progress_release(int code, Datum arg)
{
	ab_progress_end();
}

void
ab_progress_begin(const char *command, const char *backup_id)
{
	static bool exit_cb = false;

	if (!ab_shared)
		return;
	ab_repo_prepare_text_to_utf8();
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	if (my_progress < 0)
	{
		for (int i = 0; i < AB_MAX_PROGRESS; i++)
		{
			if (ab_shared->progress[i].pid == 0)
			{
				my_progress = i;
				break;
			}
		}
	}
	if (my_progress >= 0)
	{
		AbProgress *p = &ab_shared->progress[my_progress];

		memset(p, 0, sizeof(AbProgress));
		p->pid = MyProcPid;
		p->dboid = MyDatabaseId;
		strlcpy(p->command, command, sizeof(p->command));
		strlcpy(p->backup_id, backup_id ? backup_id : "", sizeof(p->backup_id));
		strlcpy(p->phase, "starting", sizeof(p->phase));
		p->started_at = GetCurrentTimestamp();
	}
	LWLockRelease(ab_shared->lock);
	if (!exit_cb)
	{
		before_shmem_exit(ab_progress_release, (Datum) 0);
		exit_cb = true;
	}
}

#define WITH_PROGRESS(stmt) \
	do { \
		if (ab_shared && my_progress >= 0) \
		{ \
			AbProgress *p = &ab_shared->progress[my_progress]; \
			LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE); \
			stmt; \
			LWLockRelease(ab_shared->lock); \
		} \
	} while (0)

void
ab_progress_phase(const char *phase)
{
	WITH_PROGRESS(strlcpy(p->phase, phase, sizeof(p->phase)));
}

void
ab_progress_table(Oid relid, const char *name, int done, int total)
{
	if (ab_shared && my_progress >= 0)
		name = shared_text(name, sizeof(((AbProgress *) NULL)->table_name));
	WITH_PROGRESS((p->relid = relid,
				   strlcpy(p->table_name, name ? name : "", sizeof(p->table_name)),
				   p->tables_done = done, p->tables_total = total));
}

void
ab_progress_bytes(int64 raw, int64 compressed, int64 transferred)
{
	WITH_PROGRESS((p->bytes_raw = raw, p->bytes_compressed = compressed,
				   p->bytes_transferred = transferred));
}

void
ab_progress_end(void)
{
	WITH_PROGRESS(memset(p, 0, sizeof(AbProgress)));
	my_progress = -1;
}

int
ab_progress_snapshot(AbProgress *out, int max)
{
	int			n = 0;

	if (!ab_shared)
		return 0;
	LWLockAcquire(ab_shared->lock, LW_SHARED);
	for (int i = 0; i < AB_MAX_PROGRESS && n < max; i++)
	{
		if (ab_shared->progress[i].pid != 0)
			out[n++] = ab_shared->progress[i];
	}
	LWLockRelease(ab_shared->lock);
	return n;
}

int
ab_state_forget_missing(const Oid *existing, int nexisting, TimestampTz seen_at,
						Oid *forgotten, int max)
{
	int			n = 0;

	if (!ab_shared)
		return 0;
	LWLockAcquire(ab_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < ab_shared->ndb && n < max; i++)
	{
		AbDbState  *s = &ab_shared->db[i];
		bool		exists = false;

		if (!s->in_use || s->running_pid != 0 || s->last_started_at >= seen_at)
			continue;
		for (int j = 0; j < nexisting && !exists; j++)
			exists = (existing[j] == s->dboid);
		if (exists)
			continue;
		forgotten[n++] = s->dboid;
		memset(s, 0, sizeof(*s));
	}
	LWLockRelease(ab_shared->lock);
	return n;
}
