/* aibackup--0.4.sql: objects of the aibackup extension, version 0.4 */

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

CREATE FUNCTION aibackup_backup_now(tables regclass[] DEFAULT NULL,
                                    full boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'aibackup_backup_now'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_backup_now(regclass[], boolean) IS
'back up the current database (or only the given tables) to S3 now, copying the tables proven unchanged since the previous backup unless full; returns the backup id';
REVOKE ALL ON FUNCTION aibackup_backup_now(regclass[], boolean) FROM PUBLIC;

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
              sha256 text, copied_from text)
AS 'MODULE_PATHNAME', 'aibackup_list_tables'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_list_tables(text) IS
'tables of one backup (NULL: the newest), and the backup each unchanged one was copied from';
REVOKE ALL ON FUNCTION aibackup_list_tables(text) FROM PUBLIC;

CREATE FUNCTION aibackup_restore_table(source_table text,
                                       backup_id text DEFAULT NULL,
                                       target_table text DEFAULT NULL,
                                       foreign_keys boolean DEFAULT false,
                                       grants boolean DEFAULT false,
                                       owner boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'aibackup_restore_table'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean) IS
'restore one table from a backup (NULL backup: the newest holding it) into target_table (NULL: its own name); a table it recreates gets its foreign keys and privileges when asked, and its owner unless told not to';
REVOKE ALL ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean) FROM PUBLIC;

CREATE FUNCTION aibackup_table_ddl(source_table text, backup_id text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'aibackup_table_ddl'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_table_ddl(text, text) IS
'the definition of a table as its backup recorded it (NULL backup: the newest holding it), as a SQL script';
REVOKE ALL ON FUNCTION aibackup_table_ddl(text, text) FROM PUBLIC;

CREATE FUNCTION aibackup_presign_table(source_table text,
                                       backup_id text DEFAULT NULL,
                                       expires interval DEFAULT '1 day')
RETURNS TABLE(object text, url text)
AS 'MODULE_PATHNAME', 'aibackup_presign_table'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_presign_table(text, text, interval) IS
'presigned GET URLs for a table''s data and definition in a backup (NULL backup: the newest holding it), and the backup''s manifest';
REVOKE ALL ON FUNCTION aibackup_presign_table(text, text, interval) FROM PUBLIC;

CREATE FUNCTION aibackup_presign_backup(backup_id text DEFAULT NULL,
                                        expires interval DEFAULT '1 day',
                                        schemas text[] DEFAULT NULL)
RETURNS TABLE(object text, url text)
AS 'MODULE_PATHNAME', 'aibackup_presign_backup'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_presign_backup(text, interval, text[]) IS
'presigned GET URLs for every object of a backup (NULL: the newest), or of the tables of some schemas with their restore scripts';
REVOKE ALL ON FUNCTION aibackup_presign_backup(text, interval, text[]) FROM PUBLIC;

CREATE FUNCTION aibackup_restore_large_objects(backup_id text DEFAULT NULL,
                                               oids oid[] DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'aibackup_restore_large_objects'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_restore_large_objects(text, oid[]) IS
'restore the large objects of a backup (NULL: the newest holding any), all or the listed OIDs, replacing those of the same OID';
REVOKE ALL ON FUNCTION aibackup_restore_large_objects(text, oid[]) FROM PUBLIC;

-- Monitoring.  The functions decide nothing about privileges themselves:
-- the views and functions are granted to pg_read_all_stats only.

CREATE FUNCTION aibackup_stat_databases(
    OUT datname name, OUT last_backup_id text, OUT last_status text,
    OUT last_started_at timestamptz, OUT last_finished_at timestamptz,
    OUT last_success_at timestamptz, OUT last_error text,
    OUT next_run_at timestamptz, OUT backups_succeeded bigint,
    OUT backups_failed bigint, OUT tables_backed_up bigint,
    OUT tables_failed bigint, OUT rows_backed_up bigint, OUT raw_bytes bigint,
    OUT compressed_bytes bigint, OUT stats_reset timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'aibackup_stat_databases'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW pg_stat_aibackup AS SELECT * FROM aibackup_stat_databases();

CREATE FUNCTION aibackup_stat_progress(
    OUT pid int, OUT datname name, OUT command text, OUT backup_id text,
    OUT phase text, OUT relid oid, OUT table_name text, OUT tables_total int,
    OUT tables_done int, OUT bytes_raw bigint, OUT bytes_compressed bigint,
    OUT bytes_uploaded bigint, OUT started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'aibackup_stat_progress'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW pg_stat_progress_aibackup AS SELECT * FROM aibackup_stat_progress();

CREATE FUNCTION aibackup_stat_tables(
    OUT schema_name text, OUT table_name text, OUT last_backup_id text,
    OUT last_status text, OUT last_error text, OUT last_ok_backup_id text,
    OUT rows bigint, OUT raw_bytes bigint, OUT compressed_bytes bigint,
    OUT consecutive_failures int)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'aibackup_stat_tables'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW pg_stat_aibackup_tables AS SELECT * FROM aibackup_stat_tables();

-- this cluster writes this database's backups from now on (superuser)
CREATE FUNCTION aibackup_take_over_folder()
RETURNS void
AS 'MODULE_PATHNAME', 'aibackup_take_over_folder'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION aibackup_take_over_folder() FROM PUBLIC;

CREATE FUNCTION aibackup_stat_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'aibackup_stat_reset'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION aibackup_stat_databases() FROM PUBLIC;
REVOKE ALL ON FUNCTION aibackup_stat_progress() FROM PUBLIC;
REVOKE ALL ON FUNCTION aibackup_stat_tables() FROM PUBLIC;
REVOKE ALL ON FUNCTION aibackup_stat_reset() FROM PUBLIC;
REVOKE ALL ON pg_stat_aibackup, pg_stat_progress_aibackup, pg_stat_aibackup_tables FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aibackup_stat_databases() TO pg_read_all_stats;
GRANT EXECUTE ON FUNCTION aibackup_stat_progress() TO pg_read_all_stats;
GRANT EXECUTE ON FUNCTION aibackup_stat_tables() TO pg_read_all_stats;
GRANT SELECT ON pg_stat_aibackup, pg_stat_progress_aibackup, pg_stat_aibackup_tables TO pg_read_all_stats;

CREATE FUNCTION aibackup_read(rowtype anyelement,
                              backup_id text DEFAULT NULL,
                              source_table text DEFAULT NULL)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'aibackup_read'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_read(anyelement, text, text) IS
'the rows of a backed-up table (NULL backup: the newest holding it; NULL source_table: the table of the row type) as rows of the given row type, columns matched by name, without restoring it';
REVOKE ALL ON FUNCTION aibackup_read(anyelement, text, text) FROM PUBLIC;
