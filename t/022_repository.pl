# The repository layout around index.json: listing a database's backups
# costs one LIST and one GET whatever their number (counted in the S3
# server's own request log), the index is a cache that a damaged or lying
# copy cannot turn into a wrong answer, a folder belongs to one cluster
# (a second one refuses until aibackup_take_over_folder(), superuser only),
# a backup whose folder was written to by another process writes no
# manifest, and the launcher aborts stale multipart uploads only in folders
# its cluster owns.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use POSIX qw(strftime);
use File::Path qw(make_path);
use Time::HiRes qw(time sleep);
use HTTP::Tiny;
use AibackupTest;
use AibackupData;

my $prefix = "t022-$$";
my $bucket = $ENV{S3_BUCKET};
my $work = "$ENV{AIBACKUP_TEST_WORK}/t022-$$";
mkdir $work;
my $json = JSON::PP->new->allow_bignum->canonical;
my ($ret, $out, $err);

# cluster A serves every database of the suite; B shares A's prefix
my $na = new_cluster('repo_a', prefix => $prefix, conf => "aibackup.enabled = off\n");
plan skip_all => 'the repository layout: run on 15-assert, 17 and 18 (AibackupTest::heavy_here)'
  unless heavy_here($na);
my $sysid_a = $na->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');

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

# Fast reads and fixture writes through Swift's own API (tempauth, the
# same objects as the S3 API): the AWS CLI takes seconds to start on a busy
# machine, and this suite looks at the bucket often.  The AWS CLI stays the
# tool for what the cases are about (planting, deleting, the stray object,
# multipart uploads).
my $http = HTTP::Tiny->new(timeout => 30);
my ($sw_url, $sw_token);

sub uri_enc
{
	my ($s) = @_;
	$s =~ s{([^A-Za-z0-9_.~/-])}{sprintf('%%%02X', ord $1)}ge;
	return $s;
}

sub swift
{
	my ($method, $key, %o) = @_;
	unless ($sw_token)
	{
		my $r = $http->get($ENV{S3_SWIFT_AUTH_URL}, { headers => {
			'X-Auth-User' => $ENV{S3_ACCESS_KEY}, 'X-Auth-Key' => $ENV{S3_SECRET_KEY} } });
		die "swift auth: $r->{status} $r->{content}" unless $r->{success};
		($sw_url, $sw_token) = ($r->{headers}{'x-storage-url'}, $r->{headers}{'x-auth-token'});
	}
	my $url = "$sw_url/$bucket" . ($key ne '' ? '/' . uri_enc($key) : '')
	  . (defined $o{query} ? "?$o{query}" : '');
	return $http->request($method, $url, { headers => { 'X-Auth-Token' => $sw_token },
		defined $o{content} ? (content => $o{content}) : () });
}

# an object's bytes, or undef when it is absent
sub s3_bytes
{
	my ($key) = @_;
	my $r = swift('GET', $key);
	diag("GET $key: $r->{status}") unless $r->{success} || $r->{status} == 404;
	return $r->{success} ? $r->{content} : undef;
}

# 0 on success, as s3_put
sub put_bytes
{
	my ($key, $bytes) = @_;
	my $r = swift('PUT', $key, content => $bytes);
	diag("PUT $key: $r->{status}") unless $r->{success};
	return $r->{success} ? 0 : 1;
}

sub obj_exists
{
	my ($key) = @_;
	my $r = swift('HEAD', $key);
	return $r->{status} == 200 ? 1 : $r->{status} == 404 ? 0 : die "HEAD $key: $r->{status}";
}

sub index_key { return "$prefix/$_[0]/index.json" }

# the decoded index.json of a database, or undef
sub index_of
{
	my ($db) = @_;
	my $b = s3_bytes(index_key($db));
	return undef unless defined $b;
	return eval { $json->decode($b) };
}

