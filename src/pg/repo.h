/*
 * repo.h
 *		The backup repository's layout in S3 and its manifests:
 *		<prefix>/<database>/<backup_id>/{manifest.json,<schema>.<table>.csv.gz}
 *
 * Encodings: what is in S3 (manifest text, names in keys) is UTF-8; what
 * these functions take and give (database, schema and table names, the
 * Manifest read or written) is in the server encoding, GetDatabaseEncoding().
 * A process connected to no database (the launcher) has SQL_ASCII there,
 * which converts nothing: it must pass names already in UTF-8, from
 * ab_repo_to_utf8(NameStr(datname), pg_database.encoding, ...).
 */
#ifndef AIBACKUP_REPO_H
#define AIBACKUP_REPO_H

#include "core/manifest.h"
#include "core/s3.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

#define AB_BACKUP_ID_LEN 16		/* YYYYMMDDTHHMMSSZ */

/*
 * s, text in the given encoding, in UTF-8 (palloc'd).  When a character
 * has no UTF-8 equivalent (or, in SQL_ASCII, s is not valid UTF-8): NULL if
 * noError, else an ERROR naming it.  A conversion between two real
 * encodings needs a transaction (the conversion function is looked up).
 */
extern char *ab_repo_to_utf8(const char *s, int encoding, bool noError);

/* s, UTF-8, in the server encoding; the same when it cannot be */
extern char *ab_repo_from_utf8(const char *s, bool noError);

extern char *ab_repo_db_prefix(const char *dbname);

/*
 * Is key an object inside dbname's folder (prefix/<database>/...), with no
 * empty, "." or ".." segment that a client could normalize into another
 * folder?
 */
extern bool ab_repo_key_in_database(const char *key, const char *dbname);
extern char *ab_repo_manifest_key(const char *dbname, const char *backup_id);
extern char *ab_repo_table_key(const char *dbname, const char *backup_id,
							   const char *schema, const char *table);

/* true if s looks like a backup id */
extern bool ab_repo_valid_backup_id(const char *s);

/* ids of the backup folders of dbname, newest first (manifest or not) */
extern List *ab_repo_backup_ids(S3Client *c, const char *dbname);

/*
 * The manifest of one backup, or NULL when it has none (not a backup) or
 * it is not a valid manifest of this backup (with a WARNING saying why:
 * damaged, of a newer format, or naming a table backed up that this
 * database's encoding cannot represent).  Its strings are in the server
 * encoding.  palloc'd in CurrentMemoryContext.
 */
extern Manifest *ab_repo_read_manifest(S3Client *c, const char *dbname,
									   const char *backup_id);

/* what ab_repo_read_manifest_state found */
typedef enum AbManifestState
{
	AB_MANIFEST_OK,
	AB_MANIFEST_MISSING,		/* no manifest: a run that did not finish */
	AB_MANIFEST_UNREADABLE		/* there, but not a manifest of this backup
								 * that this version can read */
} AbManifestState;

/* the same, saying which of the three it is (NULL unless AB_MANIFEST_OK) */
extern Manifest *ab_repo_read_manifest_state(S3Client *c, const char *dbname,
											 const char *backup_id,
											 AbManifestState *state);

/* m's strings are in the server encoding; it is written in UTF-8 */
extern void ab_repo_write_manifest(S3Client *c, const Manifest *m);

/* delete one backup: manifest first (so it is never half listed), then objects */
extern void ab_repo_delete_backup(S3Client *c, const char *dbname,
								  const char *backup_id);

/*
 * Abort multipart uploads that runs which died left behind: only uploads of
 * our own layout (<prefix>/<db>/<backup_id>/<table>.csv.gz), begun before
 * "before", and not under any of skip_prefixes (databases being backed up
 * right now).  Returns how many were aborted.
 */
extern int	ab_repo_abort_stale_uploads(S3Client *c, TimestampTz before,
										List *skip_prefixes);

/* backup id -> UTC timestamp */
extern TimestampTz ab_repo_backup_time(const char *backup_id);

#endif							/* AIBACKUP_REPO_H */
