/*
 * table_stats.h
 *		Per-table backup history of one database (pg_stat_aibackup_tables),
 *		kept by the backups themselves in a file under pg_stat/, so the view
 *		costs no S3 request.
 */
#ifndef AIBACKUP_TABLE_STATS_H
#define AIBACKUP_TABLE_STATS_H

#include "core/manifest.h"
#include "pg/state.h"

/* tables absent from this many backups in a row drop out of the history */
#define AB_TABLE_HISTORY	8

typedef struct AbTableStat
{
	char		schema[NAMEDATALEN];
	char		name[NAMEDATALEN];
	char		last_id[AB_ID_LEN]; /* newest backup that had it */
	char		last_status[16];	/* ok | failed */
	char		last_error[AB_ERROR_LEN];	/* "" unless failed */
	char		ok_id[AB_ID_LEN];	/* newest backup where it is ok, or "" */
	int64		rows;			/* as of ok_id */
	int64		raw_bytes;
	int64		compressed_bytes;
	int32		failures;		/* consecutive, up to last_id */
	int32		absent;			/* backups since last_id */
} AbTableStat;

/*
 * After a backup's manifest is written: fold m (server encoding) into the
 * current database's history.  Never fails the backup: a problem with the
 * file is a WARNING.
 */
extern void ab_table_stats_record(const Manifest *m);

/* the current database's history (palloc'd array); *n entries */
extern AbTableStat *ab_table_stats_read(int *n);

/* remove the history of a database that was dropped */
extern void ab_table_stats_forget(Oid dboid);

#endif							/* AIBACKUP_TABLE_STATS_H */
