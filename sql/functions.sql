--
-- Argument checking and privileges of the SQL functions, on a server with
-- the aibackup.* settings at their defaults (no bucket): nothing here
-- reaches S3.  A call that passes every check stops at the missing bucket.
--
CREATE EXTENSION aibackup;
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_aibackup_user;
DROP ROLE IF EXISTS regress_aibackup_stats;
RESET client_min_messages;
CREATE ROLE regress_aibackup_user;
CREATE ROLE regress_aibackup_stats IN ROLE pg_read_all_stats;
CREATE TABLE ab_t (id int);

--
-- aibackup_presign_url
--
-- strict: any NULL gives NULL
SELECT aibackup_presign_url(NULL) IS NULL AS key_null,
       aibackup_presign_url('k', NULL) IS NULL AS expires_null,
       aibackup_presign_url('k', '1 hour', NULL) IS NULL AS signed_at_null;
SELECT aibackup_presign_url('');
SELECT aibackup_presign_url('k', '1 hour', 'infinity');
SELECT aibackup_presign_url('k', '1 hour', '-infinity');
SELECT aibackup_presign_url('k', '0');
SELECT aibackup_presign_url('k', '0.5 seconds');
SELECT aibackup_presign_url('k', '-1 hour');
SELECT aibackup_presign_url('k', '7 days 1 second');
SELECT aibackup_presign_url('k', '1 mon');
-- the limits themselves are accepted: the bucket is what is missing
SELECT aibackup_presign_url('k', '1 second');
SELECT aibackup_presign_url('k', '7 days');
SELECT aibackup_presign_url('k');

--
-- aibackup_backup_now
--
SELECT aibackup_backup_now(ARRAY[]::regclass[]);
SELECT aibackup_backup_now(ARRAY[NULL]::regclass[]);
SELECT aibackup_backup_now(ARRAY['ab_t', NULL]::regclass[]);
SELECT aibackup_backup_now(ARRAY['ab_no_such_table']::regclass[]);
-- not in a transaction that has written
BEGIN;
INSERT INTO ab_t VALUES (1);
SELECT aibackup_backup_now();
ROLLBACK;
SELECT aibackup_backup_now(ARRAY['ab_t']::regclass[]);
SELECT aibackup_backup_now();

--
-- aibackup_list_backups, aibackup_list_tables
--
SELECT * FROM aibackup_list_backups();
SELECT * FROM aibackup_list_tables();
SELECT * FROM aibackup_list_tables('20261124T040000Z');
SELECT * FROM aibackup_list_tables('not a backup id');

--
-- aibackup_restore_table
--
SELECT aibackup_restore_table(NULL);
SELECT aibackup_restore_table(NULL, '20261124T040000Z', 'ab_t2');
SELECT aibackup_restore_table('');
SELECT aibackup_restore_table('a.b.c');
SELECT aibackup_restore_table('"unterminated');
SELECT aibackup_restore_table('ab_t.');
SELECT aibackup_restore_table('ab_t', NULL, '');
SELECT aibackup_restore_table('ab_t', NULL, 'x.y.z');
-- the source name is checked before the target's
SELECT aibackup_restore_table('a.b.c', NULL, 'x.y.z');
BEGIN READ ONLY;
SELECT aibackup_restore_table('ab_t');
ROLLBACK;
SELECT aibackup_restore_table('ab_t');
SELECT aibackup_restore_table('public.ab_t', '20261124T040000Z', 'public.ab_t2');
SELECT aibackup_restore_table('ab_t', 'not a backup id');
SELECT aibackup_restore_table('ab_t', NULL, NULL, NULL);
SELECT aibackup_restore_table('ab_t', grants => NULL);
SELECT aibackup_restore_table('ab_t', owner => NULL);

--
-- aibackup_table_ddl
--
SELECT aibackup_table_ddl(NULL);
SELECT aibackup_table_ddl(NULL, '20261124T040000Z');
SELECT aibackup_table_ddl('');
SELECT aibackup_table_ddl('a.b.c');
SELECT aibackup_table_ddl('ab_t');
SELECT aibackup_table_ddl('ab_t', 'not a backup id');

