# Hardening: what a hostile or unlucky environment must not achieve.
# A role that may restore but not read; a manifest edited by someone with
# write access to the bucket; a table rewritten while a backup waits.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use AibackupTest;
use AibackupData qw(bg_start bg_finish);

my $prefix = "t014-$$";

# true once some session of $db waits for a relation lock (10 s at most)
sub wait_for_lock_wait
{
	my ($node, $db) = @_;
	for (1 .. 100)
	{
		return 1 if $node->safe_psql($db,
			"SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'relation'") > 0;
		sleep 0.1;
	}
	return 0;
}
my $node = new_cluster('hardening', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $db = 'postgres';
my ($ret, $out, $err);

$node->safe_psql($db, q{
	CREATE EXTENSION aibackup;
	CREATE TABLE secret (id int, payload text);
	INSERT INTO secret SELECT g, 'secret ' || g FROM generate_series(1, 100) g;
	CREATE TABLE plain (id int, note text);
	INSERT INTO plain SELECT g, 'n' || g FROM generate_series(1, 100) g;
	CREATE ROLE restorer LOGIN;
	CREATE SCHEMA r AUTHORIZATION restorer;
	GRANT EXECUTE ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean) TO restorer;
	GRANT EXECUTE ON FUNCTION aibackup_list_backups() TO restorer;
});
my $id = $node->safe_psql($db, 'SELECT aibackup_backup_now()');

# --- a vanished source is not a way around SELECT ---
$node->safe_psql($db, 'ALTER TABLE secret RENAME TO secret_2025');
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('public.secret', '$id', 'r.stolen')",
	extra_params => [ '-U', 'restorer' ]);
like($err, qr/permission denied to restore table "public.secret".*\n(.*\n)*.*no longer exists under that name/,
	'a role without SELECT cannot restore a table that was renamed away');
is($node->safe_psql($db, "SELECT count(*) FROM pg_class WHERE relname = 'stolen'"), '0',
	'and no table was created');
$node->safe_psql($db, 'GRANT pg_read_all_data TO restorer');
is($node->safe_psql($db, "SELECT aibackup_restore_table('public.secret', '$id', 'r.allowed')",
	extra_params => [ '-U', 'restorer' ]), '100',
	'a member of pg_read_all_data may restore it');
$node->safe_psql($db, 'REVOKE pg_read_all_data FROM restorer; ALTER TABLE secret_2025 RENAME TO secret');

