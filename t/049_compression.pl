# Objects are sequences of gzip members (libdeflate, 1 MiB of CSV each):
# every tool a customer uses reads them as one file (gunzip, zcat, gzip -t,
# Python's gzip module, psql's \copy FROM PROGRAM 'gunzip -c'), each gives
# the very bytes the manifest describes (size and SHA-256), the rows load
# back equal, and the size stays within 5% of gzip -6's.  Restores read
# both the new objects and an old one of a single member.  And
# aibackup.max_rate holds a backup to its rate (never faster, and at most
# 10% slower than the rate plus the unthrottled time), for superusers only.
# And a backup right after a WAL switch.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;
use AibackupData;

my $prefix = "t049-$$";
my $node = new_cluster('compression', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $work = "$ENV{AIBACKUP_TEST_WORK}/t049-$$";
remove_tree($work);
make_path($work);
my $db = 'cz';

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION aibackup');

# about 14 MB of CSV: mixed columns, some of it barely compressible
$node->safe_psql($db, <<'SQL');
CREATE TABLE orders (id bigint PRIMARY KEY, note text, amount numeric(12,2),
                     at timestamptz, doc jsonb);
INSERT INTO orders
  SELECT g, md5(g::text) || ' ' || (ARRAY['paid', 'shipped', 'refund, "partial"'])[g % 3 + 1],
         (g % 100000) / 100.0, '2026-01-01'::timestamptz + g * interval '7 s',
         jsonb_build_object('k', g % 97, 'tags', ARRAY['a', 'b' || g % 5])
  FROM generate_series(1, 100000) g;
CREATE INDEX ON orders (at);
CREATE TABLE small (id int, v text);
INSERT INTO small VALUES (1, 'one'), (2, E'two\nlines');
SQL
my $src = checksum($node, $db, 'orders');

my ($ret, $out, $err) = backup_now($node, $db);
is($ret, 0, 'backup') or diag($err);
my $id = $node->safe_psql($db, 'SELECT max(backup_id) FROM aibackup_list_backups()');
my ($m) = manifest($prefix, $db, $id);
my ($entry) = grep { $_->{name} eq 'orders' } @{ $m->{tables} };
my ($sentry) = grep { $_->{name} eq 'small' } @{ $m->{tables} };
my $obj = "$work/orders.csv.gz";
is(s3_get($entry->{object_key}, $obj), 0, 'aws s3 cp downloads the object');
is(-s $obj, $entry->{compressed_bytes}, "the object's size is the manifest's");

sub sha256_of
{
	my ($file) = @_;
	my $o = `sha256sum '$file'`;
	return (split ' ', $o)[0] // '';
}
is(sha256_of($obj), $entry->{sha256}, "the object's SHA-256 is the manifest's");

# members: Python's zlib walks them one by one
my $py_members = <<'PY';
import sys, zlib
data = open(sys.argv[1], 'rb').read()
n = 0
while data:
    d = zlib.decompressobj(31)
    d.decompress(data)
    if not d.eof:
        sys.exit('truncated member')
    n += 1
    data = d.unused_data
print(n)
PY
open my $pyfh, '>', "$work/members.py" or die;
print $pyfh $py_members;
close $pyfh;
my $members = `python3 '$work/members.py' '$obj'`;
chomp $members;
my $want_members = int(($entry->{raw_bytes} + 1048575) / 1048576);
is($members, $want_members,
	"the object holds one member per MiB of CSV ($entry->{raw_bytes} bytes)");

# every reader gives the same bytes, as many as the manifest's raw_bytes
my %readers = (
	gunzip => "gunzip -c '$obj'",
	zcat => "zcat '$obj'",
	python_gzip => "python3 -c 'import gzip, sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())' '$obj'",
	python_gzip_stream =>
	  "python3 -c 'import gzip, shutil, sys; shutil.copyfileobj(gzip.GzipFile(fileobj=sys.stdin.buffer), sys.stdout.buffer)' < '$obj'",
	aws_pipe => "cat '$obj' | gunzip",
);
my %sums;
for my $r (sort keys %readers)
{
	my $file = "$work/out-$r.csv";
	system("$readers{$r} > '$file'");
	is($?, 0, "$r reads the object");
	is(-s $file, $entry->{raw_bytes}, "$r: as many bytes as the manifest's raw_bytes");
	$sums{$r} = sha256_of($file);
}
is(scalar(keys %{ { map { $_ => 1 } values %sums } }), 1, 'every reader gives the same bytes');
system("gzip -t '$obj'");
is($?, 0, 'gzip -t finds the object sound');

# the same through the AWS CLI's own stdout, as the README shows
my $env = join(' ',
	"AWS_ACCESS_KEY_ID='$ENV{S3_ACCESS_KEY}'", "AWS_SECRET_ACCESS_KEY='$ENV{S3_SECRET_KEY}'",
	"AWS_CONFIG_FILE='$ENV{AIBACKUP_TEST_WORK}/awscfg/config'");
system("$env /usr/bin/aws --endpoint-url '$ENV{S3_HTTP_ENDPOINT}' s3 cp "
	  . "'s3://$ENV{S3_BUCKET}/$entry->{object_key}' - | gunzip > '$work/out-awsstdout.csv'");
is(sha256_of("$work/out-awsstdout.csv"), $sums{gunzip}, 'aws s3 cp - | gunzip gives the same bytes');

# the size: within 5% of gzip -6 over the same CSV
system("gzip -6 -c '$work/out-gunzip.csv' > '$work/ref.csv.gz'");
my ($ours, $ref) = (-s $obj, -s "$work/ref.csv.gz");
cmp_ok($ours, '<=', $ref * 1.05, "the object ($ours bytes) is within 5% of gzip -6 ($ref bytes)");

# psql's \copy FROM PROGRAM 'gunzip -c ...' loads the rows back
$node->safe_psql($db, 'CREATE TABLE orders_in (LIKE orders)');
($ret, $out, $err) = psql_err($node, $db,
	"\\copy orders_in FROM PROGRAM 'gunzip -c $obj' WITH (FORMAT csv, HEADER)");
is($ret, 0, "psql \\copy FROM PROGRAM 'gunzip -c' loads the object") or diag($err);
is(checksum($node, $db, 'orders_in'), $src, 'and the rows are the table\'s');

# restore: the member sequence, then an old single-member object
$node->safe_psql($db, 'UPDATE orders SET note = NULL WHERE id % 10 = 0');
is($node->safe_psql($db, restore_sql('orders', $id)), '100000', 'restore of the member sequence');
is(checksum($node, $db, 'orders'), $src, 'restored rows are the backed-up rows');

system("gzip -6 -n -c '$work/out-gunzip.csv' > '$work/single.csv.gz'");
is(s3_put("$work/single.csv.gz", $entry->{object_key}), 0, 'an old-style object of one member replaces it');
$entry->{sha256} = sha256_of("$work/single.csv.gz");
$entry->{compressed_bytes} = -s "$work/single.csv.gz";
is(put_manifest($prefix, $db, $id, $m), 0, 'with the manifest describing it');
$node->safe_psql($db, 'DELETE FROM orders WHERE id > 50000');
is($node->safe_psql($db, restore_sql('orders', $id)), '100000', 'restore of a single-member object');
is(checksum($node, $db, 'orders'), $src, 'restored rows are the backed-up rows');
is($node->safe_psql($db, restore_sql('small', $id)), '2', 'a small table (one member) restores');

# ---- aibackup.max_rate ----

# unthrottled first: how long the compute takes on this machine now
my $t0 = time();
($ret, $out, $err) = backup_now($node, $db, "ARRAY['orders']::regclass[], full => true", pre => 'SET aibackup.max_rate = 0');
my $free = time() - $t0;
is($ret, 0, 'backup with max_rate = 0 (no limit)') or diag($err);

my $raw = $entry->{raw_bytes};
for my $rate (4, 9)
{
	$t0 = time();
	($ret, $out, $err) = backup_now($node, $db, "ARRAY['orders']::regclass[], full => true",
		pre => "SET aibackup.max_rate = $rate");
	my $took = time() - $t0;
	is($ret, 0, "backup with max_rate = $rate") or diag($err);
	my $ideal = $raw / ($rate * 1e6);
	# never faster than the rate (the last 64 kB are counted after the nap)
	cmp_ok($took, '>=', ($raw - 65536) / ($rate * 1e6),
		sprintf('max_rate = %d MB/s: %.2f s for %d bytes, not faster than the rate (%.2f s)',
			$rate, $took, $raw, $ideal));
	# and not much slower: the rate's time, 10% more, plus all the work
	cmp_ok($took, '<=', $ideal * 1.1 + $free + 1,
		sprintf('max_rate = %d MB/s: within 10%% of the rate, plus the unthrottled %.2f s', $rate, $free));
}

# a superuser's setting
$node->safe_psql($db, 'CREATE ROLE tenant LOGIN');
($ret, $out, $err) = psql_err($node, $db, 'SET aibackup.max_rate = 0', extra_params => [ '-U', 'tenant' ]);
isnt($ret, 0, 'a non-superuser cannot lift the limit');
like($err, qr/permission denied to set parameter "aibackup.max_rate"/, 'with PostgreSQL\'s error');
($ret, $out, $err) = psql_err($node, $db, 'SET aibackup.max_rate = -1');
like($err, qr/-1 is outside the valid range for parameter "aibackup.max_rate"/, 'a negative rate is refused');

# right after a WAL switch the insert position lies past the next segment's
# page header, not yet written: the backup's WAL flush must not ask for it
($ret, $out, $err) = backup_now($node, $db, "ARRAY['small']::regclass[]",
	pre => 'SELECT pg_switch_wal()');
is($ret, 0, 'a backup right after pg_switch_wal() (its WAL flush stops at what was written)')
  or diag($err);

$node->stop;
remove_tree($work);
done_testing();
