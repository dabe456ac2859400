# Scheduled backups from a hot standby (aibackup.backup_from_standby): a
# primary and a streaming standby, both with aibackup preloaded, writing
# one S3 folder.
#
#   1  the standby starts with the schedule on but the setting off: it says
#      so and backs nothing up; with the setting on it catches up at once:
#      "from_standby": true in the manifest and the index; a table restored
#      from that backup on the primary equals its source
#   2  the primary, (re)started with the setting on, stands down while the
#      standby's backups come, and its sweep at start aborts a stale upload
#      under a primary's kind of backup id (even seconds), not one under a
#      standby's (odd); a manual aibackup_backup_now() on the standby works and
#      says from_standby (scenario 7)
#   3  the standby's setting off: the primary takes over after 1.25
#      intervals (never sooner, at most 2 intervals after the standby's
#      last backup), logs why, and backs up at consecutive slots; backups
#      without from_standby; the standby makes none
#   4  the standby's setting on again: the primary stands down once the
#      standby's backup has come (a run of both at one slot: two backup ids)
#   5  a conflict with recovery (ACCESS EXCLUSIVE on the primary while the
#      standby, throttled and uncompressed, sends big's object in parts):
#      the whole attempt fails (no manifest, no index entry, its open
#      multipart upload aborted), the launcher says it tries again in 5 s,
#      and the retry, a new backup id, is ok
#   6  failover: the primary stops, the standby is promoted; with the
#      setting on it backs up itself once no standby backup came for 1.25
#      intervals
#
# Scheduled runs come at 20 s slots; scenarios share the waits: the manual
# backup runs while the standby's slots are awaited, the conflict happens at
# the slot that shows the primary standing down again, and the failover
# follows the retry at once (the promoted node's first slot is then most
# often the second one that shows standing down).  PostgreSQL 18 only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use Time::Local qw(timegm);
use JSON::PP;
use AibackupTest;
use AibackupData;

my $t0 = time;
my $I = 20;				# aibackup.interval while scheduled runs are awaited
my $prefix = "stby$$";
my $db = 'app';
my $big_rows = 500000;    # ~36 MB of CSV

sub elapsed { sprintf('%.0f s', time - $t0) }

