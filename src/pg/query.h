/*
 * query.h
 *		The one way aibackup runs SQL: through SPI, with search_path pinned
 *		to "pg_catalog, pg_temp" for as long as the connection is open.
 */
#ifndef AIBACKUP_QUERY_H
#define AIBACKUP_QUERY_H

#include "executor/spi.h"

/* an open SPI connection with a pinned search_path */
typedef struct AbQuery
{
	MemoryContext outer;		/* current before ab_query_begin: results that
								 * must outlive the query go here */
	int			guc_nestlevel;
} AbQuery;

/*
 * SPI_connect, then pin search_path.  Every query run before ab_query_end
 * resolves unqualified functions, operators, casts and types in pg_catalog
 * only: a database owner's same-named objects in public, or a search_path
 * set with ALTER DATABASE / ALTER ROLE, never take part.  Literals are
 * standard (standard_conforming_strings on), as PostgreSQL's deparsers
 * write them: SQL parsed in between, for a check or to run, reads them so.
 *
 * Memory: SPI's procedure context is current in between and is deleted by
 * ab_query_end, with every List, string and tuple made there.  Build what
 * must outlive the query in q->outer (ab_query_value does).
 */
extern void ab_query_begin(AbQuery *q);
extern void ab_query_end(AbQuery *q);

/* run one statement; ERROR unless SPI says it worked */
extern void ab_query_exec(const char *sql, bool read_only, long count);
extern void ab_query_exec_args(const char *sql, int nargs, Oid *types,
							   Datum *values, bool read_only, long count);

/* column col (1-based) of row of the last result, copied into q->outer */
extern char *ab_query_value(AbQuery *q, uint64 row, int col);

#endif							/* AIBACKUP_QUERY_H */
