# The scheduler: clock-aligned runs of every configured database without any
# SQL call, reloadable settings, catch-up, shutdown and crash behaviour,
# retention.
#
# Scheduled runs come at 10 s slots (aibackup.interval's least), so waiting
# for them is most of this suite's time, and scenarios that can share a wait
# share it.  The reload scenarios (db1 dropped from the list, a missing
# database, an invalid one) share one reload, and while its runs are
# awaited, the slow table (dbbig) fills in the background and retention's
# old backups are planted in databases of their own (dbr1, dbr2, not on the
# list yet).  These join the list with the reload that turns the schedule
# on again: that slot's runs are the resumed ones, retention's, and the run
# of dbbig that a manual backup and a fast shutdown meet.  The restart after
# it is the catch-up's, the catch-up run of dbbig is the one SIGKILL meets,
# and retention is checked while the run after that goes.  Settings change
# between two slots (between_slots), so that no run under way blurs the
# counts before and after.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);
use POSIX qw(strftime);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Find qw(find);
use File::Path qw(make_path);
use IPC::Run;
use AibackupTest;
use JSON::PP;

my $prefix = "sched$$";
my $interval = 10;		# aibackup.interval while scheduled runs are awaited

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
		sleep 0.25;
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

# a backup id is its run's start, in UTC, to the second
sub id_time
{
	my ($id) = @_;
	return undef unless ($id // '') =~ /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/;
	return timegm($6, $5, $4, $3, $2 - 1, $1);
}

sub id_at
{
	my ($t) = @_;
	return strftime('%Y%m%dT%H%M%SZ', gmtime(int($t)));
}

sub workers
{
	my ($node, $db) = @_;
	my $where = defined $db ? " AND datname = '$db'" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup worker'$where");
}

# A calm moment between two slots, to change settings in: each of @dbs has
# had its run of the current slot, no worker runs, and the next slot is at
# least 2.5 s away, so the launcher reads a reload made now before it.
sub between_slots
{
	my ($node, @dbs) = @_;
	wait_for(60, sub {
		my $slot = int(time / $interval) * $interval;
		my $into = time - $slot;
		return 0 if $into < 1 || $into > $interval - 2.5;
		return 0 if workers($node) ne '0';
		for my $db (@dbs)
		{
			my $newest = $node->safe_psql($db, 'SELECT max(backup_id) FROM aibackup_list_backups()');
			return 0 if (id_time($newest) // 0) < $slot;
		}
		return time - $slot <= $interval - 2.5;
	}) or die "no calm moment between two scheduled slots in 60 s";
}

# a node's log from byte $off on
sub log_from
{
	my ($node, $off) = @_;
	return substr(slurp_file($node->logfile), $off // 0);
}

# dbbig's run has sent bytes of its slow table's first part: S3 is asked
# about uploads from then on, since each question costs seconds
sub first_part_sent
{
	my ($node) = @_;
	wait_for(30, sub { $node->safe_psql('dbbig',
		"SELECT count(*) FROM pg_stat_progress_aibackup WHERE datname = 'dbbig' AND bytes_uploaded > 0") ne '0' });
}

my $node = new_cluster('sched', prefix => $prefix, conf => <<"CONF");
aibackup.interval = '${interval}s'
aibackup.databases = 'db1, db2'
aibackup.max_workers = 4
restart_after_crash = on
CONF

# --- the launcher is there, under its own name ---
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup launcher'"), '1',
	'pg_stat_activity shows the aibackup launcher');

for my $db (qw(db1 db2 db3))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION aibackup; CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)");
}
# db1 and db2 are scheduled from now on; the other databases are made while
# their first runs are awaited
my $t0 = time;

# dbbig: its slow table comes later
$node->safe_psql('postgres', 'CREATE DATABASE dbbig');
$node->safe_psql('dbbig', 'CREATE EXTENSION aibackup');

# a database left invalid by an interrupted DROP DATABASE
$node->safe_psql('postgres', 'CREATE DATABASE dbinv');
$node->safe_psql('postgres', "UPDATE pg_database SET datconnlimit = -2 WHERE datname = 'dbinv'");

# retention's databases and the backups its old ones are copied from:
# dbr1's newest; dbr2's $good, with moody, after one without it
for my $db (qw(dbr1 dbr2))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION aibackup; CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)");
}
my $newest = $node->safe_psql('dbr1', 'SELECT aibackup_backup_now()');
$node->safe_psql('dbr2', 'SELECT aibackup_backup_now()');
$node->safe_psql('dbr2', q{
	CREATE TYPE mood AS ENUM ('happy', 'gone');
	CREATE TABLE moody (id int, m mood);
	INSERT INTO moody VALUES (1, 'happy'), (2, 'gone');
});
my $good = $node->safe_psql('dbr2', 'SELECT aibackup_backup_now()');

