# Large objects: backed up (their two catalogs, under the backup's one
# snapshot) and restored with aibackup_restore_large_objects(), all or the
# listed OIDs, with their contents (many pages, a sparse one, an empty
# one), owners and privileges; an OID the backup does not have changes
# nothing; restore.sql brings them into an empty database with psql alone.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path remove_tree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;
use AibackupData;

my $prefix = "t044-$$";
my $node = new_cluster('largeobjects', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $db = 'lo';
my ($ret, $out, $err);

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, <<'SQL');
CREATE EXTENSION aibackup;
CREATE ROLE loowner;
CREATE ROLE loreader;
CREATE TABLE docs (id int PRIMARY KEY, body oid);
-- small, many pages (10 000 bytes of varied content), empty, sparse
SELECT lo_from_bytea(40001, 'hello');
SELECT lo_from_bytea(40002, decode(string_agg(lpad(to_hex(g % 256), 2, '0'), ''), 'hex'))
  FROM generate_series(1, 10000) g;
SELECT lo_create(40003);
SELECT lo_create(40004);
SELECT lo_put(40004, 100000, 'far out');
-- grown to 4096 bytes by truncation: its last page is empty
SELECT lo_create(40005);
BEGIN;
SELECT lo_truncate(lo_open(40005, 131072), 4096);
COMMIT;
ALTER LARGE OBJECT 40002 OWNER TO loowner;
GRANT SELECT ON LARGE OBJECT 40002 TO loreader;
GRANT SELECT, UPDATE ON LARGE OBJECT 40001 TO loreader WITH GRANT OPTION;
INSERT INTO docs VALUES (1, 40001), (2, 40002);
SQL

# what a large object is, as text: its size, contents, owner, privileges
sub lo_state
{
	my ($dbname, $where) = @_;
	$where //= 'true';
	return $node->safe_psql($dbname,
		"SELECT string_agg(format('%s %s %s %s %s', m.oid, length(lo_get(m.oid)), md5(lo_get(m.oid)), "
		  . "pg_get_userbyid(m.lomowner), coalesce(m.lomacl::text, '-')), E'\\n' ORDER BY m.oid) "
		  . "FROM pg_largeobject_metadata m WHERE $where");
}
my $before = lo_state($db);
like($before, qr/^40004 100007 /m, 'the sparse one is 100 007 bytes long');
like($before, qr/^40005 4096 /m, 'the one grown by truncation 4 096');

($ret, $out, $err) = backup_now($node, $db);
is($ret, 0, 'a backup') or diag($err);
my $id = $out;
my ($m) = manifest($prefix, $db, $id);
my %t = map { ("$_->{schema}.$_->{name}" => $_) } @{ $m->{tables} // [] };
is($t{'pg_catalog.pg_largeobject_metadata'}{rows}, 5, 'the manifest has the five large objects');
is($m->{large_object_page_size}, 2048, 'their page size');
is(join(',', sort map { $_->{name} } @{ $m->{large_object_owners} // [] }), 'loowner,postgres',
	'and their owners, by name');
ok(($t{'pg_catalog.pg_largeobject'}{rows} // 0) >= 7, 'and their pages');
ok(!defined $t{'pg_catalog.pg_largeobject'}{ddl}, 'with no definition of the catalog');

# --- all of them, gone ---
$node->safe_psql($db, 'SELECT lo_unlink(oid) FROM pg_largeobject_metadata');
($ret, $out, $err) = $node->psql($db, 'SELECT aibackup_restore_large_objects()');
is($ret, 0, 'restored') or diag($err);
is($out, 5, 'five of them');
is(lo_state($db), $before, 'with their contents, owners and privileges');

# --- one of them, changed; the others untouched ---
$node->safe_psql($db, "SELECT lo_put(40001, 0, 'HELLO'); SELECT lo_put(40002, 0, 'x')");
my $other = lo_state($db, 'm.oid = 40002');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_large_objects('$id', '{40001}')");
is($ret, 0, 'one restored by OID') or diag($err);
is(lo_state($db, 'm.oid = 40001'), lo_state_of_before(40001), 'it is as it was');
is(lo_state($db, 'm.oid = 40002'), $other, 'and the other is not touched');

sub lo_state_of_before
{
	my ($oid) = @_;
	my ($line) = grep { /^$oid / } split /\n/, $before;
	return $line;
}

# --- an OID the backup does not have: nothing changes ---
$node->safe_psql($db, "SELECT lo_put(40001, 0, 'HELLO')");
my $now = lo_state($db);
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_large_objects('$id', '{40001,99999}')");
like($err, qr/backup "$id" has no large object 99999/, 'an OID the backup does not have is an error');
is(lo_state($db), $now, 'and nothing changed');

# --- a backup without them (by a role that may not read them) is passed over ---
$node->safe_psql($db, "CREATE ROLE backer LOGIN; GRANT EXECUTE ON FUNCTION aibackup_backup_now(regclass[], boolean) TO backer; "
	  . "GRANT SELECT ON docs TO backer");
($ret, $out, $err) = backup_now($node, $db, undef, extra_params => [ '-U', 'backer' ]);
is($ret, 0, 'a backup by a role that may not read large objects') or diag($err);
my ($m2) = manifest($prefix, $db, $out);
ok(!grep({ $_->{schema} eq 'pg_catalog' } @{ $m2->{tables} // [] }), 'holds neither of their catalogs');
$node->safe_psql($db, 'SELECT lo_unlink(40003)');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_large_objects(NULL, '{40003}')");
is($ret, 0, 'a restore without a backup id takes the newest backup that has them') or diag($err);
like($err, qr/from backup "$id"/, 'the first one');

# --- who may ---
$node->safe_psql($db, "CREATE ROLE someone LOGIN; GRANT EXECUTE ON FUNCTION aibackup_restore_large_objects(text, oid[]) TO someone");
($ret, $out, $err) = $node->psql($db, 'SELECT aibackup_restore_large_objects()', extra_params => [ '-U', 'someone' ]);
like($err, qr/permission denied to restore large objects/, 'a granted role that cannot read everything may not');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('pg_catalog.pg_largeobject')");
like($err, qr/is a system catalog, not a table to restore.*\nHINT:  Restore the large objects with aibackup_restore_large_objects/s,
	'aibackup_restore_table() points to it');

# --- restore.sql, in an empty database ---
my $dir = "$ENV{AIBACKUP_TEST_WORK}/t044";
remove_tree($dir);
make_path($dir);
($ret, $out, $err) = aws_cli('s3', 'cp', '--quiet', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/$db/$id/", $dir);
is($ret, 0, 'the backup downloaded') or diag($err);
system("gunzip $dir/*.csv.gz");
$node->safe_psql('postgres', 'CREATE DATABASE lo_copy');
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ 'bash', '-c', "cd '$dir' && psql -X -q -d '" . $node->connstr('lo_copy') . "' -f restore.sql" ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'psql -f restore.sql') or diag($stderr);
my $bytes = sub {
	my ($dbname) = @_;
	return $node->safe_psql($dbname,
		"SELECT string_agg(oid || ' ' || md5(lo_get(oid)), ',' ORDER BY oid) FROM pg_largeobject_metadata");
};
is($bytes->('lo_copy'), join(',', map { (split / /)[0] . ' ' . (split / /)[2] } split /\n/, $before),
	'restore.sql brings back every large object\'s contents');
is($node->safe_psql('lo_copy', 'SELECT count(*) FROM docs'), 2, 'and the tables');

$node->stop;
done_testing();
