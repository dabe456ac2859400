/*
 * compat.h
 *		The differences between the PostgreSQL versions aibackup builds
 *		against (15, 17, 18) that are not about COPY (copy_out.c keeps its
 *		own), in one place.
 */
#ifndef AIBACKUP_COMPAT_H
#define AIBACKUP_COMPAT_H

/* shmem_request_hook, among others, is 15's */
#if PG_VERSION_NUM < 150000
#error "aibackup needs PostgreSQL 15 or later"
#endif

/*
 * A function that never returns: 18 spells it pg_noreturn, before the
 * declaration; until 17 pg_attribute_noreturn(), which GCC and clang also
 * accept there.
 */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

#include "access/htup_details.h"
#include "catalog/catalog.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_database.h"
#include "catalog/pg_namespace.h"
#include "commands/tablecmds.h"
#include "parser/parse_type.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/rel.h"
#if PG_VERSION_NUM < 170000
#include "storage/sinvaladt.h"
#endif

/* 16 folded the per-kind ACL checks into object_aclcheck() */
#if PG_VERSION_NUM >= 160000
#define ab_namespace_aclcheck(nsp, role, mode) \
	object_aclcheck(NamespaceRelationId, (nsp), (role), (mode))
#else
#define ab_namespace_aclcheck(nsp, role, mode) \
	pg_namespace_aclcheck((nsp), (role), (mode))
#endif

/*
 * May member make role own things (ALTER ... OWNER TO role)?  16 made that
 * the SET option of the membership; before, any membership.
 */
#if PG_VERSION_NUM >= 160000
#define ab_can_set_role(member, role) member_can_set_role((member), (role))
#else
#define ab_can_set_role(member, role) is_member_of_role((member), (role))
#endif

/*
 * Does the column hold no NULLs?  18 catalogs NOT NULL constraints, and one
 * added NOT VALID sets attnotnull over rows that may still be NULL.
 */
static inline bool
ab_att_not_null(Relation rel, Form_pg_attribute att)
{
#if PG_VERSION_NUM >= 180000
	HeapTuple	tup;
	bool		valid;

	if (!att->attnotnull)
		return false;
	tup = findNotNullConstraintAttnum(RelationGetRelid(rel), att->attnum);
	if (tup == NULL)
		return true;
	valid = ((Form_pg_constraint) GETSTRUCT(tup))->convalidated;
	heap_freetuple(tup);
	return valid;
#else
	return att->attnotnull;
#endif
}

/* an interrupted DROP DATABASE leaves datconnlimit so: named in 15.4 */
#ifndef DATCONNLIMIT_INVALID_DB
#define DATCONNLIMIT_INVALID_DB (-2)
#endif

/* parseTypeString: a bool missing_ok until 15, a soft-error context since 16 */
#if PG_VERSION_NUM >= 160000
#define ab_parse_type_string(str, typid, typmod) \
	parseTypeString((str), (typid), (typmod), NULL)
#else
#define ab_parse_type_string(str, typid, typmod) \
	parseTypeString((str), (typid), (typmod), false)
#endif

/*
 * TRUNCATE ONLY one table, opened and locked ACCESS EXCLUSIVE by the caller,
 * as the current user and with no privilege checks (the caller made them):
 * what TRUNCATE does after its checks, triggers included.  16 added
 * run_as_table_owner; the caller has already switched to the owner.
 */
static inline void
ab_truncate_one(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	List	   *logged = RelationIsLogicallyLogged(rel) ? list_make1_oid(relid) : NIL;

#if PG_VERSION_NUM >= 160000
	ExecuteTruncateGuts(list_make1(rel), list_make1_oid(relid), logged,
						DROP_RESTRICT, false, false);
#else
	ExecuteTruncateGuts(list_make1(rel), list_make1_oid(relid), logged,
						DROP_RESTRICT, false);
#endif
}

/*
 * 17 gives a partitioned table's identity columns to its partitions (their
 * values come from the parent's sequence) and refuses to attach a table
 * with an identity column of its own.
 */
#define AB_PARTITION_IDENTITY_INHERITED (PG_VERSION_NUM >= 170000)

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