# --- runs without any SQL call ---
ok(wait_for($t0 + 45 - time, sub { count_backups($node, 'db1') >= 2 && count_backups($node, 'db2') >= 2 }),
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

# dbbig's slow table, for the runs a manual backup, a fast shutdown and a
# SIGKILL meet: filled in the background from now on
my ($big_out, $big_err) = ('', '');
my $big_fill = IPC::Run::start(
	[ $node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
		'-d', $node->connstr('dbbig'), '-c',
		"CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g*7)::text) || md5(random()::text) AS pad FROM generate_series(1, 1500000) g" ],
	'<', \undef, '>', \$big_out, '2>', \$big_err);

# --- one reload: db1 leaves the list, a missing and an invalid database join ---
between_slots($node, 'db1', 'db2');
my $inv_off = -s $node->logfile;
$node->append_conf('postgresql.conf', "aibackup.databases = 'db2, nosuchdb, dbinv'\n");
$node->reload;
my $db1_before = count_backups($node, 'db1');
my $db2_before = count_backups($node, 'db2');
my $b_until = time + 30;

# --- retention, set up meanwhile: old backups planted in dbr1 and dbr2 ---
# (neither is on the list yet: no run of theirs can meet a half-made plant)
# dbr1: two old copies of its newest backup.  dbr2: three old copies of
# $good, one as the only good copy of moody, one where moody failed, one
# with a manifest of a newer format; then moody fails in every run and
# $good is gone.  The copies are made here (the objects as they are, each
# manifest under its new id and edited) and uploaded in one call.
my $plants = PostgreSQL::Test::Utils::tempdir();
my ($prc, $pout, $perr) = aws_cli('s3', 'cp', '--quiet', '--recursive',
	"s3://$ENV{S3_BUCKET}/$prefix/", "$plants/from",
	'--exclude', '*', '--include', "dbr1/$newest/*", '--include', "dbr2/$good/*");
$prc == 0 or die "could not download the backups to plant: $perr";

sub plant
{
	my ($db, $from_id, $old, $edit) = @_;
	my $from = "$plants/from/$db/$from_id";
	find({ no_chdir => 1, wanted => sub {
		return unless -f $_;
		(my $rel = $_) =~ s{^\Q$from\E/}{};
		my $to = "$plants/to/$db/$old/$rel";
		make_path(dirname($to));
		if ($rel ne 'manifest.json')
		{
			copy($_, $to) or die "copy $_: $!";
			return;
		}
		(my $text = slurp_file($_)) =~ s/\Q$from_id\E/$old/g;
		$text = $edit->($text) if $edit;
		open my $fh, '>', $to or die "$to: $!";
		print $fh $text;
		close $fh;
	} }, $from);
}
plant('dbr1', $newest, $_) for qw(20200101T000000Z 20200102T000000Z);
plant('dbr2', $good, '20200105T000000Z');    # will be the only good copy of moody
plant('dbr2', $good, '20200107T000000Z', sub {    # moody failed here: nothing of its own
	my $m = decode_json($_[0]);
	for my $t (@{ $m->{tables} })
	{
		@$t{qw(status error)} = ('failed', 'planted') if $t->{name} eq 'moody';
	}
	return encode_json($m);
});
plant('dbr2', $good, '20200103T000000Z', sub { (my $t = $_[0]) =~ s/"format": 1,/"format": 99,/; $t });
($prc, $pout, $perr) = aws_cli('s3', 'cp', '--quiet', '--recursive', "$plants/to/",
	"s3://$ENV{S3_BUCKET}/$prefix/");
$prc == 0 or die "could not upload the planted backups: $perr";

like($node->safe_psql('dbr1', 'SELECT string_agg(backup_id, \',\') FROM aibackup_list_backups()'),
	qr/20200101T000000Z/, 'the planted old backups are listed');

# which backups of dbr2 have a manifest in the bucket
sub dbr2_manifests
{
	my ($r, $o) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/dbr2/");
	return { map { $_ => 1 } $o =~ m{/dbr2/(\d{8}T\d{6}Z)/manifest\.json$}mg };
}
my $in_bucket = dbr2_manifests();
ok($in_bucket->{'20200105T000000Z'} && $in_bucket->{'20200107T000000Z'} && $in_bucket->{'20200103T000000Z'},
	'three old backups are planted');

# from now on moody fails in every run, and the one recent good copy is gone
$node->safe_psql('dbr2', "DELETE FROM pg_enum WHERE enumtypid = 'mood'::regtype AND enumlabel = 'gone'");
aws_cli('s3', 'rm', '--quiet', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/dbr2/$good/");

ok(wait_for($b_until - time, sub { count_backups($node, 'db2') >= $db2_before + 2 }),
	'after a reload that drops db1 from the list, db2 goes on being backed up');
is(count_backups($node, 'db1'), $db1_before, 'and db1 is no longer backed up');
# a listed database that does not exist is reported, and the others still run
ok(wait_for(10, sub { log_from($node, $inv_off) =~ /database "nosuchdb" in aibackup.databases does not exist/ }),
	'a missing database is reported in the log');
ok(count_backups($node, 'db2') > $db2_before,
	'and the other databases still run');
# a database left invalid by an interrupted DROP DATABASE is skipped, not
# connected to at every run
ok(count_backups($node, 'db2') >= $db2_before + 2,
	'with an invalid database listed, the others still run');
unlike(log_from($node, $inv_off), qr/invalid database "dbinv"/,
	'and no worker tried to connect to the invalid one');

# --- enabled = off stops the schedule, on resumes it ---
# Off between two slots, after db2's run; on again no sooner than 2 s after
# the next slot.  No worker may start meanwhile, and no backup may start
# then: a backup's id is its start.
between_slots($node, 'db2');
$node->append_conf('postgresql.conf', "aibackup.enabled = off\n");
$node->reload;
my $off_at = time;
$db2_before = count_backups($node, 'db2');
my $on_at = (int($off_at / $interval) + 1) * $interval + 2;
my $workers_seen = 0;
my $watch = sub { $workers_seen++ if workers($node) ne '0' };

$watch->();

# for the catch-up below: db1, off the list since the reload, loses its
# backups (no backup at all is the oldest a newest backup can be)
aws_cli('s3', 'rm', '--quiet', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/db1/");
$watch->();
while (time < $on_at)
{
	$watch->();
	sleep 0.25;
}
my $db2_off = count_backups($node, 'db2');
# dbbig's table is ready by now (or is waited for here)
$big_fill->finish or die "could not fill dbbig.big: $big_err";
# on again; dbbig and retention's databases join the list, and retention
# (which finds nothing older than a day but the planted backups) is on
$node->append_conf('postgresql.conf',
	"aibackup.enabled = on\naibackup.databases = 'db2, dbbig, dbr1, dbr2'\naibackup.retention_days = 1\n");
$node->reload;
my $on_id = id_at(time);
ok(wait_for(25, sub { count_backups($node, 'db2') > $db2_before }),
	'with aibackup.enabled = on again they resume');
my $started_off = $node->safe_psql('db2', sprintf(
	"SELECT count(*) FROM aibackup_list_backups() WHERE backup_id > '%s' AND backup_id < '%s'",
	id_at($off_at), $on_id));
ok($db2_off == $db2_before && $started_off eq '0' && !$workers_seen,
	"with aibackup.enabled = off no new backups appear (backups $db2_before, then $db2_off; "
	  . "started while off: $started_off; worker sightings: $workers_seen)");

# --- a manual backup while a scheduled one runs is refused, naming it ---
# (the slow table makes the scheduled run last long enough to meet it)
ok(wait_for(30, sub { workers($node, 'dbbig') eq '1' }),
	'a scheduled worker for dbbig runs (backend_type aibackup worker)');
# (the run has its id once its progress shows it)
wait_for(30, sub { $node->safe_psql('dbbig',
	"SELECT count(*) FROM pg_stat_progress_aibackup WHERE datname = 'dbbig' AND backup_id <> ''") ne '0' });
my ($ret, $out, $err) = $node->psql('dbbig', 'SELECT aibackup_backup_now()');
like($err, qr/another backup of database "dbbig" is running: scheduled backup "\d{8}T\d{6}Z" in process \d+/,
	'aibackup_backup_now() during a scheduled run names the running backup');
my ($interrupted) = $err =~ /scheduled backup "(\d{8}T\d{6}Z)"/;

# --- fast shutdown mid-backup: no manifest, no upload left ---
first_part_sent($node);
ok(wait_for(30, sub { workers($node, 'dbbig') eq '1' && uploads_in_progress() > 0 }),
	'a scheduled run of dbbig is going, uploading the big table in parts');
# (dbr1's and dbr2's runs, and the retention after them, are over)
wait_for(30, sub { workers($node, 'dbr1') eq '0' && workers($node, 'dbr2') eq '0' });
my $n_before_stop = count_backups($node, 'dbbig');
my $stop_t = time;
$node->stop('fast');
my $stop_secs = time - $stop_t;
ok($stop_secs < 15, sprintf('a fast shutdown during a backup completes within seconds (%.1f s)', $stop_secs));
is(uploads_in_progress(), 0, 'no multipart upload is left in progress after the shutdown');
$log = slurp_file($node->logfile);
like($log, qr/backup of database "dbbig" stopped by shutdown; no manifest was written/,
	'the worker logs that it stopped without a manifest');

# --- restart: the next start succeeds, and catches up ---
# At start, a database whose newest backup is older than the interval is
# backed up at once: db1 has no backup left, dbbig never had one.
$node->append_conf('postgresql.conf', "aibackup.databases = 'db1, dbbig'\naibackup.interval = '1h'\n");
$node->start;
# (a backup started since has a later id)
is($node->safe_psql('dbbig', "SELECT count(*) FROM aibackup_list_backups() WHERE backup_id <= '"
	  . ($interrupted // '99999999T999999Z') . "'"), $n_before_stop,
	'the interrupted run left no backup behind (no manifest)');
ok(wait_for(60, sub { count_backups($node, 'db1') >= 1 }),
	'after a restart, a database without a recent backup is caught up within a minute');

# --- SIGKILL of a worker mid-backup: recovery, launcher back, uploads aborted ---
my $launcher = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'aibackup launcher'");
my $wpid;
ok(wait_for(30, sub {
	$wpid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'aibackup worker' AND datname = 'dbbig'");
	$wpid ne '' }), 'a worker backs up dbbig (its catch-up run)');
# into the big table's multipart upload (on a loaded machine the worker may
# take a while to get there); db1's run is over
first_part_sent($node);
ok(wait_for(60, sub { uploads_in_progress() > 0 && workers($node, 'db1') eq '0' }),
	'the worker is uploading the big table in parts');
my $before_kill = count_backups($node, 'dbbig');
my $kill_off = -s $node->logfile;
kill 'KILL', $wpid;
ok(wait_for(60, sub {
	my ($rr, $o) = (1, '');
	eval { ($rr, $o) = $node->psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'aibackup launcher'"); };
	$rr == 0 && $o =~ /^\d+$/ && $o ne $launcher }),
	'after SIGKILL of the worker the server recovers and the launcher comes back');
ok(wait_for(60, sub { log_from($node, $kill_off) =~ /aborted \d+ multipart uploads left by earlier runs/ }),
	'the launcher aborts the multipart uploads the killed run left');

# --- retention (the runs of dbr1 and dbr2 before the fast shutdown) ---
# checked while dbbig's next run, a catch-up again, goes
# dbr1: old backups go, the newest never
wait_for(10, sub {
	my $l = log_from($node, 0);
	$l =~ /retention deleted \d+ backups of database "dbr1"/
	  && $l =~ /retention deleted \d+ backups of database "dbr2"/ });
is($node->safe_psql('dbr1', "SELECT count(*) FROM aibackup_list_backups() WHERE backup_id < '2021'"), '0',
	'after a run, backups older than aibackup.retention_days are deleted');
my ($rr2, $left) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/dbr1/2020");
is($left, '', 'nothing of them is left in the bucket');
ok($node->safe_psql('dbr1', 'SELECT count(*) FROM aibackup_list_backups()') >= 1,
	'the newest backup is kept');
# dbr2: the last good copy of each table is kept, and what cannot be read
$in_bucket = dbr2_manifests();
ok(!$in_bucket->{'20200107T000000Z'},
	'retention deletes an old backup that holds nothing of its own');
ok($in_bucket->{'20200105T000000Z'},
	'but keeps the old backup that is the last good copy of a table failing in every run');
ok($in_bucket->{'20200103T000000Z'}, 'and an old backup whose manifest has a newer format');
like(slurp_file($node->logfile), qr/retention for database "dbr2" stopped at backup "20200103T000000Z": its manifest cannot be read/,
	'retention says where it stopped and why');
is($node->safe_psql('dbr2', "SELECT rows FROM aibackup_list_tables('20200105T000000Z') WHERE table_name = 'moody'"),
	'2', 'the kept backup still lists moody with its rows');

# --- after the SIGKILL ---
ok(wait_for(90, sub { count_backups($node, 'dbbig') > $before_kill }), 'a later run succeeds');
is(uploads_in_progress(), 0, 'no multipart upload is left in progress');

$node->stop;
done_testing();
