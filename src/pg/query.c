/*
 * query.c
 *		SPI with a pinned search_path: the one way aibackup runs SQL.
 *
 * Why: the backup worker and a superuser's SQL calls run in databases
 * whose owner may plant functions and operators in public (an exact type
 * match beats pg_catalog's) and may ALTER DATABASE ... SET search_path so
 * that public comes first.  Any unqualified name we resolve there would run
 * the owner's code with our rights (the CVE-2018-1058 class).  So every
 * query runs with search_path = "pg_catalog, pg_temp", set in a GUC nest
 * level of its own and undone at ab_query_end (or by the (sub)transaction
 * abort on error).  Functions and operators are never looked up in pg_temp,
 * and relation names in our queries are always schema-qualified.
 *
 * Hazard: SPI_finish deletes SPI's procedure context, which is current
 * between begin and end.  A List begun there dies with it even when its
 * elements were allocated elsewhere: switch to q->outer before lappend.
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/memutils.h"

#include "pg/query.h"

void
ab_query_begin(AbQuery *q)
{
	int			rc;

	q->outer = CurrentMemoryContext;
	rc = SPI_connect();
	if (rc != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
	q->guc_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
	/* literals as the deparsers write them, whatever the session's setting */
	(void) set_config_option("standard_conforming_strings", "on",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
}

void
ab_query_end(AbQuery *q)
{
	AtEOXact_GUC(false, q->guc_nestlevel);
	SPI_finish();
	MemoryContextSwitchTo(q->outer);
}

void
ab_query_exec(const char *sql, bool read_only, long count)
{
	int			rc = SPI_execute(sql, read_only, count);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

void
ab_query_exec_args(const char *sql, int nargs, Oid *types, Datum *values,
				   bool read_only, long count)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL,
										   read_only, count);

	if (rc < 0)
		elog(ERROR, "SPI_execute_with_args failed: %s",
			 SPI_result_code_string(rc));
}

char *
ab_query_value(AbQuery *q, uint64 row, int col)
{
	char	   *v;
	char	   *copy = NULL;

	Assert(row < SPI_processed);
	v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
	if (v != NULL)
		copy = MemoryContextStrdup(q->outer, v);
	return copy;
}
