# An extension's configuration tables (pg_extension_config_dump, like
# cron.job) hold the user's data: they are backed up, whole, while the
# extension's other tables are not.  A restore puts them back in place, and
# refuses to recreate one as a plain table under its own name; restore.sql
# leaves them, their schema and the extension's sequences to CREATE
# EXTENSION.  The extension here is aibackup itself, given a configuration
# table as pg_extension_config_dump() would (that function works only inside
# an extension's script).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;
use AibackupData;

my $prefix = "t043-$$";
my $node = new_cluster('exttables', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $db = 'ext';
my ($ret, $out, $err);

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, <<'SQL');
CREATE EXTENSION aibackup;
CREATE SCHEMA jobs;
CREATE SEQUENCE jobs.jobid_seq;
CREATE TABLE jobs.job (jobid bigint PRIMARY KEY DEFAULT nextval('jobs.jobid_seq'), command text NOT NULL);
CREATE TABLE jobs.internal (x int);
ALTER EXTENSION aibackup ADD SCHEMA jobs;
ALTER EXTENSION aibackup ADD SEQUENCE jobs.jobid_seq;
ALTER EXTENSION aibackup ADD TABLE jobs.job;
ALTER EXTENSION aibackup ADD TABLE jobs.internal;
-- what pg_extension_config_dump('jobs.job', 'WHERE jobid > 1') records
UPDATE pg_extension SET extconfig = ARRAY['jobs.job'::regclass::oid],
       extcondition = ARRAY['WHERE jobid > 1'] WHERE extname = 'aibackup';
INSERT INTO jobs.job (command) VALUES ('the extension''s own row'), ('VACUUM'), ('ANALYZE');
INSERT INTO jobs.internal VALUES (1);
CREATE TABLE plain (id int);
INSERT INTO plain VALUES (1);
SQL

($ret, $out, $err) = backup_now($node, $db);
is($ret, 0, 'a backup') or diag($err);
my $id = $out;
my ($m) = manifest($prefix, $db, $id);
my %t = map { ("$_->{schema}.$_->{name}" => $_) } @{ $m->{tables} // [] };
ok($t{'jobs.job'}, 'the configuration table is in the backup');
ok(!$t{'jobs.internal'}, 'the extension\'s other table is not');
is($t{'jobs.job'}{extension}, 'aibackup', 'the manifest names its extension');
is($t{'jobs.job'}{rows}, 3, 'all its rows, not only those of the extension\'s filter');
ok(!exists $t{'public.plain'}{extension}, 'an ordinary table names none');
my ($seq) = grep { $_->{name} eq 'jobid_seq' } @{ $m->{sequences} // [] };
is($seq && $seq->{extension}, 'aibackup', 'and the extension\'s sequence is marked too');

# --- in place ---
$node->safe_psql($db, "DELETE FROM jobs.job WHERE jobid = 2; UPDATE jobs.job SET command = 'oops'; "
	  . "ALTER SEQUENCE jobs.jobid_seq RESTART WITH 1");
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('jobs.job')");
is($ret, 0, 'restored in place') or diag($err);
is($node->safe_psql($db, 'SELECT string_agg(command, \',\' ORDER BY jobid) FROM jobs.job'),
	"the extension's own row,VACUUM,ANALYZE", 'with every row as it was');
is($node->safe_psql($db, "SELECT count(*) FROM pg_depend WHERE objid = 'jobs.job'::regclass AND deptype = 'e'"),
	1, 'and still the extension\'s table');
($ret, $out, $err) = $node->psql($db, "INSERT INTO jobs.job (command) VALUES ('new') RETURNING jobid");
is($out, 4, 'the sequence its default uses (not owned by it) is past the restored rows') or diag($err);
$node->safe_psql($db, "DELETE FROM jobs.job WHERE jobid = 4");

# --- gone: not recreated as a plain table under its own name ---
$node->safe_psql($db, 'ALTER EXTENSION aibackup DROP TABLE jobs.job; DROP TABLE jobs.job');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('jobs.job')");
like($err, qr/cannot recreate table "jobs\.job" of extension "aibackup"/,
	'a missing configuration table is not recreated under its own name');
like($err, qr/HINT:  Create or update the extension first/, 'the hint says what to do');
is($node->safe_psql($db, "SELECT to_regclass('jobs.job') IS NULL"), 't', 'and nothing was created');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('jobs.job', NULL, 'public.job_copy')");
is($ret, 0, 'under another name it is restored') or diag($err);
is($node->safe_psql($db, 'SELECT count(*) FROM public.job_copy'), 3, 'with its rows');

# --- restore.sql leaves it to CREATE EXTENSION ---
my $rs = "$ENV{AIBACKUP_TEST_WORK}/t043-restore.sql";
is(s3_get("$prefix/$db/$id/restore.sql", $rs), 0, 'restore.sql');
my $script = -f $rs ? slurp_file($rs) : '';
like($script, qr/^-- jobs\.job belongs to extension aibackup: after CREATE EXTENSION/m,
	'says what to do with the configuration table');
unlike($script, qr/CREATE TABLE jobs\.job|\\copy jobs\.job|CREATE SCHEMA IF NOT EXISTS jobs|CREATE SEQUENCE[^\n]*jobid_seq/,
	'and creates neither it, nor its schema, nor the extension\'s sequence');
like($script, qr/^-- and after CREATE EXTENSION: SELECT pg_catalog\.setval\('jobs\.jobid_seq', 3, true\);$/m,
	'but says how to set that sequence');
like($script, qr/^\\copy public\.plain /m, 'the ordinary table is in it');
is(s3_get("$prefix/$db/$id/restore/jobs.sql", "$rs.jobs"), 0,
	'the schema with only the extension\'s table has a script too (presign_backup signs it)');

$node->stop;
done_testing();
