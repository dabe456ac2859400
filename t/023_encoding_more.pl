# Encodings, continued (t/018 has the basics): messages that quote names
# every client can receive, SQL_ASCII backups restored elsewhere and the
# other way round, aibackup.exclude in UTF-8, names that grow past
# NAMEDATALEN in UTF-8, UTF-8 text in the statistics views, and names in
# messages spelled as the characters they are in their own encoding.
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
use Encode qw(decode);
use Time::HiRes qw(time sleep);
use AibackupTest;
use AibackupData;

$ENV{PGCLIENTENCODING} = 'UTF8';

my $prefix = "t019-$$";
my $node = new_cluster('encoding_more', prefix => $prefix, conf => "aibackup.enabled = off\n");
my ($ret, $out, $err);
$node->safe_psql('postgres', 'CREATE EXTENSION aibackup');	# for the views

sub create_db
{
	my ($name, $encoding, $from) = @_;
	$node->safe_psql($from // 'postgres',
		qq{CREATE DATABASE "$name" TEMPLATE template0 ENCODING '$encoding' LC_COLLATE 'C' LC_CTYPE 'C'});
	$node->safe_psql($name, 'CREATE EXTENSION aibackup');
}

# a query's output, '' when it fails: a check must not end the suite
sub query
{
	my ($db, $sql) = @_;
	my ($r, $o) = $node->psql($db, $sql);
	return $r == 0 ? $o : '';
}

sub valid_utf8
{
	my ($bytes) = @_;
	return eval { decode('UTF-8', $bytes, Encode::FB_CROAK); 1 } ? 1 : 0;
}

# what a stats view holds, as bytes: text of a UTF-8 database is not checked
# on its way out, so read it as hex
sub view_bytes
{
	my ($db, $sql) = @_;
	return pack('H*', query($db, "SELECT encode(convert_to(($sql), 'UTF8'), 'hex')"));
}

# ------------------------------------------------------------------
# 5. A UTF-8 client gets the warnings about names that are not UTF-8, and
#    the backup goes on (partial) instead of failing on the warning.
# ------------------------------------------------------------------
create_db('roh5', 'SQL_ASCII');
$node->safe_psql('roh5', q{
	CREATE TABLE fine (id int);
	INSERT INTO fine VALUES (1), (2);
	DO $$ BEGIN
		EXECUTE format('CREATE TABLE %I (id int)', 'raw' || chr(233));
		EXECUTE format('CREATE SEQUENCE %I', 'seq' || chr(233));
	END $$;
});
($ret, $out, $err) = $node->psql('roh5', 'SELECT aibackup_backup_now()');
is($ret, 0, 'SQL_ASCII, UTF-8 client: the backup completes despite a table named raw\xE9')
  or diag($err);
like($err, qr/WARNING:  aibackup: table "public\.raw\\xE9" was not backed up: name "raw\\xE9" is not valid UTF-8/,
	'the warning quotes the name with \xE9 for the byte that is not UTF-8');
like($err, qr/WARNING:  aibackup: sequence "public\.seq\\xE9" is left out of the manifest/,
	'so does the warning about the sequence');
is(query('roh5', 'SELECT status FROM aibackup_list_backups()'), 'partial',
	'the backup is partial');
is(query('roh5', "SELECT rows FROM aibackup_list_tables() WHERE table_name = 'fine'"),
	'2', 'and the other table is in it, with its rows');

create_db('win5', 'WIN1252');
$node->safe_psql('win5', q{
	CREATE TABLE fine (id int);
	INSERT INTO fine VALUES (1);
	DO $$ BEGIN
		EXECUTE format('CREATE TABLE %I (id int)', 'caf' || chr(233) || chr(129));
	END $$;
});
($ret, $out, $err) = $node->psql('win5', 'SELECT aibackup_backup_now()');
is($ret, 0, 'WIN1252, UTF-8 client: the backup completes despite a name with 0x81') or diag($err);
like($err, qr/WARNING:  aibackup: table "public\.café\\x81" was not backed up: name "caf\\u00E9\\x81" has no UTF-8 equivalent in encoding "WIN1252"/,
	'the warning shows é as itself and 0x81, which has no UTF-8 equivalent, as \x81');
is(query('win5', 'SELECT status FROM aibackup_list_backups()'), 'partial',
	'the backup is partial');

# ------------------------------------------------------------------
# 12. pg_stat_aibackup holds UTF-8, read in any database's encoding
# ------------------------------------------------------------------
my $e = view_bytes('postgres', q{SELECT last_error FROM pg_stat_aibackup WHERE datname = 'win5'});
ok(valid_utf8($e), 'last_error of the WIN1252 database, read in a UTF8 database, is valid UTF-8')
  or diag(unpack('H*', $e));
like($e, qr/^table public\.café\\x81: name "caf\\u00E9\\x81"/, 'and spells é as é');
is(query('win5', q{SELECT encode(convert_to(substr(last_error, 1, 18), 'WIN1252'), 'hex') FROM pg_stat_aibackup WHERE datname = 'win5'}),
	unpack('H*', "table public.caf\xe9\\"), 'read in the WIN1252 database itself, é is its own byte E9');

