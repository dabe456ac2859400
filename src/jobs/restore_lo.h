/*
 * restore_lo.h
 *		Restore the large objects of a backup (see restore_lo.c).
 */
#ifndef AIBACKUP_RESTORE_LO_H
#define AIBACKUP_RESTORE_LO_H

#include "utils/array.h"

/*
 * The large objects of backup_id (NULL: the newest that holds any), or only
 * those whose OIDs are in oids (oid[], NULL: all), back in the current
 * database, replacing any of the same OID; returns how many.
 */
extern int64 ab_restore_large_objects(const char *backup_id, ArrayType *oids);

#endif							/* AIBACKUP_RESTORE_LO_H */
