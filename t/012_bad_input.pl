# Bad input: each gives a clear error and changes nothing — unknown backup
# ids, backups without the table, names that do not parse, missing target
# schemas, wrong S3 settings (secret, access key, bucket, endpoint), objects
# altered, truncated, corrupted or deleted behind our back, manifests gone,
# read-only transactions, missing privileges.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA;
use Time::HiRes qw(time);
use AibackupTest;
use AibackupData;

my $prefix = "t012-$$";
my $node = new_cluster('bad_input', prefix => $prefix);
my $work = "$ENV{AIBACKUP_TEST_WORK}/t012-$$";
mkdir $work;
my $db = 'bad';
my ($ret, $out, $err);

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, <<'SQL');
CREATE EXTENSION aibackup;
CREATE TABLE t1 (id int, v text);
INSERT INTO t1 SELECT g, 'v' || g FROM generate_series(1, 100) g;
CREATE TABLE t_alt (LIKE t1);
CREATE TABLE t_short (LIKE t1);
CREATE TABLE t_mangled (LIKE t1);
CREATE TABLE t_del (LIKE t1);
CREATE TABLE t_rot (LIKE t1);
INSERT INTO t_alt SELECT * FROM t1;
INSERT INTO t_mangled SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
INSERT INTO t_short SELECT * FROM t_mangled;
INSERT INTO t_rot SELECT * FROM t_mangled;
INSERT INTO t_del SELECT * FROM t1;
CREATE VIEW v1 AS SELECT * FROM t1;
SQL

my $id;
($ret, $id, $err) = backup_now($node, $db);
is($ret, 0, 'a backup to restore from (setup)') or diag($err);

# the tables are damaged: "unchanged" below means still damaged
$node->safe_psql($db, "UPDATE $_ SET v = 'damaged' WHERE id % 2 = 0") for qw(t1 t_alt t_short t_mangled t_del t_rot);
my %cs = map { ($_ => checksum($node, $db, $_)) } qw(t1 t_alt t_short t_mangled t_del t_rot);
$node->safe_psql($db, 'CREATE TABLE t_after (id int); INSERT INTO t_after VALUES (1)');
$cs{t_after} = checksum($node, $db, 't_after');

