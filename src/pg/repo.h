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

/* s, text in the given encoding, in the server encoding; NULL if it cannot be */
extern char *ab_repo_to_server(const char *s, int encoding);

/*
 * s, text in the server encoding (a name, or a message quoting one), as
 * text every client can be sent: each character without a UTF-8
 * equivalent (any byte that is not UTF-8, in SQL_ASCII) becomes \xNN.  A
 * raw name in a message can make the message itself fail on its way to a
 * UTF-8 client.  Needs a transaction when a real conversion is involved.
 */
extern char *ab_repo_quotable(const char *s);

/*
 * Text for people, in and out of shared memory, which is UTF-8 so that any
 * database can read it.  ab_repo_text_to_utf8: s, in the server encoding,
 * in UTF-8 with '?' for what does not convert; it needs no catalog access
 * (it runs in error cleanup) once ab_repo_prepare_text_to_utf8() has run
 * in a transaction (before, a real conversion gives '?').
 * ab_repo_text_from_utf8: s, UTF-8, in the server encoding, with '?'.
 */
extern void ab_repo_prepare_text_to_utf8(void);
extern char *ab_repo_text_to_utf8(const char *s);
extern char *ab_repo_text_from_utf8(const char *s);

extern char *ab_repo_db_prefix(const char *dbname);

/*
 * ERROR when another database's name has the same UTF-8 spelling as the
 * current one's ("café" in a UTF8 and in a LATIN1 database): they would
 * share one folder, each listing, restoring and pruning the other's
 * backups.  Every entry point that touches the folder calls it first.
 */
extern void ab_repo_check_folder_unique(void);

/*
 * Is key an object inside dbname's folder (prefix/<database>/...), with no
 * empty, "." or ".." segment that a client could normalize into another
 * folder?
 */
extern bool ab_repo_key_in_database(const char *key, const char *dbname);
extern char *ab_repo_manifest_key(const char *dbname, const char *backup_id);
extern char *ab_repo_table_key(const char *dbname, const char *backup_id,
							   const char *schema, const char *table);

/*
 * A backup's restore script: restore.sql for every table (schema NULL), or
 * restore/<schema>.sql for one schema's.
 */
extern char *ab_repo_script_key(const char *dbname, const char *backup_id,
								const char *schema);

/*
 * ERROR unless t's object is directly in its backup's folder: a manifest
 * edited to name another database's object must not read or sign it for
 * someone allowed only here.
 */
extern void ab_repo_check_table_object(const Manifest *m, const MfTable *t);

/* the backup's folder, "<prefix>/<database>/<backup_id>/" */
extern char *ab_repo_backup_folder(const char *dbname, const char *backup_id);

/*
 * The tree below partitioned table p, an entry of m->partitioned: into
 * *parents the partitioned tables of m below it (p first, each after its
 * own parent), into *leaves the tables of m that are partitions of one of
 * them (MfTable pointers into m, failed ones included).
 */
extern void ab_repo_partition_tree(const Manifest *m, const MfTable *p,
								   List **parents, List **leaves);

/* is t an entry of m->partitioned (a table without data)? */
extern bool ab_repo_is_partitioned(const Manifest *m, const MfTable *t);

/* true if s looks like a backup id */
extern bool ab_repo_valid_backup_id(const char *s);

/* ERROR unless s (from a caller) looks like a backup id; NULL passes */
extern void ab_repo_check_backup_id(const char *s);

/* ids of the backup folders of dbname, newest first (manifest or not) */
extern List *ab_repo_backup_ids(S3Client *c, const char *dbname);

/* what ab_repo_read_manifest_state found */
typedef enum AbManifestState
{
	AB_MANIFEST_OK,
	AB_MANIFEST_MISSING,		/* no manifest: a run that did not finish */
	AB_MANIFEST_UNREADABLE		/* there, but not a manifest of this backup
								 * that this version can read */
} AbManifestState;

/*
 * The manifest of one backup, and which of the three it is: NULL unless
 * AB_MANIFEST_OK; UNREADABLE comes with a WARNING saying why (damaged, of
 * a newer format, not this backup's, or naming a table this database's
 * encoding cannot represent).  Its strings are in the server encoding,
 * palloc'd in CurrentMemoryContext.  ab_walk_next() (repo_index.h) is how
 * to go over all of a database's backups.
 */
extern Manifest *ab_repo_read_manifest_state(S3Client *c, const char *dbname,
											 const char *backup_id,
											 AbManifestState *state);

/*
 * A malloc'd copy of s (NULL stays NULL), for the core's Manifest and
 * BackupIndex, which free with free(); ERROR when memory runs out.
 */
extern char *ab_repo_mstrdup(const char *s);

/*
 * A small object (at most 256 MB) read whole, NUL-terminated, palloc'd;
 * NULL when S3 says NoSuchKey.  Other failures are ERRORs.
 */
extern char *ab_repo_get_small(S3Client *c, const char *key, size_t *len);

/* m's strings are in the server encoding; it is written in UTF-8 */
extern void ab_repo_write_manifest(S3Client *c, const Manifest *m);

/*
 * Before m (server encoding) is written: ERROR unless its folder holds
 * exactly the objects of m's tables with status ok, at the sizes m says (a
 * table that failed may have left its object), and their definitions
 * (<schema>.<table>.sql).  Catches another writer
 * that picked the same backup id.
 */
extern void ab_repo_check_backup_objects(S3Client *c, const Manifest *m);

/* delete one backup: manifest first (so it is never half listed), then objects */
extern void ab_repo_delete_backup(S3Client *c, const char *dbname,
								  const char *backup_id);

/*
 * Abort multipart uploads that runs which died left behind: only uploads of
 * our own layout (<prefix>/<db>/<backup_id>/<table>.csv.gz), begun before
 * "before", under one of the database folders in prefixes (those of this
 * cluster with no backup running), and, when id_parity is 0 or 1, of backup
 * ids whose seconds are even or odd (aibackup.backup_from_standby: a
 * primary's or a standby's).  Returns how many were aborted.
 */
extern int	ab_repo_abort_stale_uploads(S3Client *c, TimestampTz before,
										List *prefixes, int id_parity);

/*
 * The parity of this node's backup ids: 1 (odd seconds) on any standby, 0
 * on a primary with aibackup.backup_from_standby, else -1 (any).
 */
extern int	ab_repo_id_parity(void);

/* "2026-11-24T03:10:00.123456Z" (palloc'd) */
extern char *ab_repo_iso_utc(TimestampTz ts);

/* backup id -> UTC timestamp */
extern TimestampTz ab_repo_backup_time(const char *backup_id);

#endif							/* AIBACKUP_REPO_H */
