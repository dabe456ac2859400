/*
 * bindex.h
 *		The backup index of one database folder (<prefix>/<database>/
 *		index.json): a summary of each backup, so that listing the backups
 *		costs one LIST and one GET instead of one GET per backup, and the
 *		system that owns the folder.  Pure C: no PostgreSQL headers; strings
 *		are UTF-8, malloc'd and owned by the BackupIndex.
 *
 * The index is a cache, never the truth: a backup exists when its manifest
 * does.  Readers use an entry only for a folder that a LIST shows, and read
 * the manifest of a folder the index does not cover.  The owner
 * (system_identifier) is what keeps two clusters out of one folder.
 */
#ifndef AIBACKUP_BINDEX_H
#define AIBACKUP_BINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BINDEX_FORMAT 1

/* what aibackup_list_backups() shows of one backup, from its manifest */
typedef struct BiEntry
{
	char	   *backup_id;
	char	   *status;			/* "ok" | "partial" | "failed" */
	char	   *started_at;		/* ISO 8601 UTC, or NULL */
	char	   *finished_at;
	char	   *system_identifier;	/* of the cluster that wrote it, or NULL */
	int64_t		tables_ok;
	int64_t		tables_failed;
	int64_t		rows;			/* sums over the tables with status ok */
	int64_t		raw_bytes;
	int64_t		compressed_bytes;
	bool		from_standby;	/* taken on a hot standby */
} BiEntry;

typedef struct BackupIndex
{
	int			format;			/* BINDEX_FORMAT */
	char	   *database;
	char	   *system_identifier;	/* the cluster that owns the folder */
	char	   *updated_at;
	int			nentries;
	BiEntry    *entries;
} BackupIndex;

/* zeroed index; NULL on OOM */
extern BackupIndex *bi_new(void);

/* append a zeroed entry and return it (NULL on OOM) */
extern BiEntry *bi_add(BackupIndex *ix);
extern void bi_free(BackupIndex *ix);

/* pretty JSON text, malloc'd; NULL on OOM */
extern char *bi_to_json(const BackupIndex *ix);

/* parse; NULL with a message in errbuf when not a valid index */
extern BackupIndex *bi_parse(const char *json, size_t len,
							 char *errbuf, size_t errlen);

/*
 * The "format" of a JSON object's top level, whatever else it holds; 0 if
 * there is none (not JSON, not an object, no positive integer "format").
 * Tells an index of a newer format from a damaged one.
 */
extern int64_t bi_peek_format(const char *json, size_t len);

#endif							/* AIBACKUP_BINDEX_H */
