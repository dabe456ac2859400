# A large table: more than 50 MB compressed, so the object goes up in
# several parts (an S3 multipart ETag), restores identical, and the
# backend's memory stays bounded while backing it up and restoring it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use AibackupTest;
use AibackupData;

my $prefix = "t013-$$";
my $node = new_cluster('large', prefix => $prefix,
	conf => "max_wal_size = 1GB\ncheckpoint_timeout = 30min\nshared_buffers = 16MB\n");
my $db = 'large';
# shared_buffers is small so that the shared memory a backend touches (which
# /proc counts in its resident set) does not hide what it allocates itself
my $mem_bound_kb = 150 * 1024;
my ($ret, $out, $err);

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION aibackup');

# ~1M rows of md5 hex text: about 140 MB of CSV that gzip can only shrink
# to a bit over half (hex digits carry 4 bits a byte)
my $t0 = time();
$node->safe_psql($db, <<'SQL');
CREATE TABLE big (id int, a text, b text, c text, d text);
INSERT INTO big
SELECT g, md5(random()::text), md5(random()::text), md5(random()::text), md5(random()::text)
  FROM generate_series(1, 1000000) g;
SQL
diag(sprintf('generated the table in %.1f s', time() - $t0));
my $cs = fast_checksum($node, $db, 'big', 'id');

# peak memory of one backend, from /proc (kB)
sub proc_status
{
	my ($pid) = @_;
	my %s;
	open my $fh, '<', "/proc/$pid/status" or return {};
	while (<$fh>)
	{
		$s{$1} = $2 if /^(\w+):\s+(\d+)\s+kB/;
	}
	close $fh;
	return \%s;
}

# ------------------------------------------------------------------ backup
my $sess = $node->background_psql($db, timeout => 600);
my $pid = $sess->query_safe('SELECT pg_backend_pid()');
chomp $pid;
my $before = proc_status($pid);
AibackupData::_next_second();
$t0 = time();
my $id = $sess->query("SELECT aibackup_backup_now(ARRAY['big']::regclass[])");
my $el = time() - $t0;
chomp $id;
like($id, qr/^\d{8}T\d{6}Z$/, 'the backup of a large table succeeds and returns an id')
  or diag($sess->{stderr});
my $after = proc_status($pid);
$sess->quit;
diag(sprintf('backup: %.1f s; backend VmHWM %d kB (before %d kB), RssAnon now %d kB, RssShmem %d kB',
	$el, $after->{VmHWM} // -1, $before->{VmHWM} // -1, $after->{RssAnon} // -1, $after->{RssShmem} // -1));
ok(defined $after->{VmHWM}, 'the backend\'s /proc status is readable');
cmp_ok($after->{VmHWM} // 1e12, '<', $mem_bound_kb,
	"the backend's peak memory during the backup stays below " . ($mem_bound_kb / 1024) . ' MB');

# ------------------------------------------------------------------ the object
my $key = obj_key($prefix, $db, $id, 'public', 'big');
my $head = s3_head($key);
ok($head, 'the object exists');
my $size = $head->{ContentLength} // 0;
diag(sprintf('object: %.1f MB, ETag %s', $size / 1048576, $head->{ETag} // '?'));
cmp_ok($size, '>=', 50 * 1024 * 1024, 'it is at least 50 MB compressed');
like($head->{ETag} // '', qr/-\d+"?$/, 'it was uploaded in parts (multipart ETag)');
my ($rows, $cbytes) = split /\|/, $node->safe_psql($db,
	"SELECT rows, compressed_bytes FROM aibackup_list_tables('$id') WHERE table_name = 'big'");
is($rows, 1000000, 'list_tables shows its row count');
is($cbytes, $size, 'and its compressed size');

# ------------------------------------------------------------------ restore
$sess = $node->background_psql($db, timeout => 600);
$pid = $sess->query_safe('SELECT pg_backend_pid()');
chomp $pid;
$t0 = time();
my $n = $sess->query(restore_sql('big', $id, 'big_restored'));
$el = time() - $t0;
chomp $n;
is($n, 1000000, 'restore into a new table loads every row') or diag($sess->{stderr});
$after = proc_status($pid);
$sess->quit;
diag(sprintf('restore: %.1f s; backend VmHWM %d kB', $el, $after->{VmHWM} // -1));
cmp_ok($after->{VmHWM} // 1e12, '<', $mem_bound_kb,
	"the backend's peak memory during the restore stays below " . ($mem_bound_kb / 1024) . ' MB');
is(fast_checksum($node, $db, 'big_restored', 'id'), $cs, 'the restored table is identical');

$node->stop;
done_testing();