# backup folders of a database, as the store lists them
sub folders
{
	my ($db) = @_;
	my $r = swift('GET', '', query => 'format=json&delimiter=/&prefix=' . uri_enc("$prefix/$db/"));
	die "listing $prefix/$db/: $r->{status}" unless $r->{success};
	return join ' ', sort map { $_->{subdir} && $_->{subdir} =~ m{/([^/]+)/$} ? $1 : () }
	  @{ decode_json($r->{content} || '[]') };
}

my $list_sql = 'SELECT backup_id, status, tables, rows, raw_bytes, compressed_bytes, '
  . 'started_at, finished_at FROM aibackup_list_backups() ORDER BY backup_id';

# The S3 requests aibackup makes while $code runs, from Swift's proxy log
# (one line per client request: "proxy-http: client remote date METHOD path
# proto status referer agent ...").  A marker request after $code shows
# that the log has caught up; aibackup's requests are those on the bucket
# under our prefix with libcurl's agent (aibackup sets none: "-"; the
# marker goes through Swift's API, /v1/..., and is not counted).  The
# clusters' schedulers are off, so nothing else asks about our prefix.
# Returns (count, lines, what $code returned).
my $marker_n = 0;
sub s3_requests
{
	my ($code) = @_;
	my $log = "$ENV{S3_LOG_DIR}/proxy-http.log";
	my $off = -s $log;
	my @res = $code->();
	my $marker = "$prefix/marker-" . ++$marker_n;
	swift('HEAD', $marker);
	my $text = '';
	my $read = sub {
		open my $fh, '<', $log or die "$log: $!";
		seek $fh, $off, 0;
		local $/;
		$text = <$fh> // '';
		close $fh;
	};
	my $deadline = time + 20;
	$read->();
	while ($text !~ /\Q$marker\E/ && time < $deadline)
	{
		sleep 0.1;
		$read->();
	}
	diag("the marker request $marker never reached $log") unless $text =~ /\Q$marker\E/;
	sleep 0.3;	# a line logged just after its response went out
	$read->();
	my @ours = grep {
		my @f = split / /;
		@f > 9 && $f[0] eq 'proxy-http:'
		  && $f[5] =~ m{^/\Q$bucket\E(?:/|%3F|$)} && $f[5] =~ /\Q$prefix\E/
		  && ($f[9] eq '-' || $f[9] =~ m{^curl/})
	} split /^/, $text;
	return (scalar @ours, join('', @ours), @res);
}

