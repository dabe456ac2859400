--
-- Upgrades: 0.1 and 0.2 updated must be exactly a fresh install of the
-- default version, whether the 0.1 was the released script or a later 0.1
-- that already had the functions added in 0.2 (aibackup_table_ddl,
-- aibackup_take_over_folder).
--
SELECT source, target, path FROM pg_extension_update_paths('aibackup')
ORDER BY source, target;

-- Everything about the extension's members that the catalogs say, as text.
-- A temporary view over the catalogs alone: it depends on no member, so
-- snapshots of it survive DROP EXTENSION.
CREATE TEMP VIEW ext_shape AS
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
       concat_ws(' | ',
                 'args: ' || pg_get_function_arguments(p.oid),
                 'result: ' || pg_get_function_result(p.oid),
                 'src: ' || p.prosrc, 'bin: ' || p.probin,
                 'kind: ' || p.prokind::text,
                 'volatile: ' || p.provolatile::text,
                 'strict: ' || p.proisstrict, 'secdef: ' || p.prosecdef,
                 'leakproof: ' || p.proleakproof,
                 'parallel: ' || p.proparallel::text, 'cost: ' || p.procost,
                 'rows: ' || p.prorows,
                 'relkind: ' || c.relkind::text,
                 'view: ' || pg_get_viewdef(c.oid),
                 'acl: ' || coalesce(p.proacl, c.relacl)::text,
                 'owner is the extension''s: ' ||
                     (coalesce(p.proowner, c.relowner) = e.extowner),
                 'comment: ' || obj_description(d.objid, d.classid::regclass::name))
           AS description
FROM pg_extension e
     JOIN pg_depend d ON d.refclassid = 'pg_extension'::regclass
                     AND d.refobjid = e.oid AND d.deptype = 'e'
     LEFT JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
     LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
WHERE e.extname = 'aibackup'
  -- the views' row types, members in PostgreSQL 18 and not in 15
  AND NOT EXISTS (SELECT FROM pg_type t LEFT JOIN pg_type te ON te.oid = t.typelem
                  WHERE d.classid = 'pg_type'::regclass AND t.oid = d.objid
                    AND (t.typrelid <> 0 OR te.typrelid <> 0));

-- 1. the released 0.1, updated
CREATE EXTENSION aibackup VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'aibackup';
SELECT count(*) AS members FROM ext_shape;
ALTER EXTENSION aibackup UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'aibackup';
CREATE TEMP TABLE shape_from_01 AS SELECT * FROM ext_shape;
DROP EXTENSION aibackup;

-- 2. a later 0.1, which had both functions already: made here by adding
-- them as that script created them
CREATE EXTENSION aibackup VERSION '0.1';
CREATE FUNCTION aibackup_table_ddl(source_table text, backup_id text DEFAULT NULL)
RETURNS text
AS '$libdir/aibackup', 'aibackup_table_ddl'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION aibackup_table_ddl(text, text) IS
'the definition of a table as its backup recorded it (NULL backup: the newest holding it), as a SQL script';
REVOKE ALL ON FUNCTION aibackup_table_ddl(text, text) FROM PUBLIC;
CREATE FUNCTION aibackup_take_over_folder()
RETURNS void
AS '$libdir/aibackup', 'aibackup_take_over_folder'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION aibackup_take_over_folder() FROM PUBLIC;
ALTER EXTENSION aibackup ADD FUNCTION aibackup_table_ddl(text, text);
ALTER EXTENSION aibackup ADD FUNCTION aibackup_take_over_folder();
SELECT count(*) AS members FROM ext_shape;
ALTER EXTENSION aibackup UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'aibackup';
CREATE TEMP TABLE shape_from_later_01 AS SELECT * FROM ext_shape;
DROP EXTENSION aibackup;

-- 2b. 0.2, updated: aibackup_restore_table() changes its signature, and
-- keeps what it was granted
CREATE ROLE regress_aibackup_upgrade;
CREATE EXTENSION aibackup VERSION '0.2';
SELECT count(*) AS members FROM ext_shape;
GRANT EXECUTE ON FUNCTION aibackup_restore_table(text, text, text) TO regress_aibackup_upgrade;
ALTER EXTENSION aibackup UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'aibackup';
SELECT has_function_privilege('regress_aibackup_upgrade',
         'aibackup_restore_table(text, text, text, boolean, boolean, boolean)', 'EXECUTE') AS kept,
       has_function_privilege('public',
         'aibackup_restore_table(text, text, text, boolean, boolean, boolean)', 'EXECUTE') AS public,
       (SELECT array_length(initprivs, 1) FROM pg_init_privs
         WHERE objoid = 'aibackup_restore_table(text, text, text, boolean, boolean, boolean)'::regprocedure)
         AS initial_privileges_of_owner_only;
