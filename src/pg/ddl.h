/*
 * ddl.h
 *		Capturing a table's definition for the manifest (see ddl.c).
 */
#ifndef AIBACKUP_DDL_H
#define AIBACKUP_DDL_H

#include "core/manifest.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/*
 * A table's script in the parts a restore runs apart: the sequences it owns
 * (before any table: another table's default may use them); CREATE TABLE
 * (before the data); constraints, indexes, comments, row security, OWNED BY
 * (after it); foreign keys (once every table exists).  "" for a part with
 * nothing in it.
 */
typedef struct AbDdlParts
{
	char	   *seq;
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
 * The settings a script starts with, before any text from the catalogs:
 * the encoding of what follows; standard strings (under
 * standard_conforming_strings off, psql would read a backslash in a
 * literal as an escape, and a crafted CHECK could end its literal early and
 * make the rest a psql command); no search_path (every name is qualified,
 * or in pg_catalog); no timeouts, no row security.  As pg_dump's scripts.
 */
extern void ab_ddl_script_settings(StringInfo buf, const char *encoding);

/*
 * s for a "--" comment line of a script: a name or literal may hold a line
 * break (a quoted identifier keeps it), which would end the comment and make
 * the rest a statement for whoever runs the script.
 */
extern char *ab_ddl_in_comment(const char *s);

#endif							/* AIBACKUP_DDL_H */
