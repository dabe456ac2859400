# S3's limits and errors that belong to one table: a table whose key would
# be longer than S3's 1024 bytes, or whose object S3 refuses (a part beyond
# the store's part limit, an object too large), fails alone, on every run,
# while the other tables are backed up and the backup is 'partial'.  What
# is not one table's (AccessDenied, a manifest key too long) still fails
# the whole backup.  The part limit itself (10000 parts of 16 MB or more)
# is reached in test/s3/test_s3_limits.c, with the core built for 3 parts.
#
# This file is UTF-8 without "use utf8": its literals are UTF-8 bytes, which
# is what psql sends and prints with client_encoding UTF8.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Encode qw(encode_utf8);
use AibackupTest;

$ENV{PGCLIENTENCODING} = 'UTF8';

# A prefix of 950 bytes: keys of this layout are then
# 950 + "/postgres/" + backup id + "/" + "public." + name + ".csv.gz",
# 991 bytes plus the encoded table name; the manifest's is 990.
my $base = "t019-$$/";
my $prefix = $base . ('p' x (950 - length($base)));
is(length($prefix), 950, 'a prefix of 950 bytes');

my $node = new_cluster('s3limits', prefix => $prefix, conf => "aibackup.enabled = off\n");
my ($ret, $out, $err);

my $long = 'é' x 30;			# 60 bytes, 180 once percent-encoded
my $at_limit = 'b' x 33;		# key of exactly 1024 bytes
my $over_limit = 'c' x 34;		# 1025 bytes
$node->safe_psql('postgres', qq{
	CREATE EXTENSION aibackup;
	CREATE TABLE ok1 (id int PRIMARY KEY, v text);
	INSERT INTO ok1 SELECT i, 'row ' || i FROM generate_series(1, 500) i;
	CREATE TABLE ok2 (id int);
	INSERT INTO ok2 SELECT generate_series(1, 20);
	CREATE TABLE "$long" (id int);
	INSERT INTO "$long" VALUES (1);
	CREATE TABLE "$at_limit" (id int);
	INSERT INTO "$at_limit" VALUES (1), (2);
	CREATE TABLE "$over_limit" (id int);
	INSERT INTO "$over_limit" VALUES (1);
});

# the manifest of backup $id under $pfx, decoded
sub manifest
{
	my ($pfx, $id) = @_;
	my $file = "$ENV{AIBACKUP_TEST_WORK}/t019-manifest-$id.json";
	unlink $file;
	my ($r, undef, $e) = aws_cli('s3', 'cp', '--quiet',
		"s3://$ENV{S3_BUCKET}/$pfx/postgres/$id/manifest.json", $file);
	return undef if $r != 0 || !-f $file;
	return decode_json(slurp_file($file));
}

# { "schema.name" => { status, error, ... } } of a manifest, names as UTF-8 bytes
sub tables_of
{
	my ($m) = @_;
	return { map { (encode_utf8($_->{schema}) . '.' . encode_utf8($_->{name}) => $_) }
		  @{ $m->{tables} } };
}

