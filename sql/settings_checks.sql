--
-- The check hooks of the aibackup.* settings, through ALTER SYSTEM (the
-- only way a session reaches them: every setting is PGC_SIGHUP).  A refused
-- value writes nothing; an accepted one is reset at once and never
-- reloaded.  Still, it writes postgresql.auto.conf: this test needs a server
-- of its own, configured with test/regress/private.conf
-- (scripts/installcheck.sh).
--
CREATE EXTENSION aibackup;

-- the server's configuration; a set secret shows as ********
SELECT name, setting, source FROM pg_settings
WHERE name LIKE 'aibackup.%' AND source <> 'default' ORDER BY name;
SHOW aibackup.s3_access_key_id;
SHOW aibackup.s3_secret_access_key;
SHOW aibackup.s3_session_token;

-- s3_endpoint
ALTER SYSTEM SET aibackup.s3_endpoint = 'ftp://example.com';
ALTER SYSTEM SET aibackup.s3_endpoint = 'example.com';
ALTER SYSTEM SET aibackup.s3_endpoint = 'https://';
ALTER SYSTEM SET aibackup.s3_endpoint = 'https://example.com/path';
ALTER SYSTEM SET aibackup.s3_endpoint = 'https://user@example.com';
ALTER SYSTEM SET aibackup.s3_endpoint = 'http://127.0.0.1:99999';
ALTER SYSTEM SET aibackup.s3_endpoint = 'http://127.0.0.1:0';
-- s3_region
ALTER SYSTEM SET aibackup.s3_region = '';
ALTER SYSTEM SET aibackup.s3_region = 'eu west';
ALTER SYSTEM SET aibackup.s3_region = 'eu-west-1/';
-- s3_bucket
ALTER SYSTEM SET aibackup.s3_bucket = 'ab';
ALTER SYSTEM SET aibackup.s3_bucket = 'my bucket';
ALTER SYSTEM SET aibackup.s3_bucket = 'my/bucket';
ALTER SYSTEM SET aibackup.s3_bucket = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
-- s3_prefix
ALTER SYSTEM SET aibackup.s3_prefix = 'prod//cluster1';
ALTER SYSTEM SET aibackup.s3_prefix = 'prod\cluster1';
ALTER SYSTEM SET aibackup.s3_prefix = E'prod\tcluster1';
ALTER SYSTEM SET aibackup.s3_prefix = E'pr\u00e4fix';
-- s3_ca_file
ALTER SYSTEM SET aibackup.s3_ca_file = 'ca.pem';
-- s3_uri_style
ALTER SYSTEM SET aibackup.s3_uri_style = 'sideways';
-- compression_level, max_workers, retention_days: ranges
ALTER SYSTEM SET aibackup.compression_level = 10;
ALTER SYSTEM SET aibackup.compression_level = -1;
ALTER SYSTEM SET aibackup.max_workers = 0;
ALTER SYSTEM SET aibackup.max_workers = 65;
ALTER SYSTEM SET aibackup.retention_days = -1;
ALTER SYSTEM SET aibackup.retention_days = 36501;
ALTER SYSTEM SET aibackup.enabled = 'maybe';
-- exclude
ALTER SYSTEM SET aibackup.exclude = 'orders';
ALTER SYSTEM SET aibackup.exclude = 'public.orders, a.b.c';
ALTER SYSTEM SET aibackup.exclude = 'public."orders';
ALTER SYSTEM SET aibackup.exclude = 'public.';
-- databases
ALTER SYSTEM SET aibackup.databases = 'a,,b';
ALTER SYSTEM SET aibackup.databases = '"a';
-- settings with units: the range messages name units differently across
-- PostgreSQL majors, so only the SQLSTATE is shown
\set VERBOSITY sqlstate
ALTER SYSTEM SET aibackup.interval = '9s';
ALTER SYSTEM SET aibackup.interval = '8d';
ALTER SYSTEM SET aibackup.lock_timeout = 0;
ALTER SYSTEM SET aibackup.interval = 'often';
\set VERBOSITY default

-- a refused value wrote nothing
SELECT count(*) FROM pg_file_settings
WHERE name LIKE 'aibackup.%' AND sourcefile LIKE '%postgresql.auto.conf';

-- accepted values, each reset at once
ALTER SYSTEM SET aibackup.s3_endpoint = 'http://127.0.0.1:9000';
ALTER SYSTEM SET aibackup.s3_endpoint = 'https://minio.internal:9000';
ALTER SYSTEM SET aibackup.s3_endpoint = '';
ALTER SYSTEM RESET aibackup.s3_endpoint;
ALTER SYSTEM SET aibackup.s3_region = 'eu-west-1';
ALTER SYSTEM SET aibackup.s3_region = 'auto';
ALTER SYSTEM RESET aibackup.s3_region;
ALTER SYSTEM SET aibackup.s3_bucket = 'my.bucket_1-x';
ALTER SYSTEM SET aibackup.s3_bucket = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
ALTER SYSTEM SET aibackup.s3_bucket = '';
ALTER SYSTEM RESET aibackup.s3_bucket;
ALTER SYSTEM SET aibackup.s3_prefix = 'prod/cluster1';
ALTER SYSTEM SET aibackup.s3_prefix = '';
ALTER SYSTEM RESET aibackup.s3_prefix;
ALTER SYSTEM SET aibackup.s3_ca_file = '/etc/ssl/certs/ca-certificates.crt';
ALTER SYSTEM RESET aibackup.s3_ca_file;
ALTER SYSTEM SET aibackup.s3_uri_style = 'path';
ALTER SYSTEM RESET aibackup.s3_uri_style;
ALTER SYSTEM SET aibackup.exclude = 'public.*, "Mixed Case"."T,1", audit.log';
ALTER SYSTEM SET aibackup.exclude = '';
ALTER SYSTEM RESET aibackup.exclude;
ALTER SYSTEM SET aibackup.databases = 'shop', '"Mixed Case"';
ALTER SYSTEM SET aibackup.databases = '*';
ALTER SYSTEM RESET aibackup.databases;
ALTER SYSTEM SET aibackup.interval = '10s';
ALTER SYSTEM SET aibackup.interval = '7d';
ALTER SYSTEM RESET aibackup.interval;
ALTER SYSTEM SET aibackup.compression_level = 0;
ALTER SYSTEM RESET aibackup.compression_level;

-- nothing was left in postgresql.auto.conf
SELECT count(*) FROM pg_file_settings
WHERE name LIKE 'aibackup.%' AND sourcefile LIKE '%postgresql.auto.conf';

DROP EXTENSION aibackup;
