/* aibackup--0.1.sql: objects of the aibackup extension */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION aibackup" to load this file. \quit

CREATE FUNCTION aibackup_presign_url(object_key text,
                                     expires interval DEFAULT '1 hour',
                                     signed_at timestamptz DEFAULT now())
RETURNS text
AS 'MODULE_PATHNAME', 'aibackup_presign_url'
LANGUAGE C STRICT VOLATILE;

COMMENT ON FUNCTION aibackup_presign_url(text, interval, timestamptz) IS
'presigned GET URL for an object key in aibackup.s3_bucket';

-- superuser only unless granted
REVOKE ALL ON FUNCTION aibackup_presign_url(text, interval, timestamptz) FROM PUBLIC;

CREATE FUNCTION aibackup_backup_now(tables regclass[] DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'aibackup_backup_now'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_backup_now(regclass[]) IS
'back up the current database (or only the given tables) to S3 now; returns the backup id';
REVOKE ALL ON FUNCTION aibackup_backup_now(regclass[]) FROM PUBLIC;

CREATE FUNCTION aibackup_list_backups()
RETURNS TABLE(backup_id text, status text, started_at timestamptz,
              finished_at timestamptz, tables int, rows bigint,
              raw_bytes bigint, compressed_bytes bigint)
AS 'MODULE_PATHNAME', 'aibackup_list_backups'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_list_backups() IS
'backups of the current database in S3, newest first';
REVOKE ALL ON FUNCTION aibackup_list_backups() FROM PUBLIC;

CREATE FUNCTION aibackup_list_tables(backup_id text DEFAULT NULL)
RETURNS TABLE(backup_id text, schema_name text, table_name text, rows bigint,
              raw_bytes bigint, compressed_bytes bigint, object_key text,
              sha256 text)
AS 'MODULE_PATHNAME', 'aibackup_list_tables'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_list_tables(text) IS
'tables of one backup (NULL: the newest)';
REVOKE ALL ON FUNCTION aibackup_list_tables(text) FROM PUBLIC;

CREATE FUNCTION aibackup_restore_table(source_table text,
                                       backup_id text DEFAULT NULL,
                                       target_table text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'aibackup_restore_table'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_restore_table(text, text, text) IS
'restore one table from a backup (NULL backup: the newest holding it) into target_table (NULL: its own name)';
REVOKE ALL ON FUNCTION aibackup_restore_table(text, text, text) FROM PUBLIC;
