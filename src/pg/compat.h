/*
 * compat.h
 *		The differences between the PostgreSQL versions aibackup builds
 *		against (15, 17, 18) that are not about COPY (copy_out.c keeps its
 *		own), in one place.
 */
#ifndef AIBACKUP_COMPAT_H
#define AIBACKUP_COMPAT_H

#include "parser/parse_type.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#if PG_VERSION_NUM < 170000
#include "storage/sinvaladt.h"
#endif

/* parseTypeString: a bool missing_ok until 15, a soft-error context since 16 */
#if PG_VERSION_NUM >= 160000
#define ab_parse_type_string(str, typid, typmod) \
	parseTypeString((str), (typid), (typmod), NULL)
#else
#define ab_parse_type_string(str, typid, typmod) \
	parseTypeString((str), (typid), (typmod), false)
#endif

/* the PID of the process running a virtual transaction, 0 if gone */
static inline int
ab_vxid_pid(VirtualTransactionId vxid)
{
	PGPROC	   *proc;

	if (!VirtualTransactionIdIsValid(vxid))
		return 0;
#if PG_VERSION_NUM >= 170000
	proc = ProcNumberGetProc(vxid.procNumber);
#else
	proc = BackendIdGetProc(vxid.backendId);
#endif
	return proc ? proc->pid : 0;
}

#endif							/* AIBACKUP_COMPAT_H */