# ------------------------------------------------------------------
# 6. SQL_ASCII backups restore into other encodings as UTF-8, and what an
#    SQL_ASCII database cannot take is refused
# ------------------------------------------------------------------
create_db('roh6', 'SQL_ASCII');
$node->safe_psql('roh6', q{
	CREATE TABLE "grüße" (id int, "größe" text);
	INSERT INTO "grüße" VALUES (1, 'café'), (2, 'Straße');
	CREATE TABLE kaputt (id int, s text);
	INSERT INTO kaputt VALUES (1, 'ok');
	INSERT INTO kaputt VALUES (2, 'x' || chr(233));
});
($ret, $out, $err) = $node->psql('roh6', 'SELECT aibackup_backup_now()');
is($ret, 0, 'backup of an SQL_ASCII database with UTF-8 text') or diag($err);
$node->safe_psql('postgres', 'DROP DATABASE roh6');
create_db('roh6', 'LATIN1');
$node->safe_psql('roh6', q{CREATE TABLE kaputt (id int, s text); INSERT INTO kaputt VALUES (9, 'vorher')});
($ret, $out, $err) = $node->psql('roh6', q{SELECT aibackup_restore_table('grüße')});
is($ret, 0, 'it restores into a LATIN1 database') or diag($err);
is(query('roh6', q{SELECT string_agg("größe" || ':' || encode(convert_to("größe", 'LATIN1'), 'hex'), ',' ORDER BY id) FROM "grüße"}),
	'café:636166e9,Straße:53747261df65', 'its UTF-8 text became LATIN1 text, not mojibake');
($ret, $out, $err) = $node->psql('roh6', q{SELECT aibackup_restore_table('kaputt')});
isnt($ret, 0, 'a row whose bytes are not UTF-8 does not restore');
like($err, qr/invalid byte sequence for encoding "UTF8": 0xe9/, "with PostgreSQL's error");
is(query('roh6', q{SELECT string_agg(id || s, ',') FROM kaputt}), '9vorher',
	'and the table is unchanged');

create_db('lat6', 'LATIN1');
$node->safe_psql('lat6', q{
	CREATE TABLE ascii (id int, s text);
	INSERT INTO ascii VALUES (1, 'plain');
	CREATE TABLE accents (id int, s text);
	INSERT INTO accents VALUES (1, 'café');
});
($ret, $out, $err) = $node->psql('lat6', 'SELECT aibackup_backup_now()');
is($ret, 0, 'backup of a LATIN1 database') or diag($err);
$node->safe_psql('postgres', 'DROP DATABASE lat6');
create_db('lat6', 'SQL_ASCII');
($ret, $out, $err) = $node->psql('lat6', q{SELECT aibackup_restore_table('ascii')});
is($ret, 0, 'into an SQL_ASCII database, a LATIN1 table that is ASCII restores') or diag($err);
is(query('lat6', 'SELECT s FROM ascii'), 'plain', 'with its rows');
$node->safe_psql('lat6', q{CREATE TABLE accents (id int, s text); INSERT INTO accents VALUES (9, 'vorher')});
($ret, $out, $err) = $node->psql('lat6', q{SELECT aibackup_restore_table('accents')});
isnt($ret, 0, 'one with LATIN1 text that is not ASCII is refused');
like($err, qr/ERROR:  cannot restore table "public\.accents" into a database with encoding SQL_ASCII: its backup holds text in encoding "LATIN1" that is not ASCII/,
	'saying why');
is(query('lat6', q{SELECT string_agg(id || s, ',') FROM accents}), '9vorher',
	'and the table is unchanged');

# ------------------------------------------------------------------
# 10. aibackup.exclude is UTF-8, and matches in a LATIN1 database
# ------------------------------------------------------------------
create_db('lat10', 'LATIN1');
$node->safe_psql('lat10', q{
	CREATE TABLE "crème" (id int);
	CREATE TABLE "Größe" (id int);
	CREATE TABLE keep (id int);
});
set_conf($node, 'aibackup.exclude' => 'public.crème, public."Größe"');
($ret, $out, $err) = $node->psql('lat10', 'SELECT aibackup_backup_now()');
is($ret, 0, 'backup of the LATIN1 database with aibackup.exclude set') or diag($err);
is(query('lat10', q{SELECT string_agg(table_name, ',' ORDER BY table_name) FROM aibackup_list_tables()}),
	'keep', 'crème and Größe, named in UTF-8, are left out');
reset_conf($node, 'aibackup.exclude');