# ------------------------------------------------------------------
# A key over 1024 bytes fails its table alone, on every run
# ------------------------------------------------------------------
my @ids;
for my $run (1, 2)
{
	$ret = $node->psql('postgres', 'SELECT aibackup_backup_now()',
		stdout => \$out, stderr => \$err);
	is($ret, 0, "run $run: the backup itself succeeds") or diag($err);
	like($out, qr/^\d{8}T\d{6}Z$/, "run $run: it returns a backup id");
	push @ids, $out;
	like($err, qr/WARNING:  aibackup: table "public\.$long" was not backed up: the S3 key of table "public\.$long" would be 1171 bytes long, more than S3's limit of 1024 bytes/,
		"run $run: a WARNING names the table and the key's length");

	my $m = manifest($prefix, $out);
	ok(defined $m, "run $run: the manifest was written (its key is 990 bytes)");
	$m //= { tables => [] };
	is($m->{status}, 'partial', "run $run: the backup is partial");
	my $t = tables_of($m);
	is(join(',', map { "$_=" . ($t->{$_}{status} // 'missing') }
			"public.ok1", "public.ok2", "public.$at_limit"),
		"public.ok1=ok,public.ok2=ok,public.$at_limit=ok",
		"run $run: the other tables are ok, one with a key of exactly 1024 bytes");
	is(length($t->{"public.$at_limit"}{object_key} // ''), 1024,
		"run $run: that key is 1024 bytes long");
	is($t->{"public.$long"}{status}, 'failed', "run $run: the table with the long name failed");
	like(encode_utf8($t->{"public.$long"}{error} // ''),
		qr/^the S3 key of table "public\.$long" would be 1171 bytes long, more than S3's limit of 1024 bytes$/,
		"run $run: its manifest entry gives the key's length and the limit");
	is($t->{"public.$over_limit"}{status}, 'failed', "run $run: the table one byte over failed");
	like($t->{"public.$over_limit"}{error} // '', qr/would be 1025 bytes long/,
		"run $run: it is 1025 bytes long");
}

($ret, $out, $err) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/postgres/$ids[1]/");
my @keys = map { (split ' ', $_, 4)[3] } grep { /\S/ } split /\n/, $out;
is(scalar(@keys), 9, 'the second backup holds nine objects: three tables, their definitions, restore.sql, restore/public.sql and the manifest')
  or diag($out);

is($node->safe_psql('postgres',
		q{SELECT last_status || ' ' || (last_error LIKE '%more than S3''s limit of 1024 bytes%') FROM pg_stat_aibackup WHERE datname = 'postgres'}),
	'partial true', 'pg_stat_aibackup: the last backup is partial and says why');
is($node->safe_psql('postgres', qq{
		SELECT string_agg(table_name || '=' || last_status || '/' || consecutive_failures, ',' ORDER BY table_name)
		FROM pg_stat_aibackup_tables WHERE table_name IN ('ok1', '$long')}),
	"ok1=ok/0,$long=failed/2",
	'pg_stat_aibackup_tables: the long one failed twice in a row, ok1 never');

$node->safe_psql('postgres',
	"SELECT aibackup_restore_table('public.ok1', '$ids[1]', 'public.ok1_back')");
is($node->safe_psql('postgres',
		'SELECT count(*) FROM ok1 o FULL JOIN ok1_back b USING (id) WHERE o IS DISTINCT FROM b'),
	'0', 'ok1 restores from the partial backup, row for row');

# ------------------------------------------------------------------
# A prefix that leaves no room for the manifest fails the run at once
# ------------------------------------------------------------------
my $too_long = $base . ('q' x (1000 - length($base)));
$node->append_conf('postgresql.conf', "aibackup.s3_prefix = '$too_long'\n");
$node->reload;
$ret = $node->psql('postgres', 'SELECT aibackup_backup_now()', stdout => \$out, stderr => \$err);
isnt($ret, 0, 'with a prefix of 1000 bytes the backup fails');
like($err, qr/ERROR:  the S3 key of a backup manifest of database "postgres" would be 1040 bytes long, more than S3's limit of 1024 bytes/,
	'it says the manifest key would be too long');
like($err, qr/HINT:  Shorten aibackup\.s3_prefix\./, 'and what to shorten');
($ret, $out) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$too_long/");
is($out, '', 'nothing was written under that prefix');

# ------------------------------------------------------------------
# S3 errors, through the fault proxy: the object's own fail the table,
# the others the backup
# ------------------------------------------------------------------
my $fprefix = "t019f-$$";
$node->append_conf('postgresql.conf',
	"aibackup.s3_prefix = '$fprefix'\naibackup.s3_endpoint = '$ENV{S3_FAULT_ENDPOINT}'\n");
$node->reload;
my $http = HTTP::Tiny->new;

# add a rule to the proxy's
sub fault_add
{
	my ($rule) = @_;
	my $r = $http->request('POST', "$ENV{S3_FAULT_ENDPOINT}/__fault__",
		{ content => encode_json($rule) });
	return $r->{success};
}

# replace the proxy's rules by this one (none: undef)
sub fault
{
	my ($rule) = @_;
	$http->request('DELETE', "$ENV{S3_FAULT_ENDPOINT}/__fault__");
	return $rule ? fault_add($rule) : 1;
}

# about 20 MB once compressed: two parts of 16 MB
$node->safe_psql('postgres', q{
	CREATE TABLE victim (id int);
	INSERT INTO victim VALUES (1), (2), (3);
	CREATE TABLE big (id int, v text);
	INSERT INTO big SELECT i, md5(i || 'a') || md5(i || 'b') || md5(i || 'c') || md5(i || 'd')
		FROM generate_series(1, 300000) i;
});

# the fault proxy answers as S3 would for an object over its size limit
ok(fault({ method => 'PUT', path => 'public.victim.csv.gz', action => 'status',
			status => 400, code => 'EntityTooLarge',
			message => 'Your proposed upload exceeds the maximum allowed size',
			count => -1 }), 'the proxy refuses public.victim with EntityTooLarge');
# and as Swift's s3api with max_upload_part_num = 1 would to part 2
ok(fault_add({ method => 'PUT', path => 'public.big.csv.gz?partNumber=2', action => 'status',
			status => 400, code => 'InvalidArgument',
			message => 'Part number must be an integer between 1 and 1, inclusive',
			count => -1 }), 'and part 2 of public.big with InvalidArgument');

$ret = $node->psql('postgres', 'SELECT aibackup_backup_now()', stdout => \$out, stderr => \$err);
is($ret, 0, 'the backup succeeds though S3 refuses two of its tables') or diag($err);
my $fid = $out;
my $m = manifest($fprefix, $fid) // { tables => [] };
is($m->{status}, 'partial', 'it is partial');
my $t = tables_of($m);
is(join(',', map { "$_=" . ($t->{"public.$_"}{status} // 'missing') } qw(ok1 ok2 victim big)),
	'ok1=ok,ok2=ok,victim=failed,big=failed', 'the refused tables failed, the others are ok');
like($t->{'public.victim'}{error} // '', qr/^S3 PutObject of ".*public\.victim\.csv\.gz" failed: Your proposed upload exceeds the maximum allowed size$/,
	"victim's entry gives S3's answer");
like($t->{'public.big'}{error} // '', qr/^S3 UploadPart of ".*public\.big\.csv\.gz" failed: Part number must be an integer between 1 and 1, inclusive$/,
	"big's entry gives S3's answer");
($ret, $out) = aws_cli('s3api', 'list-multipart-uploads', '--bucket', $ENV{S3_BUCKET},
	'--prefix', "$fprefix/");
unlike($out, qr/public\.big/, "big's multipart upload was aborted");

# the same refusal as AccessDenied is not the table's: the run fails
fault({ method => 'PUT', path => 'public.victim.csv.gz', action => 'status',
		status => 403, code => 'AccessDenied', count => -1 });
my $nbackups = $node->safe_psql('postgres', 'SELECT count(*) FROM aibackup_list_backups()');
$ret = $node->psql('postgres', 'SELECT aibackup_backup_now(ARRAY[\'ok1\', \'victim\', \'ok2\']::regclass[])',
	stdout => \$out, stderr => \$err);
isnt($ret, 0, 'AccessDenied on one table fails the whole backup');
like($err, qr/ERROR:  S3 PutObject of ".*public\.victim\.csv\.gz" failed: .*\n.*S3 error code AccessDenied/,
	'with S3\'s answer');
is($node->safe_psql('postgres', 'SELECT count(*) FROM aibackup_list_backups()'), $nbackups,
	'and no backup was written');
fault(undef);

$node->stop;
done_testing();
