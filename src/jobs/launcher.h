/*
 * launcher.h
 *		The scheduler's static background worker.
 */
#ifndef AIBACKUP_LAUNCHER_H
#define AIBACKUP_LAUNCHER_H

/* register the launcher; only from _PG_init under shared_preload_libraries */
extern void ab_launcher_register(void);

#endif							/* AIBACKUP_LAUNCHER_H */
