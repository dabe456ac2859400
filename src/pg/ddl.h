/*
 * ddl.h
 *		Capturing a table's definition for the manifest (see ddl.c).
 */
#ifndef AIBACKUP_DDL_H
#define AIBACKUP_DDL_H

#include "core/manifest.h"
#include "nodes/pg_list.h"

/*
 * A table's script in the three parts a restore runs apart: sequences and
 * CREATE TABLE (before the data); constraints, indexes, comments, row
 * security, OWNED BY (after it); foreign keys (once every table exists).
 * "" for a part with nothing in it.
 */
typedef struct AbDdlParts
{
	char	   *pre;
	char	   *post;
	char	   *fk;
} AbDdlParts;

/*
 * Fill the definition pieces and the SQL script (MfTable.ddl) of each of
 * tables (AbTable, locked) into mts[i], their manifest entries in the same
 * order, and, when parts is not NULL, the script's parts into parts[i]
 * (palloc'd in the current memory context).  Strings in the server
 * encoding, malloc'd into the manifest.  A handful of queries whatever the
 * number of tables.
 */
extern void ab_ddl_capture(List *tables, MfTable *mts, AbDdlParts *parts);

/*
 * s for a "--" comment line of a script: a name or literal may hold a line
 * break (a quoted identifier keeps it), which would end the comment and make
 * the rest a statement for whoever runs the script.
 */
extern char *ab_ddl_in_comment(const char *s);

#endif							/* AIBACKUP_DDL_H */
