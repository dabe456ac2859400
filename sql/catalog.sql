--
-- The SQL interface of aibackup as the catalogs record it: every member of
-- the extension, each function's signature, result, volatility, strictness,
-- security and privileges, the views' columns and privileges, comments.
-- No OIDs, no role names but predefined ones, nothing that differs between
-- PostgreSQL majors (no \df+, no pg_get_viewdef).
--
CREATE EXTENSION aibackup;
SELECT extversion, extrelocatable FROM pg_extension WHERE extname = 'aibackup';

-- who besides the owner holds which privilege, without OIDs or the
-- installing role's name (the owner's own privileges differ between majors:
-- 17 added MAINTAIN); "default" when the ACL was never set
CREATE FUNCTION pg_temp.grants(acl aclitem[], owner oid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN acl IS NULL THEN 'default' ELSE
    coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                     ELSE pg_get_userbyid(a.grantee) END
                                || ':' || a.privilege_type, ', '
                                ORDER BY 1)
              FROM aclexplode(acl) a WHERE a.grantee <> owner),
             'owner only') END
$$;

-- every member of the extension (but the views' row types and their array
-- types, which PostgreSQL 18 records as members too and 15 does not)
SELECT pg_describe_object(classid, objid, objsubid) AS member
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aibackup')
  AND deptype = 'e'
  AND NOT EXISTS (SELECT FROM pg_type t LEFT JOIN pg_type e ON e.oid = t.typelem
                  WHERE classid = 'pg_type'::regclass AND t.oid = objid
                    AND (t.typrelid <> 0 OR e.typrelid <> 0))
ORDER BY 1;

-- functions: signature (with defaults), result, C symbol, properties
\x on
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aibackup')
ORDER BY p.proname;
\x off

SELECT p.proname, l.lanname, p.prosrc, p.probin, p.prokind, p.provolatile,
       p.proisstrict, p.prosecdef, p.proleakproof, p.proparallel, p.proretset
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
     JOIN pg_language l ON l.oid = p.prolang
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aibackup')
ORDER BY p.proname;

-- privileges: superuser only unless granted; statistics to pg_read_all_stats
SELECT p.proname, pg_temp.grants(p.proacl, p.proowner) AS granted,
       obj_description(p.oid, 'pg_proc') AS comment
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aibackup')
ORDER BY p.proname;

-- views: columns, privileges, and the function each one reads
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aibackup')
ORDER BY c.relname, a.attnum;

SELECT c.relname, c.relkind, pg_temp.grants(c.relacl, c.relowner) AS granted,
       (SELECT string_agg(DISTINCT p.proname, ', ')
        FROM pg_rewrite r
             JOIN pg_depend rd ON rd.classid = 'pg_rewrite'::regclass AND rd.objid = r.oid
             JOIN pg_proc p ON rd.refclassid = 'pg_proc'::regclass AND rd.refobjid = p.oid
        WHERE r.ev_class = c.oid) AS reads
FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'aibackup')
ORDER BY c.relname;

-- nothing is left behind
DROP EXTENSION aibackup;
SELECT count(*) FROM pg_proc WHERE proname LIKE 'aibackup%';
SELECT count(*) FROM pg_class WHERE relname LIKE 'pg_stat%aibackup%';
