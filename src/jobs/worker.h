/*
 * worker.h
 *		The scheduled per-database backup worker.
 */
#ifndef AIBACKUP_WORKER_H
#define AIBACKUP_WORKER_H

#include "postmaster/bgworker.h"

/* start a worker backing up dboid; the caller (launcher) is notified */
extern bool ab_worker_start(Oid dboid, const char *dbname,
							BackgroundWorkerHandle **handle);

#endif							/* AIBACKUP_WORKER_H */
