# Encodings: a LATIN1 database with non-ASCII names backs up and restores
# under its own names; the manifest and the keys are UTF-8 whatever the
# source; the objects stay in the source encoding, and a restore into a
# database of another encoding converts them (or fails cleanly); SQL_ASCII
# names are taken as UTF-8.
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
use Encode qw(encode_utf8);
use JSON::PP;
use AibackupTest;

$ENV{PGCLIENTENCODING} = 'UTF8';

my $prefix = "t018-$$";
my $node = new_cluster('encoding', prefix => $prefix, conf => "aibackup.enabled = off\n");
my ($ret, $out, $err);

# Database names are stored as the bytes of the session that created them:
# create them from a LATIN1 database so that they are LATIN1, as aibackup
# reads a database's name in that database's own encoding.
$node->safe_psql('postgres',
	"CREATE DATABASE latin1_home TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'");
$node->safe_psql('latin1_home',
	q{CREATE DATABASE "café" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'});
my $cafe = "caf\xe9";			# its name as the server stores it (LATIN1)
is($node->safe_psql('latin1_home', q{SELECT encode(convert_to(datname, 'LATIN1'), 'hex') || ' ' || pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'café'}),
	'636166e9 LATIN1', 'the database is named café in LATIN1');

$node->safe_psql($cafe, q{
	CREATE EXTENSION aibackup;
	CREATE SCHEMA "façade";
	CREATE TABLE "façade"."crème" (id int PRIMARY KEY, "déjà vu" text, "Größe" numeric);
	INSERT INTO "façade"."crème" VALUES
		(1, 'café', 1.5), (2, 'Straße', 2), (3, 'über', 3), (4, '¤ 10', 4),
		(5, 'ÿ', NULL), (6, NULL, 6), (7, '', 7);
	CREATE SEQUENCE "façade"."zähler";
	SELECT nextval('"façade"."zähler"');
});
my $data_q = q{SELECT id, "déjà vu", encode(convert_to("déjà vu", 'LATIN1'), 'hex'), "Größe" FROM "façade"."crème" ORDER BY id};
my $before = $node->safe_psql($cafe, $data_q);
like($before, qr/^1\|café\|636166e9\|1\.5$/m, 'the rows are stored in LATIN1 (é is E9)');

my $id = $node->safe_psql($cafe, 'SELECT aibackup_backup_now()');
like($id, qr/^\d{8}T\d{6}Z$/, "backup of café: $id");
is($node->safe_psql($cafe, 'SELECT status, tables FROM aibackup_list_backups()'), 'ok|1',
	'aibackup_list_backups() in café lists it, ok');

# --- the keys spell the names in UTF-8 ---
($ret, $out, $err) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/");
is($ret, 0, 'listing the bucket') or diag($err);
my $tkey = "$prefix/caf%C3%A9/$id/fa%C3%A7ade.cr%C3%A8me.csv.gz";
my $mkey = "$prefix/caf%C3%A9/$id/manifest.json";
like($out, qr/\Q$tkey\E$/m, 'the table key is the UTF-8 percent-encoding: caf%C3%A9/.../fa%C3%A7ade.cr%C3%A8me.csv.gz');
like($out, qr/\Q$mkey\E$/m, 'and so is the manifest key');
unlike($out, qr/caf%E9/, 'no key carries the LATIN1 bytes');

# --- the manifest is UTF-8 and spells every name right ---
my $mfile = "$ENV{AIBACKUP_TEST_WORK}/t018-manifest.json";
aws_cli('s3', 'cp', '--quiet', "s3://$ENV{S3_BUCKET}/$mkey", $mfile);
my $raw = slurp_file($mfile);
unlike($raw, qr/\xef\xbf\xbd/, 'the manifest has no U+FFFD replacement character');
my $m = decode_json($raw);		# decodes UTF-8: fails on invalid bytes
is(encode_utf8($m->{database}), 'café', 'manifest: database café');
is($m->{server_encoding}, 'LATIN1', 'manifest: server_encoding LATIN1');
my ($mt) = @{ $m->{tables} };
is(encode_utf8($mt->{schema}) . '.' . encode_utf8($mt->{name}), 'façade.crème', 'manifest: table façade.crème');
is(join(',', map { encode_utf8($_->{name}) } @{ $mt->{columns} }), 'id,déjà vu,Größe',
	'manifest: column names');
is($mt->{object_key}, $tkey, 'manifest: object_key is the UTF-8 key');
is(encode_utf8($m->{sequences}[0]{schema}) . '.' . encode_utf8($m->{sequences}[0]{name}), 'façade.zähler',
	'manifest: sequence name');

# --- the object is CSV in the source encoding ---
my $gz = "$ENV{AIBACKUP_TEST_WORK}/t018-creme.csv.gz";
unlink $gz, "$ENV{AIBACKUP_TEST_WORK}/t018-creme.csv";
($ret, undef, $err) = aws_cli('s3', 'cp', '--quiet', "s3://$ENV{S3_BUCKET}/$tkey", $gz);
is($ret, 0, 'aws s3 cp fetches the object') or diag($err);
is(system('gunzip', $gz), 0, 'gunzip reads it');
my $csv = slurp_file("$ENV{AIBACKUP_TEST_WORK}/t018-creme.csv");
like($csv, qr/^id,d\xe9j\xe0 vu,Gr\xf6\xdfe\n/, 'the header is in LATIN1');
like($csv, qr/^1,caf\xe9,1\.5$/m, 'é is the byte E9 in the data');
like($csv, qr/^4,\xa4 10,4$/m, '¤ is A4');
like($csv, qr/^5,\xff,$/m, 'ÿ is FF');
unlike($csv, qr/\xc3/, 'no UTF-8 sequences in the object');

# --- reading back in café ---
is($node->safe_psql($cafe, 'SELECT schema_name, table_name, rows FROM aibackup_list_tables()'),
	'façade|crème|7', 'aibackup_list_tables() shows façade.crème');
is($node->safe_psql($cafe, "SELECT schema_name || '.' || table_name || ' ' || last_status FROM pg_stat_aibackup_tables"),
	'façade.crème ok', 'pg_stat_aibackup_tables shows it too');

$node->safe_psql($cafe, q{DELETE FROM "façade"."crème" WHERE id > 3; UPDATE "façade"."crème" SET "déjà vu" = 'x'});
is($node->safe_psql($cafe, q{SELECT aibackup_restore_table('"façade"."crème"')}), '7',
	'restore in place by name finds the backup');
is($node->safe_psql($cafe, $data_q), $before, 'and the rows are identical');
is($node->safe_psql($cafe, qq{SELECT aibackup_restore_table('façade.crème', '$id', 'façade.zurück')}), '7',
	'restore into a new table with a LATIN1 name');
is($node->safe_psql($cafe, $data_q =~ s/crème/zurück/r), $before, 'identical rows there too');
is($node->safe_psql($cafe, q{SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '"façade"."zurück"'::regclass AND attnum > 0}),
	'id,déjà vu,Größe', 'with the column names right');

# --- a backup made in UTF8, restored after the database became LATIN1 ---
$node->safe_psql('postgres',
	"CREATE DATABASE wechsel TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'");
$node->safe_psql('wechsel', q{
	CREATE EXTENSION aibackup;
	CREATE TABLE "grüße" (id int, s text);
	INSERT INTO "grüße" VALUES (1, 'café'), (2, 'Straße ¤');
	CREATE TABLE euro (id int, s text);
	INSERT INTO euro VALUES (1, 'fine'), (2, '10 €');
});
my $id_u1 = $node->safe_psql('wechsel', 'SELECT aibackup_backup_now()');
$node->safe_psql('wechsel', q{CREATE TABLE "prix€" (id int)});
my $id_u2 = $node->safe_psql('wechsel', 'SELECT aibackup_backup_now()');
($ret, $out, $err) = aws_cli('s3', 'cp', '--quiet',
	"s3://$ENV{S3_BUCKET}/$prefix/wechsel/$id_u1/manifest.json", $mfile);
is(decode_json(slurp_file($mfile))->{server_encoding}, 'UTF8', 'a UTF8 database records UTF8');

$node->safe_psql('postgres', 'DROP DATABASE wechsel');
$node->safe_psql('latin1_home',
	"CREATE DATABASE wechsel TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'");
$node->safe_psql('wechsel', 'CREATE EXTENSION aibackup');

($ret, $out, $err) = $node->psql('wechsel', 'SELECT backup_id FROM aibackup_list_backups()');
is($out, "$id_u2\n$id_u1", 'in the LATIN1 database both backups are listed (the index holds no names)');
($ret, $out, $err) = $node->psql('wechsel', qq{SELECT aibackup_restore_table('grüße', '$id_u2')});
like($err, qr/WARNING:  ignoring manifest .*\Q$id_u2\E.*table name "prix\\u20AC" has no equivalent in encoding "LATIN1"/,
	'reading the one naming prix€ warns saying why');
like($err, qr/ERROR:  backup "\Q$id_u2\E" of database "wechsel" cannot be read/,
	'restoring from it by id is a clear error');
($ret, $out, $err) = $node->psql('wechsel', qq{SELECT * FROM aibackup_list_tables('$id_u2')});
like($err, qr/ERROR:  backup "\Q$id_u2\E" of database "wechsel" cannot be read/,
	'so is listing its tables');

is($node->safe_psql('wechsel', q{SELECT aibackup_restore_table('grüße')}), '2',
	'a UTF8 backup restores into the LATIN1 database (the newest readable backup)');
is($node->safe_psql('wechsel', q{SELECT string_agg(s || ':' || encode(convert_to(s, 'LATIN1'), 'hex'), ',' ORDER BY id) FROM "grüße"}),
	'café:636166e9,Straße ¤:53747261df6520a4', 'its rows were converted to LATIN1');

$node->safe_psql('wechsel', q{CREATE TABLE euro (id int, s text); INSERT INTO euro VALUES (9, 'vorher')});
($ret, $out, $err) = $node->psql('wechsel', qq{SELECT aibackup_restore_table('euro', '$id_u1')});
isnt($ret, 0, 'a row with € does not restore into LATIN1');
like($err, qr/character with byte sequence 0xe2 0x82 0xac in encoding "UTF8" has no equivalent in encoding "LATIN1"/,
	"with PostgreSQL's conversion error");
is($node->safe_psql('wechsel', q{SELECT string_agg(id || s, ',') FROM euro}), '9vorher',
	'and the table is unchanged');

# --- SQL_ASCII: names are taken as UTF-8 ---
# (a UTF8 client cannot receive a message quoting a name that is not UTF-8:
# the server checks what it sends, so talk SQL_ASCII to this database)
$ENV{PGCLIENTENCODING} = 'SQL_ASCII';
$node->safe_psql('postgres',
	"CREATE DATABASE roh TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'");
$node->safe_psql('roh', q{
	CREATE EXTENSION aibackup;
	CREATE TABLE "grüße" (id int, s text);
	INSERT INTO "grüße" VALUES (1, 'café');
	DO $$ BEGIN EXECUTE format('CREATE TABLE %I (id int)', 'raw' || chr(233)); END $$;
});
($ret, $out, $err) = $node->psql('roh', 'SELECT aibackup_backup_now()');
is($ret, 0, 'an SQL_ASCII database with a name that is not UTF-8 backs up');
like($err, qr/table "public.raw.*" was not backed up: name "raw\\xE9" is not valid UTF-8/,
	'that table fails alone, saying why');
my $id_r = $out;
is($node->safe_psql('roh', 'SELECT status FROM aibackup_list_backups()'), 'partial', 'the backup is partial');
aws_cli('s3', 'cp', '--quiet', "s3://$ENV{S3_BUCKET}/$prefix/roh/$id_r/manifest.json", $mfile);
$m = decode_json(slurp_file($mfile));
is($m->{server_encoding}, 'SQL_ASCII', 'manifest: server_encoding SQL_ASCII');
my %st = map { encode_utf8($_->{name}) => $_->{status} } @{ $m->{tables} };
is_deeply(\%st, { 'grüße' => 'ok', 'raw?' => 'failed' },
	'manifest: the UTF-8 name as it is, the other marked failed with ? for the byte');
$node->safe_psql('roh', q{TRUNCATE "grüße"});
is($node->safe_psql('roh', q{SELECT aibackup_restore_table('grüße')}), '1', 'grüße restores');
is($node->safe_psql('roh', q{SELECT s FROM "grüße"}), 'café', 'with its bytes');

# --- the scheduler, which is connected to no database, finds the folders ---
{
	local $ENV{PGCLIENTENCODING} = 'UTF8';
	$node->safe_psql('latin1_home',
		q{CREATE DATABASE "bäckerei" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'});
}
sub manifests_under
{
	my ($folder) = @_;
	my ($r, $o) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/$folder/");
	my @m = ($o =~ /manifest\.json$/mg);
	return scalar @m;
}
my $cafe_before = manifests_under('caf%C3%A9');
$node->append_conf('postgresql.conf', "aibackup.enabled = on\naibackup.interval = '10s'\n");
$node->restart;
my $deadline = time + 120;
sleep 1 while (manifests_under('caf%C3%A9') <= $cafe_before || manifests_under('b%C3%A4ckerei') == 0)
  && time < $deadline;
ok(manifests_under('caf%C3%A9') > $cafe_before, 'scheduled backups of café land in its UTF-8 folder');
ok(manifests_under('b%C3%A4ckerei') > 0, 'and of bäckerei, a LATIN1 database never backed up before')
  or diag(join "\n", (aws_cli('s3', 'ls', "s3://$ENV{S3_BUCKET}/$prefix/"))[1]);
$node->restart;
sleep 3;
unlike(slurp_file($node->logfile), qr/could not check earlier backups/,
	'after a restart the launcher reads the earlier backups of every database without error');
$node->append_conf('postgresql.conf', "aibackup.enabled = off\n");
$node->reload;

done_testing();
