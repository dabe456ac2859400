/* aibackup--0.2--0.3.sql: upgrade from 0.2 to 0.3 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION aibackup UPDATE TO '0.3'" to load this file. \quit

-- Two functions are new in 0.3: presigned URLs for a table's objects and
-- for a backup's.

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
