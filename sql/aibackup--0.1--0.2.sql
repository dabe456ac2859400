/* aibackup--0.1--0.2.sql: upgrade from 0.1 to 0.2 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION aibackup UPDATE TO '0.2'" to load this file. \quit

-- Two functions are new in 0.2.  Some 0.1 installations were made from a
-- later 0.1 script that already had them: CREATE OR REPLACE works for both,
-- and the comments and privileges below end up as in a fresh 0.2.

CREATE OR REPLACE FUNCTION aibackup_table_ddl(source_table text, backup_id text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'aibackup_table_ddl'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_table_ddl(text, text) IS
'the definition of a table as its backup recorded it (NULL backup: the newest holding it), as a SQL script';
REVOKE ALL ON FUNCTION aibackup_table_ddl(text, text) FROM PUBLIC;

-- this cluster writes this database's backups from now on (superuser)
CREATE OR REPLACE FUNCTION aibackup_take_over_folder()
RETURNS void
AS 'MODULE_PATHNAME', 'aibackup_take_over_folder'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION aibackup_take_over_folder() FROM PUBLIC;