# --- a manifest edited in the bucket cannot inject SQL ---
my $mkey = "s3://$ENV{S3_BUCKET}/$prefix/$db/$id/manifest.json";
my $mfile = "$ENV{AIBACKUP_TEST_WORK}/t014-manifest.json";
aws_cli('s3', 'cp', '--quiet', $mkey, $mfile);
my $orig = slurp_file($mfile);
(my $evil = $orig) =~ s/"type": "text"/"type": "text); ALTER ROLE restorer SUPERUSER; CREATE TABLE pwned (x text"/;
isnt($evil, $orig, 'the planted manifest differs from the original');
open my $fh, '>', $mfile or die;
print $fh $evil;
close $fh;
aws_cli('s3', 'cp', '--quiet', $mfile, $mkey);
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.plain', '$id', 'public.plain_copy')");
isnt($ret, 0, 'restoring from a manifest with a SQL-injecting type fails');
like($err, qr/syntax error|invalid type name|does not exist/, 'the type is refused as a type: ' . (split /\n/, $err)[0]);
is($node->safe_psql($db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'restorer'"), 'f',
	'the injected statement did not run');
is($node->safe_psql($db, "SELECT count(*) FROM pg_class WHERE relname IN ('pwned', 'plain_copy')"), '0',
	'and created nothing');

# --- a manifest missing required fields is ignored with a warning, not a crash ---
(my $broken = $orig) =~ s/"status": "ok",\s*"error"/"error"/;
isnt($broken, $orig, 'a table entry lost its status');
open $fh, '>', $mfile or die;
print $fh $broken;
close $fh;
aws_cli('s3', 'cp', '--quiet', $mfile, $mkey);
# the listing comes from index.json, which summarized the manifest when it
# was sound; reading the manifest itself says what is wrong
($ret, $out, $err) = $node->psql($db, "SELECT count(*) FROM aibackup_list_tables('$id')");
isnt($ret, 0, 'listing the tables of a backup with a broken manifest fails');
like($err, qr/WARNING:  ignoring manifest .* not valid/, 'it warns about the broken manifest');
like($err, qr/cannot be read/, 'and says the backup cannot be read');
aws_cli('s3', 'rm', '--quiet', "s3://$ENV{S3_BUCKET}/$prefix/$db/index.json");
($ret, $out, $err) = $node->psql($db, 'SELECT count(*) FROM aibackup_list_backups()');
is($ret, 0, 'listing backups from their manifests (no index) with a broken one does not fail');
like($err, qr/WARNING:  ignoring manifest .* not valid/, 'it warns about the broken manifest');
is($out, '0', 'and does not list that backup');
is($node->safe_psql($db, 'SELECT 1'), '1', 'the server is still up');
open $fh, '>', $mfile or die;
print $fh $orig;
close $fh;
aws_cli('s3', 'cp', '--quiet', $mfile, $mkey);

# --- a REPEATABLE READ caller still gets a snapshot taken after the locks ---
my $locker = $node->background_psql($db);
$locker->query_safe('BEGIN; TRUNCATE plain; INSERT INTO plain SELECT g, \'new\' FROM generate_series(1, 7) g;');
my $bg = $node->background_psql($db);
$bg->query_until(qr/started/, q{
	\echo started
	BEGIN ISOLATION LEVEL REPEATABLE READ;
	SELECT count(*) FROM pg_class;
	SELECT aibackup_backup_now(ARRAY['plain']::regclass[]);
	COMMIT;
	\echo done
});
sleep 1.5;
$locker->query_safe('COMMIT');
$locker->quit;
$bg->query_until(qr/done/, '');
$bg->quit;
my $rows = $node->safe_psql($db,
	"SELECT rows FROM aibackup_list_tables() WHERE table_name = 'plain'");
is($rows, '7', 'a table truncated and refilled while the backup waited for its lock is backed up with its new rows');

# --- a table renamed, and one created, while the backup waits for its locks ---
$node->safe_psql($db, 'CREATE TABLE waits (id int); INSERT INTO waits VALUES (1), (2)');
my $ddl = $node->background_psql($db);
$ddl->query_safe(q{BEGIN; LOCK TABLE waits IN ACCESS EXCLUSIVE MODE;
	ALTER TABLE waits RENAME TO waited; CREATE TABLE born_meanwhile (x int);
	INSERT INTO born_meanwhile VALUES (7), (8), (9);});
my $waiter = $node->background_psql($db);
$waiter->query_until(qr/started/, q{
	\echo started
	SELECT aibackup_backup_now();
	\echo done
});
ok(wait_for_lock_wait($node, $db), 'the backup waits for the table being renamed');
$ddl->query_safe('COMMIT');
$ddl->quit;
$waiter->query_until(qr/done/, '');
$waiter->quit;
my %listed = map { my @f = split /\|/; ("$f[0].$f[1]" => $f[2]) } split /\n/,
  $node->safe_psql($db, 'SELECT schema_name, table_name, rows FROM aibackup_list_tables()');
ok(!exists $listed{'public.waits'} && ($listed{'public.waited'} // '') eq '2',
	'the renamed table is backed up under its new name');
is($listed{'public.born_meanwhile'} // 'missing', '3',
	'a table created while the backup waited is in it, with its rows');
$node->safe_psql($db, 'DROP TABLE waited, born_meanwhile');

# --- a table named explicitly, dropped while the backup waits for its lock ---
$node->safe_psql($db, 'CREATE TABLE keep_me (id int); CREATE TABLE drop_me (id int)');
my $before_drop = $node->safe_psql($db, 'SELECT count(*) FROM aibackup_list_backups()');
$ddl = $node->background_psql($db);
$ddl->query_safe('BEGIN; LOCK TABLE drop_me IN ACCESS EXCLUSIVE MODE; DROP TABLE drop_me;');
my $named = bg_start($node, $db,
	"SELECT aibackup_backup_now(ARRAY['keep_me', 'drop_me']::regclass[]);");
ok(wait_for_lock_wait($node, $db), 'the backup of two named tables waits for the one being dropped');
$ddl->query_safe('COMMIT');
$ddl->quit;
my ($nret, $nout, $nerr) = bg_finish($named);
isnt($nret, 0, 'a named table dropped before the backup could lock it fails the backup');
like($nerr, qr/table with OID \d+ does not exist/, 'naming what is gone') or diag($nerr);
is($node->safe_psql($db, 'SELECT count(*) FROM aibackup_list_backups()'), $before_drop,
	'and no backup that silently lacks it is written');
$node->safe_psql($db, 'DROP TABLE keep_me');

# --- a temporary target, named with the pg_temp alias ---
is($node->safe_psql($db, qq{
	SELECT aibackup_restore_table('public.plain', '$id', 'pg_temp.plain_tmp');
	SELECT count(*) FROM pg_temp.plain_tmp;}), "100\n100",
	'a restore into pg_temp.name creates a temporary table with the rows');

# --- a transaction that has written cannot back up its own uncommitted rows ---
my $before = $node->safe_psql($db, 'SELECT count(*) FROM aibackup_list_backups()');
($ret, $out, $err) = $node->psql($db, q{
	BEGIN;
	DELETE FROM plain WHERE id <= 3;
	SELECT aibackup_backup_now();
	ROLLBACK;
});
like($err, qr/cannot back up in a transaction that has written data/,
	'a backup after DELETE in the same transaction is refused');
($ret, $out, $err) = $node->psql($db, q{
	BEGIN;
	SAVEPOINT s;
	INSERT INTO plain VALUES (-1, 'uncommitted');
	RELEASE SAVEPOINT s;
	SELECT aibackup_backup_now();
	ROLLBACK;
});
like($err, qr/cannot back up in a transaction that has written data/,
	'and so is one after a write made in a subtransaction');
is($node->safe_psql($db, 'SELECT count(*) FROM aibackup_list_backups()'), $before,
	'neither left a backup behind');
like($node->safe_psql($db, q{
	BEGIN; SELECT count(*) FROM plain; SELECT aibackup_backup_now(); COMMIT;}),
	qr/\d{8}T\d{6}Z$/, 'a transaction that has only read may back up');

$node->stop;

# --- more tables than the lock table holds: a clear error, as pg_dump gives ---
my $small = new_cluster('locks', prefix => "$prefix-locks", conf => <<'CONF');
aibackup.enabled = off
max_locks_per_transaction = 10
max_connections = 10
CONF
$small->safe_psql('postgres', q{
	CREATE EXTENSION aibackup;
	DO $$
	BEGIN
		FOR i IN 1 .. 3000 LOOP
			EXECUTE format('CREATE TABLE lk%s (a int)', i);
			IF i % 100 = 0 THEN COMMIT; END IF;
		END LOOP;
	END $$;
});
($ret, $out, $err) = $small->psql('postgres', 'SELECT aibackup_backup_now()');
like($err, qr/could not lock table "public\.lk\d+" for backup: the lock table is full after \d+ of 3000 tables/,
	'a backup of more tables than the lock table holds fails, saying so');
like($err, qr/HINT:  Raise max_locks_per_transaction/, 'and says what to raise');
is($small->safe_psql('postgres', 'SELECT count(*) FROM aibackup_list_backups()'), '0',
	'and leaves no backup');
$small->stop;
done_testing();