--
-- aibackup_read: bad input before S3
--
SELECT * FROM aibackup_read(NULL::int);
SELECT * FROM aibackup_read(NULL::text, '20261124T040000Z', 'ab_t');
CREATE TYPE ab_pair AS (a int, b text);
SELECT * FROM aibackup_read(NULL::ab_pair);
SELECT * FROM aibackup_read(NULL::ab_t, 'not a backup id');
SELECT * FROM aibackup_read(NULL::ab_t, NULL, 'a.b.c');
SELECT * FROM aibackup_read(NULL::ab_pair, NULL, '');
DROP TYPE ab_pair;

--
-- aibackup_presign_table, aibackup_presign_backup: bad input before S3
--
SELECT * FROM aibackup_presign_table(NULL);
SELECT * FROM aibackup_presign_table('ab_t', NULL, NULL);
SELECT * FROM aibackup_presign_table('ab_t', NULL, '0');
SELECT * FROM aibackup_presign_table('ab_t', NULL, '8 days');
SELECT * FROM aibackup_presign_table('a.b.c');
SELECT * FROM aibackup_presign_table('ab_t', 'not a backup id');
SELECT * FROM aibackup_presign_backup(NULL, NULL);
SELECT * FROM aibackup_presign_backup(NULL, '-1 hour');
SELECT * FROM aibackup_presign_backup(NULL, '1 day', '{}');
SELECT * FROM aibackup_presign_backup(NULL, '1 day', '{public,NULL}');
SELECT * FROM aibackup_presign_backup('not a backup id');

--
-- aibackup_restore_large_objects: bad input before S3
--
SELECT aibackup_restore_large_objects('not a backup id');
SELECT aibackup_restore_large_objects(NULL, '{1,NULL}');
SELECT aibackup_restore_large_objects(NULL, '{}');

--
-- aibackup_take_over_folder
--
SELECT aibackup_take_over_folder();

--
-- statistics: without shared_preload_libraries there is nothing to show
--
SELECT count(*) FROM pg_stat_aibackup;
SELECT count(*) FROM pg_stat_progress_aibackup;
SELECT count(*) FROM pg_stat_aibackup_tables;
SELECT aibackup_stat_reset();

--
-- a role that was granted nothing
--
SET ROLE regress_aibackup_user;
SELECT aibackup_presign_url('k');
SELECT aibackup_backup_now();
SELECT * FROM aibackup_list_backups();
SELECT * FROM aibackup_list_tables();
SELECT aibackup_restore_table('ab_t');
SELECT aibackup_table_ddl('ab_t');
SELECT * FROM aibackup_presign_table('ab_t');
SELECT * FROM aibackup_presign_backup();
SELECT aibackup_restore_large_objects();
SELECT * FROM aibackup_read(NULL::ab_t);
SELECT aibackup_take_over_folder();
SELECT aibackup_stat_reset();
SELECT * FROM aibackup_stat_databases();
SELECT * FROM pg_stat_aibackup;
SELECT * FROM pg_stat_progress_aibackup;
SELECT * FROM pg_stat_aibackup_tables;
RESET ROLE;

--
-- a role granted the functions
--
GRANT EXECUTE ON FUNCTION aibackup_presign_url(text, interval, timestamptz),
                          aibackup_take_over_folder()
  TO regress_aibackup_user;
SET ROLE regress_aibackup_user;
-- only keys of this database's folder
SELECT aibackup_presign_url('k');
SELECT aibackup_presign_url('other_db/20261124T040000Z/public.t.csv.gz');
SELECT aibackup_presign_url(current_database() || '/../other_db/x');
SELECT aibackup_presign_url(current_database() || '/./x');
SELECT aibackup_presign_url(current_database() || '//x');
SELECT aibackup_presign_url(current_database() || '/20261124T040000Z/public.t.csv.gz');
-- granted or not, only a superuser takes a folder over
SELECT aibackup_take_over_folder();
RESET ROLE;

--
-- pg_read_all_stats reads the statistics (empty here), nothing else
--
SET ROLE regress_aibackup_stats;
SELECT count(*) FROM pg_stat_aibackup;
SELECT count(*) FROM pg_stat_progress_aibackup;
SELECT count(*) FROM pg_stat_aibackup_tables;
SELECT aibackup_stat_reset();
SELECT aibackup_presign_url('k');
RESET ROLE;

DROP TABLE ab_t;
DROP EXTENSION aibackup;
DROP ROLE regress_aibackup_user;
DROP ROLE regress_aibackup_stats;