# wait until $cond->() is true or $secs pass; returns the truth
sub wait_for
{
	my ($secs, $cond, $step) = @_;
	my $end = time + $secs;
	while (time < $end)
	{
		my $r = eval { $cond->() };
		return 1 if $r;
		sleep($step // 0.25);
	}
	return eval { $cond->() } ? 1 : 0;
}

# a backup id is its start, in UTC, to the second
sub id_time
{
	my ($id) = @_;
	return undef unless ($id // '') =~ /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/;
	return timegm($6, $5, $4, $3, $2 - 1, $1);
}

# a node's log from byte $off on
sub log_from
{
	my ($node, $off) = @_;
	return substr(slurp_file($node->logfile), $off // 0);
}

sub log_size { -s $_[0]->logfile }

# ids of the scheduled runs of app that a node's log says finished ok
sub finished
{
	my ($node, $off) = @_;
	my $l = log_from($node, $off);
	return ($l =~ /aibackup: backup "(\d{8}T\d{6}Z)" of database "$db" finished:/g);
}

my $takeover_re = qr/aibackup: no backup of database "$db" from a standby (?:since [^;]+|yet); the primary backs it up/;

sub s3_json
{
	my ($key) = @_;
	my ($r, $o, $e) = aws_cli('s3', 'cp', "s3://$ENV{S3_BUCKET}/$key", '-');
	if ($r)
	{
		diag("aws s3 cp $key: $e");
		return undef;
	}
	my $j = eval { JSON::PP->new->allow_bignum->decode($o) };
	diag("$key does not parse: $@") unless $j;
	return $j;
}

sub manifest_of { s3_json("$prefix/$db/$_[0]/manifest.json") }

# index.json's entries by backup id
sub index_entries
{
	my $ix = s3_json("$prefix/$db/index.json") // {};
	my $list = $ix->{backups} // $ix->{entries} // [];
	return { map { ($_->{backup_id} => $_) } @$list };
}

sub is_true
{
	my ($v) = @_;
	return (defined $v && JSON::PP::is_bool($v) && $v) ? 1 : 0;
}

sub backup_id_of
{
	my ($s) = @_;
	return ($s // '') =~ /(\d{8}T\d{6}Z)/ ? $1 : '';
}

sub has_object
{
	my ($key) = @_;
	my ($r) = aws_cli('s3api', 'head-object', '--bucket', $ENV{S3_BUCKET}, '--key', $key);
	return $r == 0 ? 1 : 0;
}

# keys of the multipart uploads open under $under (undef: the listing failed)
sub open_uploads
{
	my ($under) = @_;
	my ($r, $o, $e) = aws_cli('s3api', 'list-multipart-uploads', '--bucket',
		$ENV{S3_BUCKET}, '--prefix', $under, '--output', 'json');
	if ($r)
	{
		diag("list-multipart-uploads: $e");
		return undef;
	}
	return [] if $o !~ /\S/;
	my $j = decode_json($o);
	return [ map { $_->{Key} } @{ $j->{Uploads} // [] } ];
}

# postgresql.conf lines, reload, and wait until a new session sees them
sub set_node
{
	my ($node, %kv) = @_;
	$node->append_conf('postgresql.conf',
		join('', map { "$_ = '$kv{$_}'\n" } sort keys %kv));
	$node->reload;
	for my $k (sort keys %kv)
	{
		wait_for(20, sub {
			my $v = $node->safe_psql('postgres', "SHOW $k");
			return $v eq $kv{$k};
		}) or diag("$k did not become $kv{$k} on " . $node->name);
	}
	sleep 0.3;
}

sub running_workers
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('aibackup worker', 'aibackup table worker')");
}

# A calm moment between two slots on $node, which backs up at each slot:
# this slot's run (started within $I) is over, no worker runs, and the next
# slot is at least $room s away.
sub between_slots
{
	my ($node, $off, $room) = @_;
	$room //= 8;
	wait_for(3 * $I + 30, sub {
		my $slot = int(time / $I) * $I;
		my $into = time - $slot;
		return 0 if $into < 1 || $into > $I - $room;
		return 0 if running_workers($node) ne '0';
		my @ids = finished($node, $off);
		return 0 unless @ids && id_time($ids[-1]) >= $slot;
		return time - $slot <= $I - $room;
	}, 0.5) or die "no calm moment between two slots on " . $node->name;
}

# --- the primary and its standby ---
my $primary = PostgreSQL::Test::Cluster->new('primary');
plan skip_all => 'backups from a standby: on PostgreSQL 18 only, for CI\'s time'
  if $primary->pg_version < 18;
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'aibackup'\n" . s3_settings(prefix => $prefix) . <<"CONF");
aibackup.enabled = off
aibackup.interval = '${I}s'
aibackup.databases = '$db'
shared_buffers = 32MB
max_connections = 20
max_worker_processes = 16
autovacuum = off
log_timezone = 'UTC'
CONF
$primary->start;
$primary->backup('b');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
# the schedule on, the setting off (its default)
$standby->append_conf('postgresql.conf', "aibackup.enabled = on\n");
$standby->start;

ok(wait_for(30, sub { log_from($standby, 0) =~
	/aibackup launcher started on a standby; scheduled backups run here only with aibackup.backup_from_standby = on/ }),
	'a standby with the setting off says at start that it schedules nothing');

$primary->safe_psql('postgres', "CREATE DATABASE $db");
$primary->safe_psql($db, <<"SQL");
CREATE EXTENSION aibackup;
CREATE TABLE small1 (id int PRIMARY KEY, v int);
INSERT INTO small1 SELECT g, g * 3 FROM generate_series(1, 1000) g;
CREATE TABLE small2 (id int, name text);
INSERT INTO small2 SELECT g, 'n' || g FROM generate_series(1, 200) g;
CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS pad
  FROM generate_series(1, $big_rows) g;
SQL
$primary->wait_for_replay_catchup($standby);
is($standby->safe_psql($db, 'SELECT sum(v) FROM small1'), '1501500',
	'the tables replicated to the standby');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
my @before_on = finished($standby, 0);
is(scalar @before_on, 0, 'with the setting off the standby backed nothing up (' . elapsed() . ')');

# --- 1: the setting on: the standby catches up at once ---
my $s_on = log_size($standby);
my $on_t = time;
set_node($standby, 'aibackup.backup_from_standby' => 'on');
my @s1;
ok(wait_for($I + 40, sub { @s1 = finished($standby, $s_on) }),
	'with the setting on the standby backs up app (' . elapsed() . ')');
my $S1 = $s1[0] // 'none';
ok((id_time($S1) // 0) <= $on_t + 6,
	"its first backup ($S1) is a catch-up, at once, not a slot's");
my $m1 = manifest_of($S1) // {};
is($m1->{status}, 'ok', 'its manifest says ok');
ok(is_true($m1->{from_standby}), 'and "from_standby": true');
my %t1 = map { ($_->{name} => $_) } @{ $m1->{tables} // [] };
is(join(',', map { $t1{$_} ? $t1{$_}{status} : 'missing' } qw(big small1 small2)), 'ok,ok,ok',
	'big, small1 and small2 are in it, ok');
my $ix = index_entries();
ok($ix->{$S1} && is_true($ix->{$S1}{from_standby}),
	'its index.json entry says "from_standby": true');

# a restore on the primary from the standby's backup
$primary->safe_psql($db, restore_sql('public.small1', $S1, 'public.small1_r'));
$primary->safe_psql($db, restore_sql('public.small2', $S1, 'public.small2_r'));
is(checksum($primary, $db, 'small1_r'), checksum($primary, $db, 'small1'),
	'small1 restored on the primary from the standby\'s backup equals its source');
is(checksum($primary, $db, 'small2_r'), checksum($primary, $db, 'small2'), 'and so does small2');
$primary->safe_psql($db, 'DROP TABLE small1_r, small2_r');

# --- 2: the primary with the setting on stands down ---
# uploads left open under the folder before the primary's launcher starts,
# one under a standby's kind of backup id (odd seconds), one under a
# primary's (even): the primary's sweep at its start takes only its own
my $planted = "$prefix/$db/20200101T000001Z/public.planted.csv.gz";
my $planted_own = "$prefix/$db/20200101T000002Z/public.planted.csv.gz";
my ($pr, $pout, $perr) = aws_cli('s3api', 'create-multipart-upload', '--bucket',
	$ENV{S3_BUCKET}, '--key', $planted, '--output', 'json');
is($pr, 0, 'a stale multipart upload under a standby\'s kind of id is planted') or diag($perr);
my ($pr2, undef, $perr2) = aws_cli('s3api', 'create-multipart-upload', '--bucket',
	$ENV{S3_BUCKET}, '--key', $planted_own, '--output', 'json');
is($pr2, 0, 'and one under a primary\'s kind') or diag($perr2);
sleep 1.1;    # its start is before the launcher's, to the second
my $p_on = log_size($primary);
my $s_p_on = log_size($standby);
my $p_on_t = time;
$primary->append_conf('postgresql.conf',
	"aibackup.enabled = on\naibackup.backup_from_standby = on\n");
$primary->restart;
ok(wait_for(20, sub { log_from($primary, $p_on) =~ /aibackup launcher started: every $I s/ }),
	'the primary\'s launcher starts with the schedule on');

# scenario 7 in the meantime: a manual backup on the standby, between slots
between_slots($standby, $s_on, 8);
my ($mr, $manual, $merr) = backup_now($standby, $db, undef, timeout => 120);
is($mr, 0, 'aibackup_backup_now() works on a standby') or diag($merr);
$manual = backup_id_of($manual);
my $mm = manifest_of($manual) // {};
ok($mm->{status} && $mm->{status} eq 'ok' && is_true($mm->{from_standby}),
	"its manifest ($manual) says ok and from_standby");

my @s2;
ok(wait_for(3 * $I + 30, sub {
	@s2 = grep { id_time($_) >= int($p_on_t) } finished($standby, $s_p_on);
	@s2 >= 2 }, 0.5),
	'the standby goes on backing up at its slots: ' . scalar(@s2) . ' new scheduled backups (' . elapsed() . ')');
$ix = index_entries();
my @new2 = grep { id_time($_) >= int($p_on_t) } sort keys %$ix;
my @not_standby = grep { !is_true($ix->{$_}{from_standby}) } @new2;
ok(@new2 >= 3 && !@not_standby,
	"every new backup of app is from the standby (new: @new2; not: @not_standby)");
my $plog = log_from($primary, $p_on);
unlike($plog, $takeover_re, 'the primary logs no take-over');
my @p2 = finished($primary, $p_on);
is(scalar @p2, 0, "and makes no scheduled backup (@p2)");
like($plog, qr/aborted 1 multipart uploads/, 'the primary with the setting on sweeps one upload at its start');
my $open = open_uploads("$prefix/$db/20200101T000001Z/") // [];
is(scalar @$open, 1, 'the one under a standby\'s kind of id is still open');
$open = open_uploads("$prefix/$db/20200101T000002Z/");
ok(defined $open && !@$open, 'the one under a primary\'s kind was aborted');

# --- 3: the standby's setting off: the primary takes over ---
between_slots($standby, $s_p_on, 6);
my ($L) = (finished($standby, $s_p_on))[-1];
my $p3 = log_size($primary);
my $s3 = log_size($standby);
set_node($standby, 'aibackup.backup_from_standby' => 'off');
my @p3;
ok(wait_for(id_time($L) + 2 * $I + 30 - time, sub { @p3 = finished($primary, $p3) }, 0.5),
	'with the standby\'s setting off the primary backs up app (' . elapsed() . ')');
my $P1 = $p3[0] // 'none';
like(log_from($primary, $p3), qr/aibackup: no backup of database "$db" from a standby since [^;]+; the primary backs it up/,
	'and says why');
my $gap = (id_time($P1) // 0) - id_time($L);
ok($gap >= 1.25 * $I - 1 && $gap <= 2 * $I + 8,
	"its first backup comes 1.25 to 2 intervals after the standby's last ($L, then $P1: $gap s)");
my $mp1 = manifest_of($P1) // {};
ok(($mp1->{status} // '') eq 'ok' && !exists $mp1->{from_standby},
	'its manifest says ok and has no from_standby');

my @p3b;
ok(wait_for(id_time($P1) + $I + 25 - time, sub { (@p3b = finished($primary, $p3)) >= 2 }, 0.5),
	'the primary backs up at the next slot again (' . elapsed() . ')');
my $P2 = $p3b[1] // 'none';
my $pgap = (id_time($P2) // 0) - id_time($P1);
ok(abs($pgap - $I) <= 3, "the primary's backups come at consecutive slots ($P1, $P2)");
$ix = index_entries();
my $mp2 = manifest_of($P2) // {};
ok(($mp2->{status} // '') eq 'ok' && !exists $mp2->{from_standby}
	  && $ix->{$P2} && !exists $ix->{$P2}{from_standby},
	'the primary\'s second backup has no from_standby, in its manifest and the index');

# --- 4: the standby's setting on again ---
# At the standby's first slot the primary may back up too (whether it has
# seen the standby's backup when it decides is a race); from the slot after
# it stands down.
between_slots($primary, $p3, 6);
my @s3 = finished($standby, $s3);
is(scalar @s3, 0, "the standby with the setting off made no backup (@s3)");
my $s4 = log_size($standby);
my $p4 = log_size($primary);
set_node($standby, 'aibackup.backup_from_standby' => 'on');
my @s4;
ok(wait_for($I + 30, sub { @s4 = finished($standby, $s4) }, 0.5),
	'the standby, on again, backs up at its next slot (' . elapsed() . ')');
my $S4 = $s4[0] // 'none';
my $ms4 = manifest_of($S4) // {};
$ix = index_entries();
ok(($ms4->{status} // '') eq 'ok' && is_true($ms4->{from_standby}) && $ix->{$S4} && is_true($ix->{$S4}{from_standby}),
	"the standby's backup $S4 says ok and from_standby, in its manifest and the index");
# the primary's run of the same slot, if any, ends under an id of its own
wait_for(15, sub { running_workers($primary) eq '0' });
my @same = grep { abs(id_time($_) - id_time($S4)) < $I / 2 } finished($primary, $p4);
ok(!grep({ $_ eq $S4 } @same), "a primary's run at the same slot (@same) has a backup id of its own");

# --- 5: a conflict with recovery, at the standby's next slot ---
# throttled to 8 MB/s (shared by the backup's table workers), uncompressed:
# big's object goes in 16 MB parts, the first after 2 to 4 s, and the copy
# lasts 4.5 to 9 s
set_node($standby, 'max_standby_streaming_delay' => '0', 'hot_standby_feedback' => 'off',
	'aibackup.max_rate' => '8', 'aibackup.compression_level' => '0');
my $s5 = log_size($standby);
my $cid = '';
ok(wait_for(2 * $I + 20, sub {
	$cid = $standby->safe_psql($db,
		"SELECT string_agg(DISTINCT backup_id, ',') FROM pg_stat_progress_aibackup "
		  . "WHERE datname = '$db' AND command = 'backup' AND coalesce(backup_id, '') <> '' "
		  . "AND EXISTS (SELECT 1 FROM pg_stat_progress_aibackup p WHERE p.table_name LIKE '%big%' AND p.bytes_uploaded > 0)") // '';
	$cid =~ /^\d{8}T\d{6}Z$/ }, 0.2),
	"the standby's scheduled run ($cid) copies big, a part of it sent (" . elapsed() . ')');
my $locker = $primary->background_psql($db);
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE big IN ACCESS EXCLUSIVE MODE');
$open = open_uploads("$prefix/$db/$cid/") // [];
ok(scalar(@$open) >= 1, "a multipart upload of it is open (@$open)");
# the lock's WAL record goes to the standby once WAL is flushed up to it:
# a commit elsewhere flushes it
$primary->safe_psql('postgres', 'SELECT txid_current()');
my $conflict_re = qr/aibackup: backup of database "$db" was canceled by a conflict with recovery; trying again in (\d+) s \(attempt (\d+) of 3\)/;
ok(wait_for(30, sub { log_from($standby, $s5) =~ $conflict_re }, 0.2),
	'the standby says its backup was canceled by a conflict with recovery and tries again');
$locker->query_safe('COMMIT');
$locker->quit;
set_node($standby, 'aibackup.max_rate' => '0', 'max_standby_streaming_delay' => '30s',
	'aibackup.compression_level' => '6');
my ($pause, $attempt) = log_from($standby, $s5) =~ $conflict_re;
is("$pause,$attempt", '5,1', 'the first retry waits 5 s (attempt 1 of 3)');
my @r5;
ok(wait_for(60, sub { @r5 = grep { $_ gt $cid } finished($standby, $s5) }, 0.5),
	'the retry finishes (' . elapsed() . ')');
my $R = $r5[0] // 'none';
my $r_seen = time;

# --- 4 ends: a primary with the setting on stands down after the standby's backup ---
# The old primary's slot after $S4 (the standby's conflict slot) is checked
# here; the failover follows at once, so the slot after that is most often
# the promoted node's, where the standby's newest good backup is the retry
# ($S4 being 2 intervals old): scenario 6 checks that it stands down.  (A
# retry that ended as that slot came is too late for it: then the window
# ends before it.)
my $slot_x = int(id_time($cid || $S4) / $I) * $I;
my ($w_from, $w_to) = (id_time($S4) + $I / 2,
	$r_seen < $slot_x + $I - 1 ? time + 1 : $slot_x + $I - 0.5);
my @p4 = grep { id_time($_) > $w_from && id_time($_) < $w_to } finished($primary, $p3);
is(scalar @p4, 0, "no primary backup since the standby's $S4 (@p4)");
my @tk = grep {
	/^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)/ && do {
		my $t = timegm($6, $5, $4, $3, $2 - 1, $1);
		$t > $w_from && $t < $w_to } } grep { $_ =~ $takeover_re } split /\n/, log_from($primary, $p4);
is(scalar @tk, 0, 'and no take-over line') or diag(join "\n", @tk);

# --- 6: failover ---
$primary->stop;
my $s6 = log_size($standby);
$standby->promote;
ok(wait_for(30, sub { $standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()') eq 'f' }),
	'the standby is promoted (' . elapsed() . ')');

# --- 5, the S3 side (while the promoted node's slots are awaited) ---
my $mr5 = manifest_of($R) // {};
my %tr = map { ($_->{name} => $_) } @{ $mr5->{tables} // [] };
ok(($mr5->{status} // '') eq 'ok' && is_true($mr5->{from_standby})
	  && $tr{big} && $tr{big}{status} eq 'ok' && $tr{big}{rows} == $big_rows,
	"the retry, a new backup id ($R), is ok, from the standby, with big");
is(has_object("$prefix/$db/$cid/manifest.json"), 0, "the canceled attempt ($cid) wrote no manifest");
ok(!exists index_entries()->{$cid}, 'and the index does not list it');
$open = open_uploads("$prefix/$db/$cid/");
ok(defined $open && !@$open, "no multipart upload of it is left open (@{$open // ['?']})");
# the canceled attempt's worker says it failed, by the conflict; nothing else
# failed, and the retries were not given up
my @fails = log_from($standby, $s5) =~ /aibackup: backup of database "$db" failed: ([^\n]*)/g;
ok(!grep({ !/conflict with recovery/ } @fails), "no attempt failed otherwise (@fails)");
unlike(log_from($standby, $s5), qr/conflict with recovery \d+ times in a row/, 'and the retries were not given up');

# --- 6 goes on: the promoted node's last backup as a standby (one running
# at the promotion ends first), then its own ---
wait_for(60, sub { running_workers($standby) eq '0' });
my ($last_sb) = (sort(finished($standby, $s4)))[-1];
my @f6;
ok(wait_for(id_time($last_sb) + 2 * $I + 30 - time, sub { @f6 = finished($standby, $s6) }, 0.5),
	'the promoted node backs up app itself (' . elapsed() . ')');
my $F = $f6[0] // 'none';
my $fgap = (id_time($F) // 0) - id_time($last_sb);
ok($fgap >= 1.25 * $I - 1 && $fgap <= 2 * $I + 8,
	"once no standby backup came for 1.25 intervals ($last_sb, then $F: $fgap s)");
like(log_from($standby, $s6), $takeover_re, 'it logs the take-over');
my $mf = manifest_of($F) // {};
ok(($mf->{status} // '') eq 'ok' && !exists $mf->{from_standby},
	'its backup is ok, without from_standby');

$standby->stop;
aws_cli('s3api', 'abort-multipart-upload', '--bucket', $ENV{S3_BUCKET}, '--key', $planted,
	'--upload-id', (decode_json($pout)->{UploadId} // '')) if $pr == 0;
diag('run time ' . elapsed());
done_testing();
