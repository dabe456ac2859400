/*
 * state.h
 *		aibackup's shared memory: per-database backup state and counters,
 *		and one progress slot per running backup or restore.  Present only
 *		when the library is in shared_preload_libraries; every function here
 *		is a no-op (or returns "nothing") otherwise.
 */
#ifndef AIBACKUP_STATE_H
#define AIBACKUP_STATE_H

#include "datatype/timestamp.h"

#define AB_MAX_PROGRESS		32
#define AB_ID_LEN			17	/* backup id + NUL */
#define AB_ERROR_LEN		512

/* per-database state and counters (pg_stat_aibackup) */
typedef struct AbDbState
{
	bool		in_use;
	bool		conflict;		/* the last run, on a standby, was ended by a
								 * conflict with recovery, or most likely so
								 * (in what was padding: the statistics file
								 * keeps its format) */
	Oid			dboid;
	char		datname[NAMEDATALEN];
	char		repo_name[4 * NAMEDATALEN]; /* datname in UTF-8, as in S3
											 * keys; "" until a backup ran */
	/* the backup running now, if any */
	int			running_pid;
	bool		running_scheduled;
	char		running_id[AB_ID_LEN];
	/* last run */
	char		last_id[AB_ID_LEN];
	char		last_status[16];	/* ok | partial | failed | running */
	TimestampTz last_started_at;
	TimestampTz last_finished_at;
	TimestampTz last_success_at;
	TimestampTz next_run_at;
	char		last_error[AB_ERROR_LEN];
	/* counters since stats_reset */
	int64		backups_succeeded;
	int64		backups_failed;
	int64		tables_backed_up;
	int64		tables_failed;
	int64		rows_backed_up;
	int64		raw_bytes;
	int64		compressed_bytes;
	TimestampTz stats_reset;
} AbDbState;

/* one running backup or restore (pg_stat_progress_aibackup) */
typedef struct AbProgress
{
	int			pid;			/* 0 = free slot */
	Oid			dboid;
	char		command[16];	/* backup | restore */
	char		backup_id[AB_ID_LEN];
	char		phase[32];
	Oid			relid;
	char		table_name[2 * NAMEDATALEN + 8];
	int			tables_total;
	int			tables_done;
	int64		bytes_raw;
	int64		bytes_compressed;
	int64		bytes_transferred;
	TimestampTz started_at;
} AbProgress;

/* hooks, from _PG_init */
extern void ab_state_request(void);
extern void ab_state_startup(void);

/*
 * Mark a backup of dboid as running in this process, or fail naming the
 * one already running (the advisory lock in backup.c is the real guard;
 * this records what to name).
 */
extern void ab_state_backup_started(Oid dboid, const char *datname,
									const char *repo_name,
									const char *backup_id, bool scheduled);

/*
 * The database's name as its S3 folder spells it (UTF-8), recorded by its
 * last backup; false if none ran.  For processes that cannot convert
 * encodings themselves (the launcher is connected to no database).
 */
extern bool ab_state_repo_name(Oid dboid, char *out, size_t outlen);
extern void ab_state_backup_finished(Oid dboid, const char *status,
									 const char *error, int tables_ok,
									 int tables_failed, int64 rows,
									 int64 raw, int64 compressed);

/* who runs a backup of dboid now: pid 0 if none */
extern int	ab_state_running(Oid dboid, char *backup_id, bool *scheduled);

extern void ab_state_set_next_run(Oid dboid, const char *datname,
								  TimestampTz next);

/* after a crash: what the newest manifest says, if nothing is known */
extern void ab_state_seed(Oid dboid, const char *datname, const char *backup_id,
						  const char *status, TimestampTz finished);

/*
 * A standby's run of dboid ended by a conflict with recovery (an ERROR);
 * ab_state_take_conflict() tells the launcher once, and clears it.  A
 * process that exits on a standby with its backup running is taken for
 * one too: a conflict met in a subtransaction is FATAL.
 */
extern void ab_state_note_conflict(Oid dboid);
extern bool ab_state_take_conflict(Oid dboid);
extern void ab_state_note_error(Oid dboid, const char *datname,
								const char *error);

/*
 * Free the rows of databases that no longer exist: every row whose database
 * is not among existing[] (all of pg_database, read at seen_at), unless a
 * backup of it runs or started since.  Their OIDs go to forgotten[] (at
 * most max); returns how many.
 */
extern int	ab_state_forget_missing(const Oid *existing, int nexisting,
									TimestampTz seen_at, Oid *forgotten,
									int max);

/* how many databases the state keeps (aibackup.max_databases at start) */
extern int	ab_state_capacity(void);
extern void ab_state_publish_rate(int mb);
extern int	ab_state_rate(void);

/* copy of every database's state, for the view; returns count */
extern int	ab_state_snapshot(AbDbState *out, int max);
extern void ab_state_reset(void);

/* progress of this process's backup/restore */
extern void ab_progress_begin(const char *command, const char *backup_id);
extern void ab_progress_phase(const char *phase);
extern void ab_progress_table(Oid relid, const char *name, int done, int total);
extern void ab_progress_bytes(int64 raw, int64 compressed, int64 transferred);
extern void ab_progress_end(void);
extern int	ab_progress_snapshot(AbProgress *out, int max);

#endif							/* AIBACKUP_STATE_H */
