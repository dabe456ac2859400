/*
 * incremental.h
 *		Incremental backups: a table proven unchanged since the previous
 *		backup has its object copied inside S3 instead of being read again.
 */
#ifndef AIBACKUP_INCREMENTAL_H
#define AIBACKUP_INCREMENTAL_H

#include "core/manifest.h"
#include "core/s3.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"

/*
 * The backup of this database that unchanged tables may be copied from:
 * the newest one that did not fail, when it was made by this cluster, in
 * this database, on this WAL timeline, by a version that records what the
 * proof needs.  NULL otherwise, or with aibackup.incremental off.
 */
extern const Manifest *ab_incremental_base(S3Client *c, const char *dbname);

/* record in mt what a later backup's proof needs (before reading rel) */
extern void ab_incremental_record(Relation rel, MfTable *mt);

/* after reading rel: forget the definition hash if it changed meanwhile */
extern void ab_incremental_recheck(Relation rel, MfTable *mt);

/*
 * Copy rel's object from base into mt->object_key if rel, under snap, is
 * proven to hold what base's object holds; then mt's data fields are
 * filled.  False when rel must be read.  An S3 failure other than the
 * source object being gone or changed is raised, with *s3_failed set.
 */
extern bool ab_incremental_copy(S3Client *c, const Manifest *base,
								Relation rel, MfTable *mt, Snapshot snap,
								bool *s3_failed);

#endif							/* AIBACKUP_INCREMENTAL_H */