# restore_fails(source, id, target, regexp, name, [table to check, sql prefix])
sub restore_fails
{
	my ($src, $bid, $target, $re, $name, $check, $pre) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $sql = restore_sql($src, $bid, $target);
	$sql = "$pre; $sql" if $pre;
	my ($r, $o, $e) = psql_err($node, $db, $sql, timeout => 300);
	isnt($r, 0, "$name: restore fails");
	like($e, $re, "$name: the error says why") or diag("got: $e");
	for my $t (@{ $check // [] })
	{
		is(checksum($node, $db, $t), $cs{$t}, "$name: $t is unchanged");
	}
	return $e;
}

# ------------------------------------------------------------------ backup ids and names
restore_fails('t1', '19990101T000000Z', undef,
	qr/backup "?19990101T000000Z"? (was )?not found|19990101T000000Z.*(does not exist|not found|no such)/i,
	'an unknown backup id', ['t1']);
restore_fails('t1', 'not-a-backup-id', undef, qr/not-a-backup-id|invalid backup id/i,
	'a malformed backup id', ['t1']);
restore_fails('t_after', $id, undef,
	qr/t_after.*(not found|not in|does not contain|no table|not contain)|(not found|does not contain|no table).*t_after/i,
	'a backup without that table', ['t_after']);
restore_fails('never_existed', undef, undef, qr/never_existed/,
	'a table that no backup holds');
restore_fails('a.b.c.d', $id, undef, qr/improper|cross-database|too many|invalid|does not parse|syntax/i,
	'a source name with too many dots', ['t1']);
restore_fails('"unterminated', $id, undef, qr/unterminated|invalid name syntax|quot|syntax/i,
	'a source name with an unterminated quote', ['t1']);
restore_fails('', $id, undef, qr/empty|invalid|syntax|zero-length|does not parse/i,
	'an empty source name');
restore_fails('t1', $id, 'x.y.z.w', qr/improper|cross-database|too many|invalid|does not parse|syntax/i,
	'a target name that does not parse', ['t1']);
restore_fails('t1', $id, 'nosuch_schema.t1', qr/schema "nosuch_schema" does not exist/,
	'a target in a schema that does not exist', ['t1']);
restore_fails('t1', $id, 'v1', qr/v1.*(not a table|is a view|cannot)|(not a table|view).*v1/i,
	'a target that is a view', ['t1']);

($ret, $out, $err) = $node->psql($db, "SELECT aibackup_backup_now(ARRAY['nosuch']::regclass[])");
like($err, qr/relation "nosuch" does not exist/, 'backup of a table list naming a missing table fails at the cast');

# ------------------------------------------------------------------ read-only transactions
restore_fails('t1', $id, undef, qr/read-only transaction/, 'BEGIN READ ONLY', ['t1'], 'BEGIN READ ONLY');
restore_fails('t1', $id, undef, qr/read-only transaction/, 'SET TRANSACTION READ ONLY', ['t1'],
	'BEGIN; SET TRANSACTION READ ONLY');
restore_fails('t1', $id, 'brand_new', qr/read-only transaction/, 'default_transaction_read_only, new target',
	['t1'], 'SET default_transaction_read_only = on');
is($node->safe_psql($db, "SELECT to_regclass('brand_new') IS NULL"), 't', 'no table was created');

# ------------------------------------------------------------------ privileges
$node->safe_psql($db, 'CREATE ROLE plain LOGIN');
for my $f ('aibackup_restore_table(\'t1\')', 'aibackup_list_backups()', 'aibackup_list_tables()',
	'aibackup_backup_now()')
{
	my ($fname) = $f =~ /^(\w+)/;
	($ret, $out, $err) = $node->psql($db, "SELECT $f", extra_params => [ '-U', 'plain' ]);
	like($err, qr/permission denied for function $fname/, "$fname is not granted to PUBLIC");
}
is(checksum($node, $db, 't1'), $cs{t1}, 't1 is unchanged after the refused calls');

# ------------------------------------------------------------------ a folder without a manifest
{
	my $fake = '20300101T000000Z';
	my $f = "$work/fake.csv.gz";
	system("printf 'id,v\\n1,fake\\n' | gzip -c > '$f'") == 0 or die;
	s3_put($f, obj_key($prefix, $db, $fake, 'public', 't1'));
	restore_fails('t1', $fake, undef, qr/\Q$fake\E/, 'a backup id whose folder has no manifest', ['t1']);
	ok(!grep({ $_ eq $fake } split /\n/, $node->safe_psql($db, 'SELECT backup_id FROM aibackup_list_backups()')),
		'and it is not listed as a backup');
}

# ------------------------------------------------------------------ objects changed behind our back
{
	# altered: another valid gzip'd CSV, the manifest untouched
	my $f = "$work/other.csv.gz";
	system("printf 'id,v\\n1,other\\n2,other\\n' | gzip -c > '$f'") == 0 or die;
	is(s3_put($f, obj_key($prefix, $db, $id, 'public', 't_alt')), 0, 'an object is replaced by another gzip file');
	restore_fails('t_alt', $id, undef, qr/corrupt|changed|damaged|checksum|SHA-?256|hash|digest/i,
		'an altered object', ['t_alt']);
	restore_fails('t_alt', $id, 'new_from_altered', qr/corrupt|changed|damaged|checksum|SHA-?256|hash|digest/i,
		'an altered object into a new table');
	is($node->safe_psql($db, "SELECT to_regclass('new_from_altered') IS NULL"), 't',
		'no table is left behind from the altered object');

	# same size, same rows, still a valid gzip file (only the gzip header's
	# MTIME differs, which gunzip does not check): only the SHA-256 tells
	my $g = "$work/t1.csv.gz";
	s3_get(obj_key($prefix, $db, $id, 'public', 't1'), $g);
	my $gb = slurp_file($g);
	my $g_orig = "$work/t1-orig.csv.gz";
	system("cp '$g' '$g_orig'") == 0 or die;
	my $mtime = substr($gb, 4, 4) eq "\x01\x02\x03\x04" ? "\x05\x06\x07\x08" : "\x01\x02\x03\x04";
	substr($gb, 4, 4) = $mtime;
	open my $gfh, '>', $g or die;
	binmode $gfh;
	print $gfh $gb;
	close $gfh;
	is(system("gzip -t '$g'"), 0, 'the re-stamped object is still a valid gzip file');
	s3_put($g, obj_key($prefix, $db, $id, 'public', 't1'));
	restore_fails('t1', $id, undef, qr/SHA-?256|checksum|hash|digest/i,
		'an object of the right size whose bytes changed (hash check)', ['t1']);
	is(s3_put($g_orig, obj_key($prefix, $db, $id, 'public', 't1')), 0, 'the original object is put back');

	# truncated and corrupted objects whose hashes are made to match in the manifest
	my ($m) = manifest($prefix, $db, $id);
	ok($m, 'the manifest downloads');
	my %mt = map { ("$_->{schema}.$_->{name}" => $_) } @{ $m->{tables} // [] };

	my $orig = "$work/t_short.csv.gz";
	s3_get(obj_key($prefix, $db, $id, 'public', 't_short'), $orig);
	my $bytes = slurp_file($orig);
	ok(length($bytes) > 1000, 'the object to truncate is large enough');
	my $half = substr($bytes, 0, int(length($bytes) / 2));
	open my $fh, '>', "$work/trunc.gz" or die;
	binmode $fh;
	print $fh $half;
	close $fh;
	s3_put("$work/trunc.gz", obj_key($prefix, $db, $id, 'public', 't_short'));
	$mt{'public.t_short'}{sha256} = Digest::SHA::sha256_hex($half);
	$mt{'public.t_short'}{compressed_bytes} = length($half);

	s3_get(obj_key($prefix, $db, $id, 'public', 't_mangled'), $orig);
	$bytes = slurp_file($orig);
	my $mid = int(length($bytes) / 2);
	substr($bytes, $mid, 64) = 'X' x 64;
	open $fh, '>', "$work/corrupt.gz" or die;
	binmode $fh;
	print $fh $bytes;
	close $fh;
	s3_put("$work/corrupt.gz", obj_key($prefix, $db, $id, 'public', 't_mangled'));
	$mt{'public.t_mangled'}{sha256} = Digest::SHA::sha256_hex($bytes);
	$mt{'public.t_mangled'}{compressed_bytes} = length($bytes);
	is(put_manifest($prefix, $db, $id, $m), 0, 'the manifest is rewritten with matching hashes');

	restore_fails('t_short', $id, undef, qr/truncat|unexpected end|incomplete|premature|corrupt|gzip|inflate/i,
		'a truncated object', ['t_short']);
	# the garbage that inflates from a damaged deflate stream must not reach
	# the user as a COPY data error: the object is what is wrong
	restore_fails('t_mangled', $id, undef, qr/corrupt|gzip|inflate|CRC/i,
		'a corrupted object (hash made to match)', ['t_mangled']);

	# bit rot in the middle of an object, manifest untouched: the SHA-256 (or
	# gzip) check must be what the user is told, even though the damage
	# comes long before the end of the stream
	s3_get(obj_key($prefix, $db, $id, 'public', 't_rot'), $orig);
	$bytes = slurp_file($orig);
	substr($bytes, int(length($bytes) / 3), 64) = 'X' x 64;
	open $fh, '>', "$work/rot.gz" or die;
	binmode $fh;
	print $fh $bytes;
	close $fh;
	s3_put("$work/rot.gz", obj_key($prefix, $db, $id, 'public', 't_rot'));
	restore_fails('t_rot', $id, undef, qr/corrupt|SHA-?256|checksum/i,
		'an object damaged in the middle', ['t_rot']);

	is(s3_rm(obj_key($prefix, $db, $id, 'public', 't_del')), 0, 'an object is deleted');
	restore_fails('t_del', $id, undef, qr/NoSuchKey|not found|missing|does not exist|404|no such/i,
		'a deleted object', ['t_del']);

	# an object in a format or compression this version does not read
	# (a newer version's) is refused before anything is changed
	$mt{'public.t1'}{compression} = 'zstd';
	is(put_manifest($prefix, $db, $id, $m), 0, 'the manifest says t1 is zstd-compressed');
	restore_fails('t1', $id, undef, qr/table "public.t1" of backup "\Q$id\E" is stored as csv compressed with zstd, which this version of aibackup cannot read/,
		'a table stored with another compression', ['t1']);
	$mt{'public.t1'}{compression} = 'gzip';
	$mt{'public.t1'}{format} = 'parquet';
	is(put_manifest($prefix, $db, $id, $m), 0, 'the manifest says t1 is parquet');
	restore_fails('t1', $id, undef, qr/is stored as parquet compressed with gzip/,
		'a table stored in another format', ['t1']);
	$mt{'public.t1'}{format} = 'csv';
	is(put_manifest($prefix, $db, $id, $m), 0, 'the manifest is put back');

	# the untouched table of the same backup still restores
	is($node->safe_psql($db, restore_sql('t1', $id)), '100', 'an untouched table of that backup still restores');
	$node->safe_psql($db, "UPDATE t1 SET v = 'damaged again'");
	$cs{t1} = checksum($node, $db, 't1');
}

# ------------------------------------------------------------------ manifest deleted
{
	my $id2;
	($ret, $id2, $err) = backup_now($node, $db, "ARRAY['t1']::regclass[]");
	is($ret, 0, 'another backup (setup)') or diag($err);
	is(s3_rm("$prefix/$db/$id2/manifest.json"), 0, 'its manifest is deleted');
	restore_fails('t1', $id2, undef, qr/\Q$id2\E/, 'a backup whose manifest is gone', ['t1']);
	# index.json still summarizes it until the next backup rewrites the
	# index, which keeps only entries whose manifest is there
	($ret, $out, $err) = backup_now($node, $db, "ARRAY['t1']::regclass[]");
	is($ret, 0, 'the next backup') or diag($err);
	ok(!grep({ $_ eq $id2 } split /\n/, $node->safe_psql($db, 'SELECT backup_id FROM aibackup_list_backups()')),
		'after it, the backup without its manifest is no longer listed');
}

# ------------------------------------------------------------------ S3 settings wrong
my $log_offset = -s $node->logfile;
my $bad_secret = 'Wrong-Secret-ABC987xyz';
set_conf($node, 'aibackup.s3_secret_access_key' => $bad_secret);
sleep 1;
($ret, $out, $err) = backup_now($node, $db, undef, timeout => 300);
isnt($ret, 0, 'a wrong secret key: backup fails');
like($err, qr/SignatureDoesNotMatch/, 'a wrong secret key: the error says SignatureDoesNotMatch') or diag($err);
unlike($err, qr/\Q$bad_secret\E|\Q$ENV{S3_SECRET_KEY}\E/, 'a wrong secret key: the error does not contain the secret');
($ret, $out, $err) = psql_err($node, $db, 'SELECT * FROM aibackup_list_backups()', timeout => 300);
like($err, qr/SignatureDoesNotMatch/, 'a wrong secret key: list_backups fails too');
restore_fails('t1', $id, undef, qr/SignatureDoesNotMatch/, 'a wrong secret key', ['t1']);
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/\Q$bad_secret\E/, 'a wrong secret key: the secret is not in the server log');
reset_conf($node, 'aibackup.s3_secret_access_key');

set_conf($node, 'aibackup.s3_access_key_id' => 'NoSuchAccessKey');
sleep 1;
($ret, $out, $err) = backup_now($node, $db, undef, timeout => 300);
isnt($ret, 0, 'a wrong access key: backup fails');
like($err, qr/InvalidAccessKeyId|access ?denied|SignatureDoesNotMatch|access key/i, 'a wrong access key: the error says so')
  or diag($err);
restore_fails('t1', $id, undef, qr/InvalidAccessKeyId|access ?denied|SignatureDoesNotMatch|access key/i,
	'a wrong access key', ['t1']);
reset_conf($node, 'aibackup.s3_access_key_id');

set_conf($node, 'aibackup.s3_access_key_id' => '', 'aibackup.s3_secret_access_key' => '');
sleep 1;
($ret, $out, $err) = backup_now($node, $db, undef, timeout => 300);
isnt($ret, 0, 'no credentials (settings empty, none in the environment): backup fails');
like($err, qr/credential|aibackup\.s3_access_key_id|aibackup\.s3_secret_access_key|AWS_ACCESS_KEY_ID/i,
	'no credentials: the error says so') or diag($err);
restore_fails('t1', $id, undef, qr/credential|aibackup\.s3_access_key_id|aibackup\.s3_secret_access_key|AWS_ACCESS_KEY_ID/i,
	'no credentials', ['t1']);
reset_conf($node, 'aibackup.s3_access_key_id', 'aibackup.s3_secret_access_key');

set_conf($node, 'aibackup.s3_bucket' => '');
($ret, $out, $err) = backup_now($node, $db);
isnt($ret, 0, 'no bucket set: backup fails');
like($err, qr/aibackup\.s3_bucket/, 'no bucket set: the error names aibackup.s3_bucket') or diag($err);
restore_fails('t1', $id, undef, qr/aibackup\.s3_bucket/, 'no bucket set', ['t1']);
($ret, $out, $err) = $node->psql($db, 'SELECT * FROM aibackup_list_backups()');
like($err, qr/aibackup\.s3_bucket/, 'no bucket set: list_backups names the setting');
reset_conf($node, 'aibackup.s3_bucket');

set_conf($node, 'aibackup.s3_bucket' => 'no-such-bucket-t012');
($ret, $out, $err) = backup_now($node, $db, undef, timeout => 300);
isnt($ret, 0, 'a bucket that does not exist: backup fails');
like($err, qr/NoSuchBucket|no-such-bucket-t012/, 'a bucket that does not exist: the error says so') or diag($err);
restore_fails('t1', $id, undef, qr/NoSuchBucket|no-such-bucket-t012|not found/i, 'a bucket that does not exist', ['t1']);
reset_conf($node, 'aibackup.s3_bucket');

set_conf($node, 'aibackup.s3_endpoint' => 'http://127.0.0.1:1');
{
	my $t0 = time();
	($ret, $out, $err) = backup_now($node, $db, undef, timeout => 300);
	my $el = time() - $t0;
	isnt($ret, 0, 'an unreachable endpoint: backup fails');
	like($err, qr/127\.0\.0\.1:1\b|connect|connection refused/i, 'an unreachable endpoint: the error names the endpoint or connection')
	  or diag($err);
	diag(sprintf('unreachable endpoint: backup failed after %.1f s', $el));
	restore_fails('t1', $id, undef, qr/127\.0\.0\.1:1\b|connect|connection refused/i, 'an unreachable endpoint', ['t1']);
}
reset_conf($node, 'aibackup.s3_endpoint');

# back to good settings: everything works again
is($node->safe_psql($db, restore_sql('t1', $id)), '100', 'with good settings again, restore works');

$node->stop;
done_testing();
