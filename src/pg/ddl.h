/*
 * ddl.h
 *		Capturing a table's definition for the manifest (see ddl.c).
 */
#ifndef AIBACKUP_DDL_H
#define AIBACKUP_DDL_H

#include "core/manifest.h"

/*
 * Fill mt's definition pieces and its SQL script (mt->ddl) for the locked
 * table relid, named schema.name, owned by owner (NULL if unknown); strings
 * in the server encoding, malloc'd into the manifest.
 */
extern void ab_ddl_capture(Oid relid, const char *schema, const char *name,
						   const char *owner, MfTable *mt);

#endif							/* AIBACKUP_DDL_H */
