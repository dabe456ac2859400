/*
 * restore_script.h
 *		A backup's restore.sql and restore/<schema>.sql (see
 *		restore_script.c).
 */
#ifndef AIBACKUP_RESTORE_SCRIPT_H
#define AIBACKUP_RESTORE_SCRIPT_H

#include "core/s3.h"
#include "core/manifest.h"
#include "pg/ddl.h"

/*
 * Write the restore scripts of m (its strings in the server encoding), whose
 * tables are copied and whose definitions were read into parts (one per
 * table of m, in its order) and pparts (one per partitioned table), and set
 * m->restore_scripts.  Writes nothing when
 * the definitions could not be read.  ERROR on an S3 failure.
 */
extern void ab_restore_scripts_put(S3Client *c, Manifest *m,
								   const AbDdlParts *parts,
								   const AbDdlParts *pparts);

#endif							/* AIBACKUP_RESTORE_SCRIPT_H */