-- a view on the old function stops the update, saying why
DROP EXTENSION aibackup;
CREATE EXTENSION aibackup VERSION '0.2';
CREATE VIEW regress_uses_restore AS SELECT aibackup_restore_table('x') AS n;
\set SHOW_CONTEXT never
ALTER EXTENSION aibackup UPDATE;
\set SHOW_CONTEXT errors
SELECT extversion FROM pg_extension WHERE extname = 'aibackup';
DROP VIEW regress_uses_restore;
ALTER EXTENSION aibackup UPDATE;
GRANT EXECUTE ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean)
  TO regress_aibackup_upgrade;
REVOKE EXECUTE ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean)
  FROM regress_aibackup_upgrade;
CREATE TEMP TABLE shape_from_02 AS SELECT * FROM ext_shape;
DROP EXTENSION aibackup;

-- 2c. 0.3, updated: aibackup_backup_now() gains "full" and
-- aibackup_list_tables() a column; both keep what they were granted
CREATE EXTENSION aibackup VERSION '0.3';
GRANT EXECUTE ON FUNCTION aibackup_backup_now(regclass[]) TO regress_aibackup_upgrade;
GRANT EXECUTE ON FUNCTION aibackup_list_tables(text) TO regress_aibackup_upgrade WITH GRANT OPTION;
ALTER EXTENSION aibackup UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'aibackup';
SELECT has_function_privilege('regress_aibackup_upgrade',
         'aibackup_backup_now(regclass[], boolean)', 'EXECUTE') AS backup_now_kept,
       has_function_privilege('regress_aibackup_upgrade',
         'aibackup_list_tables(text)', 'EXECUTE WITH GRANT OPTION') AS list_tables_kept,
       has_function_privilege('public',
         'aibackup_backup_now(regclass[], boolean)', 'EXECUTE') AS public,
       (SELECT pg_get_function_result('aibackup_list_tables(text)'::regprocedure)) LIKE '%copied_from text)' AS new_column;
REVOKE EXECUTE ON FUNCTION aibackup_backup_now(regclass[], boolean) FROM regress_aibackup_upgrade;
REVOKE EXECUTE ON FUNCTION aibackup_list_tables(text) FROM regress_aibackup_upgrade CASCADE;
CREATE TEMP TABLE shape_from_03 AS SELECT * FROM ext_shape;
DROP EXTENSION aibackup;
DROP ROLE regress_aibackup_upgrade;

-- 3. a fresh install of the default version
CREATE EXTENSION aibackup;
SELECT extversion FROM pg_extension WHERE extname = 'aibackup';
CREATE TEMP TABLE shape_fresh AS SELECT * FROM ext_shape;
DROP EXTENSION aibackup;

-- the snapshots are not empty, and no member was lost with its extension
SELECT (SELECT count(*) FROM shape_fresh) AS fresh,
       (SELECT count(*) FROM shape_from_01) AS from_01,
       (SELECT count(*) FROM shape_from_later_01) AS from_later_01,
       (SELECT count(*) FROM shape_from_02) AS from_02,
       (SELECT count(*) FROM shape_from_03) AS from_03;
SELECT count(*) AS left_behind FROM pg_proc WHERE proname LIKE 'aibackup%';

-- the symmetric differences: no rows
(SELECT 'only updated from 0.1' AS side, * FROM shape_from_01
 EXCEPT SELECT 'only updated from 0.1', * FROM shape_fresh)
UNION ALL
(SELECT 'only fresh', * FROM shape_fresh
 EXCEPT SELECT 'only fresh', * FROM shape_from_01)
ORDER BY 2, 1;

(SELECT 'only updated from later 0.1' AS side, * FROM shape_from_later_01
 EXCEPT SELECT 'only updated from later 0.1', * FROM shape_fresh)
UNION ALL
(SELECT 'only fresh', * FROM shape_fresh
 EXCEPT SELECT 'only fresh', * FROM shape_from_later_01)
ORDER BY 2, 1;

(SELECT 'only updated from 0.2' AS side, * FROM shape_from_02
 EXCEPT SELECT 'only updated from 0.2', * FROM shape_fresh)
UNION ALL
(SELECT 'only fresh', * FROM shape_fresh
 EXCEPT SELECT 'only fresh', * FROM shape_from_02)
ORDER BY 2, 1;

(SELECT 'only updated from 0.3' AS side, * FROM shape_from_03
 EXCEPT SELECT 'only updated from 0.3', * FROM shape_fresh)
UNION ALL
(SELECT 'only fresh', * FROM shape_fresh
 EXCEPT SELECT 'only fresh', * FROM shape_from_03)
ORDER BY 2, 1;
