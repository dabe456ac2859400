/*
 * repo_index.h
 *		The one way to walk a database's backups (newest first), the index
 *		that makes the walk cheap, and who owns a database's folder.
 *
 * A walk costs one LIST (per 1,000 backups) and one GET of index.json;
 * a manifest is read only when the caller asks for it, or for a backup the
 * index does not cover (an index lost, damaged or written before that
 * backup).  Everything it gives is in the server encoding, palloc'd in the
 * caller's memory context at the time of ab_walk_next().
 */
#ifndef AIBACKUP_REPO_INDEX_H
#define AIBACKUP_REPO_INDEX_H

#include "pg/repo.h"

/* what a listing shows of one backup; the same from the index or manifest */
typedef struct AbBackupSummary
{
	char	   *backup_id;
	char	   *status;			/* "ok" | "partial" | "failed" */
	char	   *started_at;		/* ISO 8601, or NULL */
	char	   *finished_at;
	char	   *system_identifier;	/* of the writer, or NULL */
	int			tables_ok;
	int			tables_failed;
	int64		rows;			/* sums over the tables with status ok */
	int64		raw_bytes;
	int64		compressed_bytes;
	bool		from_standby;	/* taken on a hot standby */
} AbBackupSummary;

/* one backup folder, as ab_walk_next() gives it */
typedef struct AbBackup
{
	const char *backup_id;
	AbManifestState state;		/* MISSING or UNREADABLE only with AB_WALK_ALL */
	AbBackupSummary *summary;	/* when state is AB_MANIFEST_OK */
	Manifest   *manifest;		/* with AB_WALK_MANIFEST and state OK */
	bool		from_index;		/* the summary is the index's, unread */
} AbBackup;

#define AB_WALK_MANIFEST	0x01	/* read each backup's manifest */
#define AB_WALK_ALL			0x02	/* give folders without a readable
									 * manifest too */

typedef struct AbBackupWalk AbBackupWalk;

extern AbBackupWalk *ab_walk_begin(S3Client *c, const char *dbname, int flags);

/* the next backup, newest first; false at the end */
extern bool ab_walk_next(AbBackupWalk *w, AbBackup *b);
extern void ab_walk_end(AbBackupWalk *w);

/* the summary of a manifest (server encoding) */
extern AbBackupSummary *ab_backup_summary(const Manifest *m);

/*
 * Rewrite dbname's index from a fresh listing: entries for every backup
 * folder with a manifest, "added" (just written, may be NULL) included,
 * the ids in "removed" left out, and this cluster as the owner.  An entry
 * kept from the old index is kept only if its manifest is still there (one
 * HEAD each: a manifest deleted by hand leaves the index at the next
 * backup).  ERROR, writing nothing, when the index names another cluster,
 * unless take_over, or was written by a newer version (in a format this one
 * cannot read, so must not replace).
 */
extern void ab_index_update(S3Client *c, const char *dbname,
							const Manifest *added, List *removed,
							bool take_over);

/* this cluster's system identifier, as text */
extern char *ab_system_identifier(void);

/*
 * The system identifier of the cluster that owns dbname's folder: the one
 * its index names or, without a readable index, the writer of its newest
 * backup; NULL when neither says.  *source says which ("index.json",
 * "backup <id>").  An index of a newer format than this version reads gives
 * "a newer version of aibackup", which is never this cluster's.
 */
extern char *ab_folder_owner(S3Client *c, const char *dbname, char **source);

/*
 * ERROR when dbname's folder belongs to another cluster: its index names
 * another owner or, without a readable index, its newest backup was made
 * by another system; or its index is of a newer format than this version
 * reads (whose owner this version cannot know).
 */
extern void ab_folder_check_owner(S3Client *c, const char *dbname);

#endif							/* AIBACKUP_REPO_INDEX_H */
