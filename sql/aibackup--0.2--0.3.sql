/* aibackup--0.2--0.3.sql: upgrade from 0.2 to 0.3 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION aibackup UPDATE TO '0.3'" to load this file. \quit

-- Three functions are new in 0.3: presigned URLs for a table's objects and
-- for a backup's, and the restore of large objects.  aibackup_restore_table() gains three options; a new
-- signature is a new function, so the old one is dropped, and the
-- privileges it was granted are granted on the new one.

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

DO $$
DECLARE
    old oid := 'aibackup_restore_table(text, text, text)'::pg_catalog.regprocedure;
    new oid;
    kept text[];
    fresh pg_catalog.aclitem[];
    deps text;
    stmt text;
BEGIN
    -- a view or function calling the old one would go with it: say so
    SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(classid, objid, objsubid), ', ')
      INTO deps
      FROM pg_catalog.pg_depend
     WHERE refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND refobjid = old
       AND deptype = 'n';
    IF deps IS NOT NULL THEN
        RAISE EXCEPTION 'aibackup_restore_table(text, text, text) cannot be replaced: % depends on it', deps
            USING HINT = 'Drop it, update the extension, then create it again calling the new aibackup_restore_table().';
    END IF;

    SELECT coalesce(pg_catalog.array_agg(pg_catalog.format(
                        'GRANT EXECUTE ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean) TO %s%s',
                        CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                             ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
                        CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)),
                    '{}')
      INTO kept
      FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = old AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner;

    DROP FUNCTION aibackup_restore_table(text, text, text);
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


    new := 'aibackup_restore_table(text, text, text, boolean, boolean, boolean)'::pg_catalog.regprocedure;
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
END
$$;
