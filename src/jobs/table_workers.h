/*
 * table_workers.h
 *		A backup's tables copied by table workers under its one snapshot
 *		(aibackup.max_parallel_tables).
 */
#ifndef AIBACKUP_TABLE_WORKERS_H
#define AIBACKUP_TABLE_WORKERS_H

#include "nodes/pg_list.h"

#include "core/manifest.h"
#include "jobs/backup_table.h"

/* called in the backup's process as m->tables[i] is filled */
typedef void (*AbTableDone) (void *arg, int i);

/*
 * Copy tables (AbTable, locked, one per entry of m->tables, in order) with
 * up to aibackup.max_parallel_tables table workers sharing cx->snap, and
 * fill every entry of m from what they send back, calling done for each.
 * false, having done nothing, when workers are not worth it (the setting
 * is 1, a single table) or none could be started: the caller then copies
 * the tables itself.  ERROR when the backup as a whole fails, in the
 * backup's process or in a worker; every worker has ended by then.
 */
extern bool ab_table_workers_run(AbTableCopy *cx, List *tables, Manifest *m,
								 AbTableDone done, void *arg);

#endif							/* AIBACKUP_TABLE_WORKERS_H */