# ===================================================================
# 1. Listing costs one LIST and one GET, whatever the number of backups
# ===================================================================
my %planted;	# db -> [ids]
my %rows_of = (few => 3, many => 5);
my %nplant = (few => 9, many => 199);
my %first;
for my $db (qw(few many))
{
	$na->safe_psql('postgres', "CREATE DATABASE $db");
	$na->safe_psql($db, "CREATE EXTENSION aibackup; CREATE TABLE t (id int); "
		  . "INSERT INTO t SELECT generate_series(1, $rows_of{$db})");
	($ret, $first{$db}, $err) = backup_now($na, $db);
	is($ret, 0, "first real backup of $db") or diag($err);
	my $m = eval { $json->decode(s3_bytes("$prefix/$db/$first{$db}/manifest.json") // '') };
	ok($m && $m->{backup_id} eq $first{$db}, "its manifest reads back");
	# planted copies, hourly from 2020-01-01 (older than the real one)
	for my $i (1 .. $nplant{$db})
	{
		my $id = strftime('%Y%m%dT%H%M%SZ', gmtime(1577836800 + $i * 3600));
		$m->{backup_id} = $id;
		make_path("$work/plant/$db/$id");
		open my $fh, '>', "$work/plant/$db/$id/manifest.json" or die;
		print $fh $json->encode($m);
		close $fh;
		push @{ $planted{$db} }, $id;
	}
}
($ret, $out, $err) = aws_cli('s3', 'sync', '--only-show-errors', "$work/plant/", "s3://$bucket/$prefix/");
is($ret, 0, 'the planted manifests are uploaded in one aws s3 sync') or diag($err);
is(scalar(split / /, folders('many')), 200, 'S3 lists 200 backup folders for many');

my %second;
for my $db (qw(few many))
{
	($ret, $second{$db}, $err) = backup_now($na, $db);
	is($ret, 0, "second real backup of $db") or diag($err);
	my $ix = index_of($db);
	my @ids = sort map { $_->{backup_id} } @{ $ix->{backups} // [] };
	is_deeply(\@ids, [ sort(@{ $planted{$db} }, $first{$db}, $second{$db}) ],
		"index.json of $db covers every planted folder and both real backups");
	is("" . ($ix->{system_identifier} // ''), $sysid_a, "index.json of $db names cluster A as owner");
	is($ix->{database}, $db, "index.json of $db names the database");
}

my %cost;
my %listed;
for my $db (qw(few many))
{
	my ($n, $lines, $r, $o, $e) = s3_requests(sub { $na->psql($db, 'SELECT backup_id, rows FROM aibackup_list_backups()') });
	$cost{$db} = $n;
	$listed{$db} = $o;
	is($r, 0, "listing $db works") or diag($e);
	note("requests of listing $db:\n$lines");
}
my $expect_few = 2 + $nplant{few};
my $expect_many = 2 + $nplant{many};
my @few_rows = split /\n/, $listed{few};
my @many_rows = split /\n/, $listed{many};
is(scalar @few_rows, $expect_few, "few lists $expect_few backups");
is(scalar @many_rows, $expect_many, "many lists $expect_many backups");
is_deeply([ sort map { (split /\|/)[0] } @many_rows ],
	[ sort(@{ $planted{many} }, $first{many}, $second{many}) ],
	'many lists exactly the planted and the real backups');
is(scalar(grep { (split /\|/)[1] ne $rows_of{many} } @many_rows), 0,
	"each of many's backups shows its $rows_of{many} rows");
diag("S3 requests of aibackup_list_backups(): few ($expect_few backups) $cost{few}, many ($expect_many backups) $cost{many}");
ok($cost{few} >= 1 && $cost{few} <= 4, "listing few costs few requests ($cost{few})");
ok($cost{many} >= 1 && $cost{many} <= 2 * $cost{few},
	"listing many costs no more than twice listing few ($cost{many} vs $cost{few})");

# without its index, many is listed from the manifests: right, but costly
is(s3_rm(index_key('many')), 0, "index.json of many deleted");
{
	my ($n, $lines, $r, $o, $e) = s3_requests(sub { $na->psql('many', $list_sql) });
	is($r, 0, 'listing many without index.json works') or diag($e);
	is(scalar(split /\n/, $o), $expect_many, "and still lists $expect_many backups (from the manifests)");
	unlike($e, qr/ignoring backup index/, 'a missing index is no warning');
	diag("S3 requests of listing many without index.json: $n");
	ok($n > 200, "it costs more than 200 requests ($n)");
}
my $third;
($ret, $third, $err) = backup_now($na, 'many');
is($ret, 0, 'a backup of many without index.json works') or diag($err);
{
	my $ix = index_of('many');
	ok($ix, 'the backup wrote index.json again');
	is(scalar @{ $ix->{backups} // [] }, $expect_many + 1, 'covering every backup');
	my ($n, $lines, $r, $o, $e) = s3_requests(sub { $na->psql('many', 'SELECT backup_id FROM aibackup_list_backups()') });
	is(scalar(split /\n/, $o), $expect_many + 1, 'many lists one more backup');
	ok($n <= 4, "and listing it is cheap again ($n requests)") or diag($lines);
}

# ===================================================================
# 2. The index is a cache, never the truth
# ===================================================================
my $good = $na->safe_psql('few', $list_sql);
is(scalar(split /\n/, $good), $expect_few, 'few: the listing to compare with');
my $good_index = s3_bytes(index_key('few'));
ok(defined $good_index, 'few has an index.json');

sub list_few
{
	my ($r, $o, $e) = $na->psql('few', $list_sql);
	return ($o // '', $e // '');
}

put_bytes(index_key('few'), "this is not an index {\n");
($out, $err) = list_few();
is($out, $good, 'an index that is not JSON: same listing');
like($err, qr/WARNING:  ignoring backup index "\Q$prefix\E\/few\/index\.json": invalid index/,
	'and a WARNING says the index is ignored');

# an entry for a folder that does not exist is not listed
{
	my $ix = $json->decode($good_index);
	my %ghost = (%{ $ix->{backups}[0] }, backup_id => '20300101T000000Z');
	my %ghost2 = (%{ $ix->{backups}[0] }, backup_id => '20200101T003000Z');
	push @{ $ix->{backups} }, \%ghost, \%ghost2;
	put_bytes(index_key('few'), $json->encode($ix));
	($out, $err) = list_few();
	is($out, $good, 'an index with entries for folders that do not exist: same listing');
	unlike($out, qr/20300101T000000Z|20200101T003000Z/, 'the ghost ids are not listed');
	unlike($err, qr/WARNING/, 'with no warning (the index itself is valid)');
}

# another database's index (many's: the same planted ids, other row counts)
put_bytes(index_key('few'), s3_bytes(index_key('many')));
($out, $err) = list_few();
is($out, $good, "many's index.json in few's folder: same listing (few's own rows)");
like($err, qr/WARNING:  ignoring backup index "\Q$prefix\E\/few\/index\.json": it describes another database/,
	'and a WARNING says it describes another database');

# a bad entry makes the whole index ignored
{
	my $ix = $json->decode($good_index);
	$ix->{backups}[1]{status} = 'splendid';
	$ix->{backups}[2]{rows} = 999999;	# would show if the index were used
	put_bytes(index_key('few'), $json->encode($ix));
	($out, $err) = list_few();
	is($out, $good, 'an index with an invalid entry: same listing');
	like($err, qr/WARNING:  ignoring backup index .*one of its entries is not valid/,
		'and a WARNING says one of its entries is not valid');
}

# the next backup rewrites a damaged index
put_bytes(index_key('few'), "\x00\x01garbage");
($ret, my $few3, $err) = backup_now($na, 'few');
is($ret, 0, 'a backup of few with a damaged index works') or diag($err);
like($err, qr/ignoring backup index/, 'warning about the damaged index');
{
	my $ix = index_of('few');
	ok($ix, 'the backup rewrote index.json as valid JSON');
	is(scalar @{ $ix->{backups} // [] }, $expect_few + 1, 'covering every backup of few');
	($out, $err) = list_few();
	is(scalar(split /\n/, $out), $expect_few + 1, 'few lists one more backup');
	unlike($err, qr/WARNING/, 'and no warning any more');
}

# an index of a newer format is read around, and never overwritten
{
	my $cur = s3_bytes(index_key('few'));
	my $ix = $json->decode($cur);
	$ix->{format} = 99;
	$ix->{something_new} = { a => 1 };
	my $newer = $json->encode($ix);
	put_bytes(index_key('few'), $newer);
	my ($o, $e) = list_few();
	is(scalar(split /\n/, $o), $expect_few + 1, 'an index of a newer format: every backup still listed, from the manifests');
	($ret, $out, $err) = backup_now($na, 'few');
	isnt($ret, 0, 'a backup into a folder whose index a newer version wrote is refused');
	like($err, qr/the backup index of database "few" was written by a newer version of aibackup.*\n.*format 99; this version reads format 1/,
		'with an error naming both formats');
	is(s3_bytes(index_key('few')), $newer, 'the newer index is unchanged, byte for byte');
	($ret, $out, $err) = $na->psql('few', 'SELECT aibackup_take_over_folder()');
	isnt($ret, 0, 'nor can this version take the folder over');
	is(s3_bytes(index_key('few')), $newer, 'the newer index is still unchanged');
	put_bytes(index_key('few'), $cur);
}

# ===================================================================
# 3. Two clusters, one prefix
# ===================================================================
my $nb = new_cluster('repo_b', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $sysid_b = $nb->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
isnt($sysid_b, $sysid_a, 'the two clusters have different system identifiers');
for my $n ($na, $nb)
{
	$n->safe_psql('postgres', 'CREATE DATABASE twin');
	$n->safe_psql('twin', 'CREATE EXTENSION aibackup; CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)');
}
($ret, my $a_twin1, $err) = backup_now($na, 'twin');
is($ret, 0, 'A backs up twin') or diag($err);
my $twin_folders = folders('twin');
my $owner_re = qr/the backups of database "twin" in folder "\Q$prefix\E\/twin\/" belong to another cluster/;

($ret, $out, $err) = backup_now($nb, 'twin');
isnt($ret, 0, "B's backup of twin fails");
like($err, $owner_re, 'because the folder belongs to another cluster');
like($err, qr/Its index\.json names system identifier $sysid_a; this cluster's is $sysid_b/,
	'the detail names both system identifiers');
is(folders('twin'), $twin_folders, 'no new backup folder appears');
($ret, my $a_twin2, $err) = backup_now($na, 'twin');
is($ret, 0, "A's backups of twin still work") or diag($err);
$twin_folders = folders('twin');

# a non-superuser cannot take the folder over, even granted EXECUTE
$nb->safe_psql('twin', 'CREATE ROLE mallory LOGIN');
my $ix_before = s3_bytes(index_key('twin'));
($ret, $out, $err) = $nb->psql('twin', 'SELECT aibackup_take_over_folder()',
	extra_params => [ '-U', 'mallory' ]);
isnt($ret, 0, 'a plain role cannot call aibackup_take_over_folder()');
like($err, qr/permission denied for function aibackup_take_over_folder/, 'EXECUTE is revoked from PUBLIC');
$nb->safe_psql('twin', 'GRANT EXECUTE ON FUNCTION aibackup_take_over_folder() TO mallory');
($ret, $out, $err) = $nb->psql('twin', 'SELECT aibackup_take_over_folder()',
	extra_params => [ '-U', 'mallory' ]);
isnt($ret, 0, 'granted EXECUTE, a plain role still cannot take the folder over');
like($err, qr/permission denied to take over the backup folder/, 'the function itself checks superuser');
is(s3_bytes(index_key('twin')), $ix_before, 'index.json is unchanged, byte for byte');
($ret, $out, $err) = backup_now($nb, 'twin');
like($err, $owner_re, "and B's backup is still refused");

# the superuser takes it over
($ret, $out, $err) = $nb->psql('twin', 'SELECT aibackup_take_over_folder()');
is($ret, 0, 'a superuser of B takes the folder over') or diag($err);
like($err, qr/now belong to this cluster \(system identifier $sysid_b\)/, 'with a NOTICE naming B');
{
	my $ix = index_of('twin');
	is("" . ($ix->{system_identifier} // ''), $sysid_b, 'index.json now names B as owner');
	is_deeply([ sort map { $_->{backup_id} } @{ $ix->{backups} // [] } ], [ $a_twin1, $a_twin2 ],
		"and still lists A's backups");
}
is(folders('twin'), $twin_folders, 'taking over creates no backup folder');
($ret, my $b_twin, $err) = backup_now($nb, 'twin');
is($ret, 0, "B's backup of twin now works") or diag($err);
is($nb->safe_psql('twin', 'SELECT string_agg(backup_id, \' \' ORDER BY backup_id) FROM aibackup_list_backups()'),
	"$a_twin1 $a_twin2 $b_twin", "B lists A's backups and its own");
$twin_folders = folders('twin');
($ret, $out, $err) = backup_now($na, 'twin');
isnt($ret, 0, "A's backup of twin now fails");
like($err, $owner_re, 'with the same error');
like($err, qr/names system identifier $sysid_b; this cluster's is $sysid_a/, 'naming B as the owner');
is(folders('twin'), $twin_folders, "A's refused backup leaves no folder");

# with no index, the newest manifest decides
is(s3_rm(index_key('twin')), 0, 'index.json of twin deleted');
($ret, $out, $err) = backup_now($na, 'twin');
like($err, qr/$owner_re.*\n.*Its backup $b_twin names system identifier $sysid_b/,
	"without an index, the newest manifest (B's) still refuses A");
is(folders('twin'), $twin_folders, 'and no folder appears');
($ret, $out, $err) = backup_now($nb, 'twin');
is($ret, 0, 'while B backs up') or diag($err);

# ===================================================================
# 4. Another writer in the folder during a backup
# ===================================================================
$na->safe_psql('postgres', 'CREATE DATABASE writer');
my $t0 = time;
$na->safe_psql('writer', <<'SQL');
CREATE EXTENSION aibackup;
CREATE TABLE aa (id int);
INSERT INTO aa SELECT generate_series(1, 1000);
CREATE TABLE big (id int, a text, b int);
INSERT INTO big SELECT g, md5(g::text), g % 1000 FROM generate_series(1, 2000000) g;
SQL
note(sprintf('writer: tables made in %.1f s', time - $t0));
my $stray_file = "$work/stray.csv.gz";
open my $sfh, '>', $stray_file or die;
print $sfh "not ours\n";
close $sfh;

# starts a backup of writer, waits until the progress view shows
# $cond (SQL on the view), runs $action->($id), then waits for the backup
sub disturbed_backup
{
	my ($cond, $action) = @_;
	my $h = bg_start($na, 'writer', 'SELECT aibackup_backup_now()');
	my $id = '';
	my $start = time;
	my $phase = '';
	while (time < $start + 60)
	{
		my $row = $na->safe_psql('writer',
			"SELECT backup_id || '|' || phase FROM pg_stat_progress_aibackup "
			  . "WHERE datname = 'writer' AND command = 'backup' AND coalesce(backup_id, '') <> '' AND $cond");
		if ($row ne '')
		{
			($id, $phase) = split /\|/, $row;
			last;
		}
		sleep 0.05;
	}
	$action->($id) if $id ne '';
	my $acted = time;
	my ($rc, $o, $e) = bg_finish($h);
	note(sprintf("backup %s: seen in phase %s after %.1f s, finished %.1f s after the intrusion",
			$id, $phase, $acted - $start, time - $acted));
	return ($rc, $o, $e, $id);
}

my ($rc, $o, $e, $wid) = disturbed_backup('true', sub {
	s3_put($stray_file, "$prefix/writer/$_[0]/public.stray.csv.gz");
});
ok($wid ne '', 'the backup of writer shows its id in pg_stat_progress_aibackup');
isnt($rc, 0, 'a backup whose folder got a stray object fails');
like($e, qr/backup "$wid" of database "writer" was written to by another process/,
	'because its folder was written to by another process');
like($e, qr/Object "\Q$prefix\E\/writer\/$wid\/public\.stray\.csv\.gz" is not the one this backup wrote/,
	'naming the stray object');
ok(!obj_exists("$prefix/writer/$wid/manifest.json"), 'and no manifest is written');

# one of its own objects written over (another size) while it copies the next table
($rc, $o, $e, $wid) = disturbed_backup("table_name = 'public.big'", sub {
	put_bytes("$prefix/writer/$_[0]/public.aa.csv.gz", "x" x 10);
});
isnt($rc, 0, 'a backup whose finished table object was written over fails');
like($e, qr/backup "$wid" of database "writer" was written to by another process.*\n.*public\.aa\.csv\.gz/,
	'naming the object');
ok($wid ne '' && !obj_exists("$prefix/writer/$wid/manifest.json"), 'no manifest is written');

# one of its own objects deleted while it copies the next table
($rc, $o, $e, $wid) = disturbed_backup("table_name = 'public.big'", sub {
	s3_rm("$prefix/writer/$_[0]/public.aa.csv.gz");
});
isnt($rc, 0, 'a backup one of whose objects disappeared fails');
like($e, qr/backup "$wid" of database "writer" was written to by another process.*\n.*An object this backup wrote is missing/,
	'saying an object is missing');
ok($wid ne '' && !obj_exists("$prefix/writer/$wid/manifest.json"), 'no manifest is written');

($ret, my $wok, $err) = backup_now($na, 'writer', "ARRAY['aa']::regclass[]");
is($ret, 0, 'a later backup of writer works') or diag($err);
ok(obj_exists("$prefix/writer/$wok/manifest.json"), 'and writes its manifest');
is($na->safe_psql('writer', 'SELECT string_agg(backup_id, \' \') FROM aibackup_list_backups()'), $wok,
	'writer lists only that backup');

# ===================================================================
# 5. The launcher leaves other clusters' uploads alone
# ===================================================================
for my $n ($na, $nb)
{
	$n->safe_psql('postgres', 'CREATE DATABASE shared');
	$n->safe_psql('shared', 'CREATE EXTENSION aibackup; CREATE TABLE t (id int); INSERT INTO t VALUES (1)');
}
($ret, $out, $err) = backup_now($na, 'shared');
is($ret, 0, 'A backs up shared first (A owns the folder)') or diag($err);
my $up_key = "$prefix/shared/20250101T000000Z/public.t.csv.gz";
($ret, $out, $err) = aws_cli('s3api', 'create-multipart-upload', '--bucket', $bucket, '--key', $up_key);
is($ret, 0, 'a multipart upload is begun in A\'s folder') or diag($err);
my $upload_id = eval { decode_json($out)->{UploadId} } // '';

sub upload_listed
{
	my ($r, $o) = aws_cli('s3api', 'list-multipart-uploads', '--bucket', $bucket,
		'--prefix', "$prefix/shared/");
	return $o =~ /\Q$upload_id\E/ ? 1 : 0;
}
ok($upload_id ne '' && upload_listed(), 'the upload is listed');
sleep 2.5;	# begun well before B's launcher starts (S3 rounds to seconds)

my $b_log_off = -s $nb->logfile;
$nb->append_conf('postgresql.conf', "aibackup.enabled = on\naibackup.databases = 'shared'\naibackup.interval = '10s'\n");
$nb->restart;
sub b_log { my $l = slurp_file($nb->logfile); return substr($l, $b_log_off) }
ok(wait_for(40, sub { b_log() =~ /aibackup: backup of database "shared" failed: .*belong to another cluster/ }),
	"B's launcher has run (its start-up pass done): its backup of shared fails on ownership");
unlike(b_log(), qr/aborted \d+ multipart uploads/, "B's launcher aborted no upload");
ok(upload_listed(), "the upload in A's folder is still there after B's start-up pass");

# A's own launcher, at its start, aborts it
my $a_log_off = -s $na->logfile;
$na->append_conf('postgresql.conf', "aibackup.enabled = on\naibackup.databases = 'shared'\n");
$na->restart;
ok(wait_for(30, sub { !upload_listed() }), "A's launcher aborts the upload in its own folder within 30 s");
like(substr(slurp_file($na->logfile), $a_log_off), qr/aibackup: aborted 1 multipart uploads left by earlier runs/,
	'and logs it');

$nb->stop;
$na->stop;
done_testing();
