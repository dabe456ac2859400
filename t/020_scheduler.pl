# The scheduler: clock-aligned runs of every configured database without any
# SQL call, reloadable settings, catch-up, shutdown and crash behaviour,
# retention.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use AibackupTest;
use JSON::PP;

my $prefix = "sched$$";

sub count_backups
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, 'SELECT count(*) FROM aibackup_list_backups()');
}

# wait until $cond->() is true or $secs pass; returns the truth
sub wait_for
{
	my ($secs, $cond) = @_;
	my $end = time + $secs;
	while (time < $end)
	{
		return 1 if $cond->();
		sleep 0.5;
	}
	return $cond->();
}

sub uploads_in_progress
{
	my ($ret, $out) = aws_cli('s3api', 'list-multipart-uploads', '--bucket',
		$ENV{S3_BUCKET}, '--prefix', "$prefix/", '--output', 'text',
		'--query', 'length(Uploads || `[]`)');
	chomp $out;
	return $out eq '' || $out eq 'None' ? 0 : $out + 0;
}

my $node = new_cluster('sched', prefix => $prefix, conf => <<'CONF');
aibackup.interval = '10s'
aibackup.databases = 'db1, db2'
aibackup.max_workers = 2
restart_after_crash = on
CONF
for my $db (qw(db1 db2 db3))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION aibackup; CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)");
}

# --- the launcher is there, under its own name ---
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup launcher'"), '1',
	'pg_stat_activity shows the aibackup launcher');

# --- runs without any SQL call ---
my $t0 = time;
ok(wait_for(45, sub { count_backups($node, 'db1') >= 2 && count_backups($node, 'db2') >= 2 }),
	'two databases get at least two backups each within 45 s, with no SQL call');
is(count_backups($node, 'db3'), '0', 'a database not in aibackup.databases is not backed up');

# backups start on 10 s boundaries of the clock
my @ids = split /\n/, $node->safe_psql('db1',
	"SELECT backup_id FROM aibackup_list_backups() ORDER BY 1");
my @aligned = grep { /(\d\d)Z$/ && ($1 % 10) <= 2 } @ids;
is(scalar @aligned, scalar @ids, "runs are aligned to the clock (ids: @ids)");

my $log = slurp_file($node->logfile);
like($log, qr/aibackup: backup "\d{8}T\d{6}Z" of database "db1" finished: 1 tables, 1000 rows, .* raw, .* compressed in/,
	'each run logs its table count, rows, bytes and duration');

# --- reload: limit the databases ---
$node->append_conf('postgresql.conf', "aibackup.databases = 'db2'\n");
$node->reload;
sleep 11;	# let a run that had started finish
my $db1_before = count_backups($node, 'db1');
my $db2_before = count_backups($node, 'db2');
ok(wait_for(25, sub { count_backups($node, 'db2') >= $db2_before + 2 }),
	'after a reload to db2 only, db2 goes on being backed up');
is(count_backups($node, 'db1'), $db1_before, 'and db1 is no longer backed up');

# a listed database that does not exist is reported, and the others still run
$node->append_conf('postgresql.conf', "aibackup.databases = 'db2, nosuchdb'\n");
$node->reload;
ok(wait_for(25, sub { slurp_file($node->logfile) =~ /database "nosuchdb" in aibackup.databases does not exist/ }),
	'a missing database is reported in the log');
$db2_before = count_backups($node, 'db2');
ok(wait_for(25, sub { count_backups($node, 'db2') > $db2_before }),
	'and the other databases still run');

# a database left invalid by an interrupted DROP DATABASE is skipped, not
# connected to at every run
$node->safe_psql('postgres', 'CREATE DATABASE dbinv');
$node->safe_psql('postgres', "UPDATE pg_database SET datconnlimit = -2 WHERE datname = 'dbinv'");
my $inv_off = -s $node->logfile;
$node->append_conf('postgresql.conf', "aibackup.databases = 'db2, dbinv'\n");
$node->reload;
$db2_before = count_backups($node, 'db2');
ok(wait_for(25, sub { count_backups($node, 'db2') >= $db2_before + 2 }),
	'with an invalid database listed, the others still run');
unlike(substr(slurp_file($node->logfile), $inv_off), qr/invalid database "dbinv"/,
	'and no worker tried to connect to the invalid one');
$node->append_conf('postgresql.conf', "aibackup.databases = 'db2'\n");
$node->reload;

# --- enabled = off stops the schedule, on resumes it ---
$node->append_conf('postgresql.conf', "aibackup.enabled = off\n");
$node->reload;
sleep 12;	# a run that had started may finish
$db2_before = count_backups($node, 'db2');
sleep 22;
is(count_backups($node, 'db2'), $db2_before, 'with aibackup.enabled = off no new backups appear');
$node->append_conf('postgresql.conf', "aibackup.enabled = on\n");
$node->reload;
ok(wait_for(25, sub { count_backups($node, 'db2') > $db2_before }),
	'with aibackup.enabled = on again they resume');