# ------------------------------------------------------------------
# 11. LATIN1 names that are longer than NAMEDATALEN in UTF-8
# ------------------------------------------------------------------
my $long = 'tab_' . ('é' x 58);		# 62 bytes in LATIN1, 120 in UTF-8
my $lcol = 'col_' . ('ü' x 58);
my $dup1 = 'dup_' . ('é' x 58) . '1';
my $dup2 = 'dup_' . ('é' x 58) . '2';
create_db('lang11', 'LATIN1');
$node->safe_psql('lang11', qq{
	CREATE TABLE "$long" (id int, "$lcol" text);
	INSERT INTO "$long" VALUES (1, 'eins'), (2, 'zwei');
	CREATE TABLE "$dup1" (id int);
	CREATE TABLE "$dup2" (id int);
});
($ret, $out, $err) = $node->psql('lang11', 'SELECT aibackup_backup_now()');
is($ret, 0, 'backup of the LATIN1 database with 62-letter names') or diag($err);
$node->safe_psql('postgres', 'DROP DATABASE lang11');
create_db('lang11', 'UTF8');
($ret, $out, $err) = $node->psql('lang11', qq{SELECT aibackup_restore_table('"$long"')});
is($ret, 0, 'restoring it in a UTF8 database finds it by its name, truncated as typed') or diag($err);
my $short = 'tab_' . ('é' x 29);	# 62 bytes: the next é would make 64
my $scol = 'col_' . ('ü' x 29);
is(query('lang11', qq{SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '"$short"'::regclass AND attnum > 0}),
	"id,$scol", 'the table is created with its names truncated to 63 bytes at a character boundary');
is(query('lang11', qq{SELECT string_agg(id || "$scol", ',' ORDER BY id) FROM "$short"}),
	'1eins,2zwei', 'and its rows are loaded');
($ret, $out, $err) = $node->psql('lang11', qq{SELECT aibackup_restore_table('"$dup1"')});
like($err, qr/ERROR:  backup "\d+T\d+Z" holds two tables named "public\.dup_(é){29}" once their names are truncated to 63 bytes/,
	'two tables whose names become one are refused, clearly');

# ------------------------------------------------------------------
# 12. pg_stat_progress_aibackup: the table's name in UTF-8, cut at a
#     character boundary
# ------------------------------------------------------------------
my $pschema = 'sx' . ('é' x 61);
my $ptable = 'é' x 63;
create_db('lang12', 'LATIN1');
$node->safe_psql('lang12', qq{
	CREATE SCHEMA "$pschema";
	CREATE TABLE "$pschema"."$ptable" (id int);
	INSERT INTO "$pschema"."$ptable" SELECT generate_series(1, 20);
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END \$\$;
	CREATE TRIGGER slow BEFORE INSERT ON "$pschema"."$ptable" FOR EACH ROW EXECUTE FUNCTION slow();
});
($ret, $out, $err) = $node->psql('lang12', 'SELECT aibackup_backup_now()');
is($ret, 0, 'backup of a LATIN1 table with long names') or diag($err);
my $bg = bg_start($node, 'lang12', qq{SELECT aibackup_restore_table('"$pschema"."$ptable"')});
my $seen = '';
my $deadline = time() + 60;
while ($seen eq '' && time() < $deadline && $bg->{run}->pumpable)
{
	$seen = view_bytes('postgres',
		q{SELECT coalesce(min(table_name), '') FROM pg_stat_progress_aibackup WHERE command = 'restore' AND relid IS NOT NULL});
	sleep 0.1 if $seen eq '';
}
my ($brc, $bout, $berr) = bg_finish($bg);
is($brc, 0, 'the restore, slowed by a trigger, succeeds') or diag($berr);
my $qual = qq{"$pschema"."$ptable"};	# 255 bytes in UTF-8
ok(valid_utf8($seen), 'read in a UTF8 database, its table_name is valid UTF-8') or diag(unpack('H*', $seen));
is($seen, substr($qual, 0, 134), 'the UTF-8 name, cut before the character that would cross the limit');

# ------------------------------------------------------------------
# 14. names in messages are read in their own encoding
# ------------------------------------------------------------------
create_db('eucjp_home', 'EUC_JP');
$node->safe_psql('eucjp_home',
	q{CREATE DATABASE "データ" TEMPLATE template0 ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C'});
create_db('データ', 'UTF8');
($ret, $out, $err) = $node->psql('データ', 'SELECT aibackup_backup_now()');
like($err, qr/ERROR:  database "\\u30C7\\u30FC\\u30BF" and database "\\u30C7\\u30FC\\u30BF" would share one backup folder/,
	'an EUC_JP name is shown as the characters it spells, not as bytes');

# ------------------------------------------------------------------
# 10. the hint: a database cannot be left out with aibackup.exclude
# ------------------------------------------------------------------
{
	local $ENV{PGCLIENTENCODING} = 'SQL_ASCII';
	$node->safe_psql('roh5',
		qq{CREATE DATABASE "bad\xe9" TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'});
	$node->safe_psql("bad\xe9", 'CREATE EXTENSION aibackup');
	($ret, $out, $err) = $node->psql("bad\xe9", 'SELECT aibackup_backup_now()');
}
like($err, qr/ERROR:  name "bad\\xE9" is not valid UTF-8/, 'a database named with a byte that is not UTF-8 is refused');
like($err, qr/HINT:  Rename the database\.(\n|\z)/, 'with a hint that does not suggest aibackup.exclude');

done_testing();
