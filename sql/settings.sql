--
-- The aibackup.* settings as a plain backend sees them once CREATE
-- EXTENSION has loaded the library (no shared_preload_libraries), on a
-- server where they are at their defaults.  Nothing here changes the
-- server: the check hooks are exercised by settings_checks, which needs a
-- server of its own (scripts/installcheck.sh).
--
CREATE EXTENSION aibackup;
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_aibackup_user;
RESET client_min_messages;
CREATE ROLE regress_aibackup_user;

-- all of them, as pg_settings shows them to a superuser (secrets excluded:
-- they are not in pg_settings at all, below)
SELECT name, setting, boot_val, unit, context, vartype, min_val, max_val,
       enumvals
FROM pg_settings WHERE name LIKE 'aibackup.%' ORDER BY name;

-- every setting the library defines, flags included; aibackup.max_databases
-- exists only under shared_preload_libraries
SELECT s.name, pg_settings_get_flags(s.name) AS flags
FROM unnest(ARRAY['aibackup.compression_level', 'aibackup.databases',
                  'aibackup.enabled', 'aibackup.exclude',
                  'aibackup.interval', 'aibackup.lock_timeout',
                  'aibackup.max_databases', 'aibackup.max_workers',
                  'aibackup.retention_days', 'aibackup.s3_access_key_id',
                  'aibackup.s3_bucket', 'aibackup.s3_ca_file',
                  'aibackup.s3_endpoint', 'aibackup.s3_prefix',
                  'aibackup.s3_region', 'aibackup.s3_secret_access_key',
                  'aibackup.s3_session_token', 'aibackup.s3_uri_style',
                  'aibackup.s3_verify_tls']) AS s(name)
ORDER BY 1;
SHOW aibackup.max_databases;

-- the prefix is reserved: a misspelt name is an error, not a placeholder
SET aibackup.no_such_setting = 1;

-- all are server-wide (postgresql.conf and reload): no session may change one
SET aibackup.s3_bucket = 'mybucket';
SET aibackup.compression_level = 1;
SELECT set_config('aibackup.s3_region', 'eu-west-1', false);
SET aibackup.s3_secret_access_key = 'x';
SHOW aibackup.s3_bucket;

-- secrets: a superuser sees an unset one as empty (a set one as ********)
SHOW aibackup.s3_access_key_id;
SHOW aibackup.s3_secret_access_key;
SHOW aibackup.s3_session_token;

-- ... and they are hidden from SHOW ALL and pg_settings
SELECT count(*) FROM pg_settings
WHERE name IN ('aibackup.s3_access_key_id', 'aibackup.s3_secret_access_key',
               'aibackup.s3_session_token');

-- a role without pg_read_all_settings may not read them at all
SET ROLE regress_aibackup_user;
DO $$
DECLARE
  n text;
BEGIN
  FOREACH n IN ARRAY ARRAY['aibackup.s3_access_key_id',
                           'aibackup.s3_secret_access_key',
                           'aibackup.s3_session_token']
  LOOP
    BEGIN
      PERFORM current_setting(n);
      RAISE NOTICE '% is readable', n;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE '% is refused (%)', n, SQLSTATE;
    END;
  END LOOP;
END
$$;
-- the other settings it may read
SELECT count(*) FROM pg_settings WHERE name LIKE 'aibackup.%';
SHOW aibackup.s3_bucket;
RESET ROLE;

DROP EXTENSION aibackup;
DROP ROLE regress_aibackup_user;
