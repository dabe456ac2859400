/* aibackup--0.3--0.4.sql: upgrade from 0.3 to 0.4 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION aibackup UPDATE TO '0.4'" to load this file. \quit

-- aibackup_read() is new: a backed-up table's rows in SQL.
-- Incremental backups: aibackup_backup_now() gains "full" (a new
-- signature is a new function) and aibackup_list_tables() the column
-- copied_from (a new result type needs a new function).  Each old function
-- is dropped and the new one created, with the privileges the old one was
-- granted.

DO $$
DECLARE
    r record;
    old oid;
    new oid;
    kept text[];
    fresh pg_catalog.aclitem[];
    deps text;
    stmt text;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('aibackup_backup_now(regclass[])',
         'aibackup_backup_now(regclass[], boolean)',
         $c$CREATE FUNCTION aibackup_backup_now(tables regclass[] DEFAULT NULL,
                                     full boolean DEFAULT false)
            RETURNS text
            AS 'MODULE_PATHNAME', 'aibackup_backup_now'
            LANGUAGE C VOLATILE$c$,
         'back up the current database (or only the given tables) to S3 now, copying the tables proven unchanged since the previous backup unless full; returns the backup id'),
        ('aibackup_list_tables(text)',
         'aibackup_list_tables(text)',
         $c$CREATE FUNCTION aibackup_list_tables(backup_id text DEFAULT NULL)
            RETURNS TABLE(backup_id text, schema_name text, table_name text, rows bigint,
                          raw_bytes bigint, compressed_bytes bigint, object_key text,
                          sha256 text, copied_from text)
            AS 'MODULE_PATHNAME', 'aibackup_list_tables'
            LANGUAGE C VOLATILE$c$,
         'tables of one backup (NULL: the newest), and the backup each unchanged one was copied from')
    ) AS v(old_sig, new_sig, create_sql, comment_text)
    LOOP
        old := r.old_sig::pg_catalog.regprocedure;

        -- a view or function calling the old one would go with it: say so
        SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(classid, objid, objsubid), ', ')
          INTO deps
          FROM pg_catalog.pg_depend
         WHERE refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND refobjid = old
           AND deptype = 'n';
        IF deps IS NOT NULL THEN
            RAISE EXCEPTION '% cannot be replaced: % depends on it', r.old_sig, deps
                USING HINT = 'Drop it, update the extension, then create it again calling the new function.';
        END IF;

        SELECT coalesce(pg_catalog.array_agg(pg_catalog.format(
                            'GRANT EXECUTE ON FUNCTION %s TO %s%s', r.new_sig,
                            CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                 ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
                            CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)),
                        '{}')
          INTO kept
          FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
         WHERE p.oid = old AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner;

        EXECUTE pg_catalog.format('DROP FUNCTION %s', r.old_sig);
        EXECUTE r.create_sql;
        EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', r.new_sig, r.comment_text);
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', r.new_sig);

        new := r.new_sig::pg_catalog.regprocedure;
        SELECT proacl INTO fresh FROM pg_catalog.pg_proc WHERE oid = new;
        FOREACH stmt IN ARRAY kept LOOP
            EXECUTE stmt;
        END LOOP;

        -- Those grants are the DBA's, as they were, not the extension's: its
        -- initial privileges (what pg_dump leaves out) stay a fresh install's.
        UPDATE pg_catalog.pg_init_privs SET initprivs = fresh
         WHERE objoid = new AND classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND objsubid = 0;
        -- (17+ records the roles of initial privileges as dependencies)
        DELETE FROM pg_catalog.pg_shdepend
         WHERE dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
           AND classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND objid = new
           AND deptype = 'i';
    END LOOP;
END
$$;

CREATE FUNCTION aibackup_read(rowtype anyelement,
                              backup_id text DEFAULT NULL,
                              source_table text DEFAULT NULL)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'aibackup_read'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_read(anyelement, text, text) IS
'the rows of a backed-up table (NULL backup: the newest holding it; NULL source_table: the table of the row type) as rows of the given row type, columns matched by name, without restoring it';
REVOKE ALL ON FUNCTION aibackup_read(anyelement, text, text) FROM PUBLIC;
