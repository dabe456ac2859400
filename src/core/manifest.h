/*
 * manifest.h
 *		The backup manifest (manifest.json): its in-memory form, JSON writer
 *		and JSON reader.  Pure C: no PostgreSQL headers; all strings are
 *		malloc'd and owned by the Manifest.
 *
 * The manifest is what makes a set of objects a backup: it is written last,
 * and it alone is enough to restore a table without the source database.
 * Readers ignore fields they do not know (forward compatibility); the
 * "format" field is bumped only for incompatible changes.
 */
#ifndef AIBACKUP_MANIFEST_H
#define AIBACKUP_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_FORMAT 1

typedef struct MfColumn
{
	char	   *name;
	char	   *type;			/* format_type() text, e.g. "numeric(10,2)" */
	int			position;		/* attnum in the source */
	bool		not_null;
} MfColumn;

/*
 * One piece of a table's definition, as PostgreSQL's deparsers write it
 * (pg_get_constraintdef, pg_get_indexdef, pg_get_expr, format_type), so a
 * restore can recreate the table piece by piece, under another name if
 * need be.  kind says what sql is:
 *	column		name: the column; sql: its type and options as in CREATE
 *				TABLE ("integer DEFAULT 0 NOT NULL")
 *	sequence	name: a sequence the table owns (serial), quoted and
 *				qualified; target: its column; sql: its options ("AS
 *				integer START WITH 1 ...")
 *	identity	the same for an identity column's sequence
 *	constraint	name; sql: pg_get_constraintdef (CHECK, PRIMARY KEY, UNIQUE,
 *				EXCLUDE)
 *	foreign_key name; sql: pg_get_constraintdef
 *	index		name; sql: pg_get_indexdef (an index no constraint owns)
 *	comment		target: "" for the table, else a column; sql: the text
 *	policy		name; sql: what follows "CREATE POLICY name ON table"
 *	row_security sql: "enable" or "force"
 *	partition_of name: the parent, qualified; sql: its bound
 *	partition_by sql: a partitioned table's key (pg_get_partkeydef: "RANGE
 *				(ts)")
 *	acl			sql: the table's aclitem[] as text
 * Readers skip kinds they do not know.
 */
typedef struct MfDdl
{
	char	   *kind;
	char	   *name;
	char	   *target;
	char	   *sql;
} MfDdl;

typedef struct MfTable
{
	char	   *schema;
	char	   *name;
	char	   *parent;			/* "schema.table" of the partitioned parent,
								 * or NULL */
	char	   *extension;		/* the extension it belongs to (one of its
								 * configuration tables), or NULL */
	char	   *status;			/* "ok" | "failed" */
	char	   *error;			/* why it failed, or NULL */
	char	   *object_key;		/* full S3 key of the .csv.gz */
	char	   *format;			/* "csv" (with header row) */
	char	   *compression;	/* "gzip" */
	char	   *sha256;			/* hex of the compressed object */
	char	   *ddl;			/* CREATE TABLE text when captured, or NULL */
	uint32_t	relid;			/* the table's OID in the source database, 0
								 * when unknown (manifests before 0.2) */
	char	   *owner;			/* the owning role's name, or NULL when
								 * unknown (manifests before 0.2) */
	int64_t		rows;
	int64_t		raw_bytes;
	int64_t		compressed_bytes;
	int			ncolumns;
	MfColumn   *columns;
	int			nddl;			/* the definition, in pieces; 0 in manifests
								 * made before it was recorded */
	MfDdl	   *ddls;
	int			partitions;		/* a partitioned table's: the partitions with
								 * data below it at the snapshot (the backup
								 * is whole for it when it holds them all) */

	/*
	 * What an incremental backup checks before it copies this entry's object
	 * instead of reading the table again (0.4 on; 0 or NULL when unknown):
	 * the heap's and TOAST's relfilenodes, a hash of everything the CSV
	 * depends on besides the rows (definition_hash), and the object's ETag.
	 * copied_from: the backup whose object was copied (NULL: read here);
	 * read_in: the backup that read the rows from the table.
	 */
	uint32_t	relfilenode;
	uint32_t	toast_relfilenode;
	char	   *definition_hash;
	char	   *etag;
	char	   *copied_from;
	char	   *read_in;
} MfTable;

