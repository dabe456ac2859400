/*
 * read.h
 *		aibackup_read(): a backed-up table's rows as rows of a given type,
 *		without restoring it.
 */
#ifndef AIBACKUP_READ_H
#define AIBACKUP_READ_H

#include "access/tupdesc.h"
#include "utils/tuplestore.h"

/*
 * Put into ts (of desc, the row type rowtype) every row of the table
 * source (NULL: the table whose row type rowtype is) in backup backup_id
 * (NULL: the newest holding it), columns matched by name, those the backup
 * lacks NULL.  Nothing is put unless the object matched its checksum.
 */
extern int64 ab_read_table(Oid rowtype, const char *backup_id,
						   const char *source, Tuplestorestate *ts,
						   TupleDesc desc);

#endif							/* AIBACKUP_READ_H */