# --- a manual backup while a scheduled one runs is refused, naming it ---
# (a slow table makes the scheduled run last long enough to meet it)
$node->safe_psql('db2', "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g*7)::text) || md5(random()::text) AS pad FROM generate_series(1, 1500000) g");
ok(wait_for(30, sub {
	$node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup worker' AND datname = 'db2'") eq '1' }),
	'a scheduled worker for db2 runs (backend_type aibackup worker)');
my ($ret, $out, $err) = $node->psql('db2', 'SELECT aibackup_backup_now()');
like($err, qr/another backup of database "db2" is running: scheduled backup "\d{8}T\d{6}Z" in process \d+/,
	'aibackup_backup_now() during a scheduled run names the running backup');

# --- fast shutdown mid-backup: no manifest, no upload left ---
ok(wait_for(30, sub {
	$node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup worker' AND datname = 'db2'") eq '1' }),
	'a scheduled run of db2 is going');
sleep 1.5;
my $n_before_stop = count_backups($node, 'db2');
my $stop_t = time;
$node->stop('fast');
my $stop_secs = time - $stop_t;
ok($stop_secs < 15, sprintf('a fast shutdown during a backup completes within seconds (%.1f s)', $stop_secs));
is(uploads_in_progress(), 0, 'no multipart upload is left in progress after the shutdown');
$log = slurp_file($node->logfile);
like($log, qr/backup of database "db2" stopped by shutdown; no manifest was written/,
	'the worker logs that it stopped without a manifest');

# --- restart: the next start succeeds ---
$node->append_conf('postgresql.conf', "aibackup.interval = '1h'\n");
$node->start;
is($node->safe_psql('db2', 'SELECT count(*) FROM aibackup_list_backups()'), $n_before_stop,
	'the interrupted run left no backup behind (no manifest)');

# --- catch-up: newest backup older than the interval -> a run within a minute ---
# No backup at all is the oldest a newest backup can be: delete db1's.
my ($r, $ls) = aws_cli('s3', 'rm', '--quiet', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/db1/");
my $stamp = time;
$node->stop('fast');
$node->append_conf('postgresql.conf', "aibackup.databases = 'db1'\naibackup.interval = '1h'\n");
$node->start;
ok(wait_for(60, sub { count_backups($node, 'db1') >= 1 }),
	'after a restart, a database without a recent backup is caught up within a minute');

# --- SIGKILL of a worker mid-backup: recovery, launcher back, uploads aborted ---
$node->safe_psql('db1', "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g*7)::text) || md5(random()::text) AS pad FROM generate_series(1, 1500000) g");
$node->append_conf('postgresql.conf', "aibackup.interval = '10s'\n");
$node->reload;
my $wpid;
ok(wait_for(30, sub {
	$wpid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'aibackup worker' AND datname = 'db1'");
	$wpid ne '' }), 'a worker backs up db1');
# into the big table's multipart upload (on a loaded machine the worker may
# take a while to get there)
ok(wait_for(60, sub { uploads_in_progress() > 0 }), 'the worker is uploading the big table in parts');
kill 'KILL', $wpid;
ok(wait_for(60, sub {
	my ($rr, $o) = (1, '');
	eval { ($rr, $o) = $node->psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup launcher'"); };
	$rr == 0 && $o eq '1' }), 'after SIGKILL of the worker the server recovers and the launcher comes back');
ok(wait_for(60, sub { slurp_file($node->logfile) =~ /aborted \d+ multipart uploads left by earlier runs/ }),
	'the launcher aborts the multipart uploads the killed run left');
my $after_kill = count_backups($node, 'db1');
ok(wait_for(60, sub { count_backups($node, 'db1') > $after_kill }), 'a later run succeeds');
is(uploads_in_progress(), 0, 'no multipart upload is left in progress');

# --- retention: old backups go, the newest never ---
$node->safe_psql('db1', 'DROP TABLE big');
$node->append_conf('postgresql.conf', "aibackup.enabled = off\n");
$node->reload;
sleep 12;
my $newest = $node->safe_psql('db1', 'SELECT backup_id FROM aibackup_list_backups() LIMIT 1');
# plant two old backups: the newest one's objects and manifest under 2020 ids
my $mfile = "$ENV{AIBACKUP_TEST_WORK}/planted-manifest.json";
aws_cli('s3', 'cp', '--quiet', "s3://$ENV{S3_BUCKET}/$prefix/db1/$newest/manifest.json", $mfile);
my $manifest_text = slurp_file($mfile);
for my $old (qw(20200101T000000Z 20200102T000000Z))
{
	aws_cli('s3', 'cp', '--quiet', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/db1/$newest/",
		"s3://$ENV{S3_BUCKET}/$prefix/db1/$old/");
	(my $text = $manifest_text) =~ s/\Q$newest\E/$old/g;
	open my $fh, '>', $mfile or die;
	print $fh $text;
	close $fh;
	aws_cli('s3', 'cp', '--quiet', $mfile, "s3://$ENV{S3_BUCKET}/$prefix/db1/$old/manifest.json");
}
like($node->safe_psql('db1', 'SELECT string_agg(backup_id, \',\') FROM aibackup_list_backups()'),
	qr/20200101T000000Z/, 'the planted old backups are listed');
$node->append_conf('postgresql.conf', "aibackup.enabled = on\naibackup.retention_days = 1\n");
$node->reload;
ok(wait_for(40, sub {
	$node->safe_psql('db1', "SELECT count(*) FROM aibackup_list_backups() WHERE backup_id < '2021'") eq '0' }),
	'after a run, backups older than aibackup.retention_days are deleted');
my ($rr2, $left) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/db1/2020");
is($left, '', 'nothing of them is left in the bucket');
ok($node->safe_psql('db1', 'SELECT count(*) FROM aibackup_list_backups()') >= 1,
	'the newest backup is kept');

# --- retention keeps the last good copy of each table, and what it cannot read ---
$node->append_conf('postgresql.conf', "aibackup.enabled = off\n");
$node->reload;
sleep 12;
$node->safe_psql('db1', q{
	CREATE TYPE mood AS ENUM ('happy', 'gone');
	CREATE TABLE moody (id int, m mood);
	INSERT INTO moody VALUES (1, 'happy'), (2, 'gone');
});
my $good = $node->safe_psql('db1', 'SELECT aibackup_backup_now()');
aws_cli('s3', 'cp', '--quiet', "s3://$ENV{S3_BUCKET}/$prefix/db1/$good/manifest.json", $mfile);
my $good_text = slurp_file($mfile);

# plant a copy of $good under an old id, its manifest edited by $edit
sub plant
{
	my ($old, $edit) = @_;
	aws_cli('s3', 'cp', '--quiet', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/db1/$good/",
		"s3://$ENV{S3_BUCKET}/$prefix/db1/$old/");
	(my $text = $good_text) =~ s/\Q$good\E/$old/g;
	$text = $edit->($text) if $edit;
	open my $fh, '>', $mfile or die;
	print $fh $text;
	close $fh;
	aws_cli('s3', 'cp', '--quiet', $mfile, "s3://$ENV{S3_BUCKET}/$prefix/db1/$old/manifest.json");
}
sub in_bucket
{
	my ($id) = @_;
	my ($r, $o) = aws_cli('s3', 'ls', "s3://$ENV{S3_BUCKET}/$prefix/db1/$id/manifest.json");
	return $o =~ /manifest\.json/ ? 1 : 0;
}
plant('20200105T000000Z');    # will be the only good copy of moody
plant('20200107T000000Z', sub {    # moody failed here: nothing of its own
	my $m = decode_json($_[0]);
	for my $t (@{ $m->{tables} })
	{
		@$t{qw(status error)} = ('failed', 'planted') if $t->{name} eq 'moody';
	}
	return encode_json($m);
});
plant('20200103T000000Z', sub { (my $t = $_[0]) =~ s/"format": 1,/"format": 99,/; $t });
ok(in_bucket('20200105T000000Z') && in_bucket('20200107T000000Z') && in_bucket('20200103T000000Z'),
	'three old backups are planted');

# from now on moody fails in every run, and the one recent good copy is gone
$node->safe_psql('db1', "DELETE FROM pg_enum WHERE enumtypid = 'mood'::regtype AND enumlabel = 'gone'");
aws_cli('s3', 'rm', '--quiet', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/db1/$good/");
$node->append_conf('postgresql.conf', "aibackup.enabled = on\n");
$node->reload;
ok(wait_for(60, sub { !in_bucket('20200107T000000Z') }),
	'retention deletes an old backup that holds nothing of its own');
ok(in_bucket('20200105T000000Z'),
	'but keeps the old backup that is the last good copy of a table failing in every run');
ok(in_bucket('20200103T000000Z'), 'and an old backup whose manifest has a newer format');
like(slurp_file($node->logfile), qr/retention for database "db1" stopped at backup "20200103T000000Z": its manifest cannot be read/,
	'retention says where it stopped and why');
is($node->safe_psql('db1', "SELECT rows FROM aibackup_list_tables('20200105T000000Z') WHERE table_name = 'moody'"),
	'2', 'the kept backup still lists moody with its rows');

$node->stop;
done_testing();
