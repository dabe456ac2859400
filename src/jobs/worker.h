/*
 * worker.h
 *		The scheduled per-database backup worker.
 */
#ifndef AIBACKUP_WORKER_H
#define AIBACKUP_WORKER_H

#include <signal.h>

#include "postmaster/bgworker.h"

/* start a worker backing up dboid; the caller (launcher) is notified */
extern bool ab_worker_start(Oid dboid, const char *dbname,
							BackgroundWorkerHandle **handle);

/*
 * SIGTERM for a process that backs up (the scheduled worker, a table
 * worker): not a FATAL on the spot, which would skip the cleanup that
 * aborts open multipart uploads, but a query cancel, whose ERROR unwinds
 * through that cleanup; ab_worker_terminated then says why it ended.
 */
extern volatile sig_atomic_t ab_worker_terminated;
extern void ab_worker_sigterm(SIGNAL_ARGS);

#endif							/* AIBACKUP_WORKER_H */
