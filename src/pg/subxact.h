/*
 * subxact.h
 *		Run a piece of work in its own subtransaction and get its error back
 *		instead of a longjmp: one failing table must not end a backup.
 */
#ifndef AIBACKUP_SUBXACT_H
#define AIBACKUP_SUBXACT_H

#include "utils/elog.h"

/*
 * Run fn(arg) in a subtransaction.  NULL when it succeeded (and was
 * committed into the current transaction); otherwise the error, already
 * rolled back, copied into the caller's memory context.
 */
extern ErrorData *ab_subxact_run(void (*fn) (void *arg), void *arg);

#endif							/* AIBACKUP_SUBXACT_H */
