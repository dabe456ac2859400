/*
 * ddl.h
 *		Capturing a table's definition for the manifest (see ddl.c).
 */
#ifndef AIBACKUP_DDL_H
#define AIBACKUP_DDL_H

#include "core/manifest.h"
#include "nodes/pg_list.h"

/*
 * Fill the definition pieces and the SQL script (MfTable.ddl) of each of
 * tables (AbTable, locked) into mts[i], their manifest entries in the same
 * order.  Strings in the server encoding,
 * malloc'd into the manifest.  A handful of queries whatever the number of
 * tables.
 */
extern void ab_ddl_capture(List *tables, MfTable *mts);

#endif							/* AIBACKUP_DDL_H */