typedef struct MfSequence
{
	char	   *schema;
	char	   *name;
	char	   *extension;		/* the extension it belongs to, or NULL */
	int64_t		last_value;
	bool		is_called;
} MfSequence;

/* the role that owns large objects: its OID in the source, and name */
typedef struct MfRole
{
	int64_t		oid;
	char	   *name;
} MfRole;

typedef struct Manifest
{
	int			format;			/* MANIFEST_FORMAT */
	char	   *backup_id;		/* YYYYMMDDTHHMMSSZ */
	char	   *database;
	char	   *status;			/* "ok" | "partial" | "failed" */
	char	   *started_at;		/* ISO 8601 UTC, e.g.
								 * 2026-11-24T03:10:00.123456Z */
	char	   *finished_at;
	char	   *server_version;
	char	   *server_encoding;	/* the source database's encoding, e.g.
									 * "LATIN1": the CSV objects are in it;
									 * NULL when unknown (manifests before
									 * 0.2).  Every string of the manifest
									 * itself is UTF-8 */
	char	   *system_identifier;
	char	   *extension_version;
	char	   *snapshot_lsn;

	/*
	 * For the next backup's proof that a table did not change (0.4 on; 0 or
	 * NULL when unknown): the WAL insert position read just before the
	 * snapshot was taken, the snapshot's xmin as a 64-bit transaction id, the
	 * WAL timeline and the database's OID.
	 */
	char	   *reuse_lsn;
	int64_t		snapshot_xmin;
	int64_t		timeline;
	int64_t		database_oid;
	bool		restore_scripts;	/* restore.sql and restore/<schema>.sql
									 * are in the backup's folder (0.3 on) */
	bool		from_standby;	/* taken on a hot standby (absent before) */
	int			ntables;
	MfTable    *tables;
	int			npartitioned;	/* the partitioned tables above them (0.3 on):
								 * no data (status, object_key and sha256
								 * NULL), their definitions only */
	MfTable    *partitioned;
	int			nsequences;
	MfSequence *sequences;
	int64_t		lo_page_size;	/* bytes per pg_largeobject page in the
								 * source, 0 when it holds none */
	int			nlo_owners;		/* the owners of its large objects */
	MfRole	   *lo_owners;
} Manifest;

/* zeroed manifest; NULL on OOM */
extern Manifest *mf_new(void);

/* append a zeroed table / sequence and return it (NULL on OOM) */
extern MfTable *mf_add_table(Manifest *m);
extern MfTable *mf_add_partitioned(Manifest *m);
extern MfColumn *mf_add_column(MfTable *t);
extern MfDdl *mf_add_ddl(MfTable *t);

/* drop every partitioned table's entry */
extern void mf_clear_partitioned(Manifest *m);

/* drop t's definition (pieces and script) */
extern void mf_clear_definition(MfTable *t);

/* free everything t holds (not t itself) */
extern void mf_free_table(MfTable *t);
extern MfSequence *mf_add_sequence(Manifest *m);
extern MfRole *mf_add_lo_owner(Manifest *m);
extern void mf_free(Manifest *m);

/* pretty JSON text, malloc'd; NULL on OOM */
extern char *mf_to_json(const Manifest *m);

/* parse; NULL with a message in errbuf when not a valid manifest */
extern Manifest *mf_parse(const char *json, size_t len,
						  char *errbuf, size_t errlen);

/*
 * One table's entry, every field exactly (strings as bytes, whatever their
 * encoding), for handing it to another process running the same binary;
 * not a storage format.  pack: malloc'd, NULL on OOM.  unpack: false when
 * the bytes are not a whole entry (t is then empty).
 */
extern char *mf_table_pack(const MfTable *t, size_t *len);
extern bool mf_table_unpack(const void *data, size_t len, MfTable *t);

/*
 * Is a table of schema a system catalog?  Only the large objects' two
 * catalogs are backed up that way (as tables, but restored by
 * aibackup_restore_large_objects(), with no definition and no script).
 */
extern bool mf_system_schema(const char *schema);

/* find a table by exact schema and name; NULL if absent */
extern const MfTable *mf_find_table(const Manifest *m, const char *schema,
									const char *name);

/* find a partitioned table by exact schema and name; NULL if absent */
extern const MfTable *mf_find_partitioned(const Manifest *m,
										  const char *schema,
										  const char *name);

#endif							/* AIBACKUP_MANIFEST_H */
