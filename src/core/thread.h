/*
 * thread.h
 *		The one way the core starts a thread (pure C).
 */
#ifndef AIBACKUP_THREAD_H
#define AIBACKUP_THREAD_H

#include <pthread.h>
#include <stdbool.h>

/*
 * Start fn(arg) in a new thread with every signal blocked, so that signals
 * meant for the process (PostgreSQL's) are never run on it; the caller's
 * own mask is as it was.  false when it could not be started.
 */
extern bool ab_thread_create(pthread_t *thread, void *(*fn) (void *), void *arg);

#endif							/* AIBACKUP_THREAD_H */
