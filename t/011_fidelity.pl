# Fidelity: every value survives backup and restore byte for byte — NULL vs
# empty string, CSV's special characters, UTF-8, bytea, arrays, json,
# numeric and float edge values, date/time values, enums, domains,
# composite types, generated and dropped columns, very wide rows, empty
# tables, names that need quoting (and percent-encoding in object keys),
# several schemas and partitions; also when the backup and restore sessions
# use different DateStyle, IntervalStyle, TimeZone, extra_float_digits and
# bytea_output.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;
use AibackupData;

my $prefix = "t011-$$";
my $node = new_cluster('fidelity', prefix => $prefix);
my $db = 'fid';
my ($ret, $out, $err);

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION aibackup');

# [ schema, table, setup SQL ]; the table's SQL name is built from schema/table
my @tables = (
	[ 'public', 'text_edge', <<'SQL' ],
CREATE TABLE text_edge (id int, v text);
INSERT INTO text_edge VALUES
 (1, NULL), (2, ''), (3, '""'), (4, 'a,b'), (5, E'a\tb'), (6, E'line1\nline2'),
 (7, E'cr\rhere'), (8, E'crlf\r\n'), (9, E'back\\slash'), (10, E'\\.'), (11, E'\\N'),
 (12, 'NULL'), (13, ' leading and trailing  '), (14, 'ÄÖÜ äöü ß 日本語 😀'),
 (15, E'"quoted", and\n"multi"\r\nline'), (16, ','), (17, '"'), (18, E'\n'),
 (19, E'\\.\n\\.'), (20, repeat('x', 10000));
SQL
	[ 'public', 'one_col', <<'SQL' ],
CREATE TABLE one_col (v text);
INSERT INTO one_col VALUES (E'\\.'), (NULL), (''), ('x'), (E'\\.\\.'), (' ');
SQL
	[ 'public', 'bin', <<'SQL' ],
CREATE TABLE bin (id int, b bytea);
INSERT INTO bin VALUES (1, NULL), (2, ''), (3, '\x00'), (4, '\x00ff10'),
 (5, decode(repeat('ab', 1000), 'hex')), (6, convert_to(E'a\\b,"c"\n', 'UTF8'));
INSERT INTO bin SELECT 100 + g, decode(md5(g::text) || md5((g + 1)::text), 'hex') FROM generate_series(1, 200) g;
SQL
	[ 'public', 'arrays', <<'SQL' ],
CREATE TABLE arrays (id int, ia int[], ta text[], na int[][], ba bytea[], da date[]);
INSERT INTO arrays VALUES
 (1, '{1,NULL,3}', '{"a,b","c\"d",NULL,"NULL","", "x\\y"}', '{{1,2},{3,4}}', '{"\\x00ff",NULL}', '{2020-01-01,infinity}'),
 (2, '{}', '{}', '{}', '{}', '{}'),
 (3, NULL, NULL, NULL, NULL, NULL),
 (4, '[0:1]={7,8}', ARRAY[E'new\nline', E'tab\there', '{brace}'], '{{NULL,NULL},{NULL,5}}', NULL, NULL);
SQL
	[ 'public', 'js', <<'SQL' ],
CREATE TABLE js (id int, j json, jb jsonb);
INSERT INTO js VALUES
 (1, '{"a": [1, 2.50, null],   "b": "x\"y"}', '{"a": [1, 2.50, null], "b": "x\"y"}'),
 (2, 'null', 'null'), (3, '"str, with comma"', '"str"'), (4, NULL, NULL),
 (5, '{"u": "\u00e9 é", "n": {"deep": [[], {}]}}', '{"u": "\u00e9 é", "n": {"deep": [[], {}]}}'),
 (6, '[1e400]', '[1.0e-5, 123456789012345678901234567890]');
SQL
	[ 'public', 'nums', <<'SQL' ],
CREATE TABLE nums (id int, n numeric, n2 numeric(30,10), f8 float8, f4 float4, i8 bigint, i2 smallint);
INSERT INTO nums VALUES
 (1, 'NaN', NULL, 'NaN', 'NaN', 9223372036854775807, 32767),
 (2, 'Infinity', 0, 'Infinity', 'Infinity', -9223372036854775808, -32768),
 (3, '-Infinity', 1.5, '-Infinity', '-Infinity', 0, 0),
 (4, 12345678901234567890.123456789012345678901234567890, 12345678901234567890.0123456789, 1.0000000000000002, 3.4028235e+38, 1, 1),
 (5, 1e-100, -0.0000000001, '-0', '-0', -1, -1),
 (6, 0.1, 0.1, 0.1, 0.1, 2, 2),
 (7, NULL, NULL, 2.2250738585072014e-308, 1.17549435e-38, NULL, NULL),
 (8, 1e131071, NULL, 1.7976931348623157e+308, 1e-45, NULL, NULL);
SQL
	[ 'public', 'times', <<'SQL' ],
CREATE TABLE times (id int, ts timestamp, tstz timestamptz, d date, t time, ttz timetz, iv interval);
INSERT INTO times VALUES
 (1, 'infinity', 'infinity', 'infinity', '24:00:00', '23:59:59.999999+14', '1 year 2 mons 3 days 04:05:06.789'),
 (2, '-infinity', '-infinity', '-infinity', '00:00:00', '00:00:00-12', '-1 day +02:00:00'),
 (3, '2000-02-29 12:34:56.789012', '2000-02-29 12:34:56.789012+05:30', '2000-02-29', '12:34:56.789012', '12:34:56+05:45', '1000000 hours'),
 (4, '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC', '4713-01-01 BC', '01:02:03', '01:02:03+00', '-178000000 years'),
 (5, '294276-12-31 23:59:59.999999', '1970-01-01 00:00:00+00', '5874897-12-31', NULL, NULL, '0'),
 (6, '2024-03-31 02:30:00', '2024-10-27 01:30:00+01', '2024-01-31', '23:59:59.999999', NULL, '1 mon -1 day 00:00:00.000001');
SQL
	[ 'public', 'enums', <<'SQL' ],
CREATE TYPE color AS ENUM ('red', 'green', 'with space', 'quo"te', 'com,ma');
CREATE TABLE enums (id int, c color, ca color[]);
INSERT INTO enums VALUES (1, 'red', '{red,green}'), (2, 'with space', '{"with space","quo\"te"}'),
 (3, 'quo"te', NULL), (4, 'com,ma', '{"com,ma",NULL}'), (5, NULL, '{}');
SQL
	[ 's1', 'sized', <<'SQL' ],
CREATE SCHEMA s1;
CREATE TYPE s1.size AS ENUM ('S', 'M', 'L');
CREATE TABLE s1.sized (id int, sz s1.size);
INSERT INTO s1.sized VALUES (1, 'S'), (2, 'L'), (3, NULL);
SQL
	[ 'public', 'domains', <<'SQL' ],
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE domains (id int, p posint, e email);
INSERT INTO domains VALUES (1, 1, 'a@b'), (2, NULL, NULL), (3, 2147483647, '"x, y"@z');
SQL
	[ 'public', 'composite', <<'SQL' ],
CREATE TYPE addr AS (street text, zip int, tags text[]);
CREATE TABLE composite (id int, a addr, aa addr[]);
INSERT INTO composite VALUES
 (1, ROW('Main St, "1"', 12345, '{x,y}'), ARRAY[ROW('a', 1, NULL)::addr, ROW(NULL, NULL, NULL)::addr]),
 (2, ROW(NULL, NULL, NULL), NULL), (3, NULL, '{}'), (4, ROW('', 0, '{}'), NULL),
 (5, ROW(E'back\\slash\nnl', -1, '{"q\"uote",NULL}'), NULL);
SQL
	[ 'public', 'gen', <<'SQL' ],
CREATE TABLE gen (id int, a int, b int GENERATED ALWAYS AS (a * 2) STORED, c text);
INSERT INTO gen (id, a, c) SELECT g, g * 3, 'c' || g FROM generate_series(1, 50) g;
INSERT INTO gen (id, a, c) VALUES (51, NULL, NULL);
SQL
	[ 'public', 'dropped', <<'SQL' ],
CREATE TABLE dropped (id int, gone text, keep text, gone2 int);
INSERT INTO dropped SELECT g, 'gone' || g, 'keep' || g, g FROM generate_series(1, 40) g;
ALTER TABLE dropped DROP COLUMN gone;
ALTER TABLE dropped DROP COLUMN gone2;
ALTER TABLE dropped ADD COLUMN added int DEFAULT 7;
INSERT INTO dropped VALUES (41, 'k41', NULL);
SQL
	[ 'public', 'wide', <<'SQL' ],
CREATE TABLE wide (id int, big text, bigb bytea);
INSERT INTO wide SELECT r, (SELECT string_agg(md5((g * r)::text), '') FROM generate_series(1, 32768) g),
 (SELECT decode(string_agg(md5((g + r)::text), ''), 'hex') FROM generate_series(1, 32768) g)
 FROM generate_series(1, 3) r;
SQL
	[ 'public', 'empty', <<'SQL' ],
CREATE TABLE empty (id int, v text);
SQL
	[ 'public', 'misc', <<'SQL' ],
CREATE TABLE misc (id int, u uuid, ip inet, net cidr, mac macaddr, pt point, bx box, b4 bit(4), vb varbit,
 r int4range, tr tstzrange, tv tsvector, x xml, c5 char(5), vc varchar(3), ch "char", nm name, bo boolean, o oid);
INSERT INTO misc VALUES
 (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.1.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '(1.5,-2)',
  '((0,0),(1,1))', B'1010', B'', '[1,10)', '[2020-01-01 00:00+00,2021-01-01 00:00+00)', 'a fat cat:1A',
  '<a b="c">d &amp; e</a>', 'ab', 'xyz', 'q', 'name with space', true, 4294967295),
 (2, NULL, '::1', '2001:db8::/32', NULL, NULL, NULL, NULL, NULL, 'empty', '(,)', '', '<x/>', '', '', NULL, '', false, 0),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SQL
	[ 'public', 'ident', <<'SQL' ],
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY, v text);
INSERT INTO ident (v) SELECT 'i' || g FROM generate_series(1, 10) g;
DELETE FROM ident WHERE id IN (3, 4);
SQL
	[ 'public', 'many_cols', <<'SQL' ],
DO $$
BEGIN
  EXECUTE 'CREATE TABLE many_cols (' ||
    (SELECT string_agg(format('c%s int', g), ', ') FROM generate_series(1, 400) g) || ')';
  EXECUTE 'INSERT INTO many_cols SELECT ' ||
    (SELECT string_agg(format('r * %s', g), ', ') FROM generate_series(1, 400) g) ||
    ' FROM generate_series(1, 20) r';
END $$;
SQL
	[ 'public', 'Order Items', <<'SQL' ],
CREATE TABLE "Order Items" (id int, "Item Name" text, "qty,comma" int, "Quote""Col" text);
INSERT INTO "Order Items" SELECT g, 'item ' || g, g, 'q' || g FROM generate_series(1, 25) g;
SQL
	[ 'public', 'we"ird', <<'SQL' ],
CREATE TABLE "we""ird" (id int, v text);
INSERT INTO "we""ird" VALUES (1, 'w'), (2, NULL);
SQL
	[ 'public', 'MixedCase', <<'SQL' ],
CREATE TABLE "MixedCase" ("MixedCol" int, v text);
INSERT INTO "MixedCase" VALUES (1, 'M'), (2, 'm');
SQL
	[ 'public', 'mixedcase', <<'SQL' ],
CREATE TABLE mixedcase (x int);
INSERT INTO mixedcase VALUES (42);
SQL
	[ 'public', 'Grüße', <<'SQL' ],
CREATE TABLE "Grüße" (id int, "Straße" text);
INSERT INTO "Grüße" VALUES (1, 'Hauptstraße'), (2, 'Ölweg');
SQL
	[ 'public', 'same_name', <<'SQL' ],
CREATE TABLE public.same_name (id int, src text);
INSERT INTO public.same_name VALUES (1, 'public');
SQL
	[ 's1', 'same_name', <<'SQL' ],
CREATE TABLE s1.same_name (id int, src text);
INSERT INTO s1.same_name VALUES (1, 's1'), (2, 's1');
SQL
	[ 'Schema Ü', 'tbl.with.dots', <<'SQL' ],
CREATE SCHEMA "Schema Ü";
CREATE TABLE "Schema Ü"."tbl.with.dots" (id int, v text);
INSERT INTO "Schema Ü"."tbl.with.dots" VALUES (1, 'dots'), (2, 'more');
SQL
	[ 'dir/sub', 'x/y%z', <<'SQL' ],
CREATE SCHEMA "dir/sub";
CREATE TABLE "dir/sub"."x/y%z" (id int);
INSERT INTO "dir/sub"."x/y%z" VALUES (1), (2), (3);
SQL
	[ 'public', 'ü' x 31, <<'SQL' ],
CREATE TABLE "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü" (id int);
INSERT INTO "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü" VALUES (31);
SQL
	[ 'public', 'part_1', <<'SQL' ],
CREATE TABLE part_root (id int, k text) PARTITION BY RANGE (id);
CREATE TABLE part_1 PARTITION OF part_root FOR VALUES FROM (0) TO (100);
CREATE TABLE part_2 PARTITION OF part_root FOR VALUES FROM (100) TO (200);
CREATE TABLE part_def PARTITION OF part_root DEFAULT;
INSERT INTO part_root SELECT g, 'k' || g FROM generate_series(0, 250) g;
SQL
	[ 'public', 'part_2', '' ],
	[ 'public', 'part_def', '' ],
);

sub qi
{
	my ($s) = @_;
	$s =~ s/"/""/g;
	return qq("$s");
}

sub sqlname { return qi($_[0]) . '.' . qi($_[1]) }

# live, non-generated columns, quoted, as a SQL list
sub plain_cols
{
	my ($rel) = @_;
	return $node->safe_psql($db,
		"SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
		  . "WHERE attrelid = " . sql_quote($rel) . "::regclass AND attnum > 0 AND NOT attisdropped "
		  . "AND attgenerated = ''");
}

$node->safe_psql($db, join('', map { $_->[2] } @tables));
$node->safe_psql($db, 'CREATE SCHEMA copy');

my (%cs, %cnt, %cols);
for my $t (@tables)
{
	my $n = sqlname($t->[0], $t->[1]);
	$cs{$n} = checksum($node, $db, $n);
	$cnt{$n} = $node->safe_psql($db, "SELECT count(*) FROM $n");
	$cols{$n} = plain_cols($n);
}
my $cs_root = checksum($node, $db, 'part_root');
is($cnt{'"public"."empty"'}, '0', 'the empty table is empty (setup)');
ok(length($node->safe_psql($db, 'SELECT min(length(big)) FROM wide')) && $node->safe_psql($db, 'SELECT min(length(big)) >= 1048576 FROM wide') eq 't',
	'the wide rows are at least 1 MB (setup)');

my $id;
($ret, $id, $err) = backup_now($node, $db);
is($ret, 0, 'the backup succeeds') or diag($err);

# every table is listed under its real names, at its percent-encoded key
my %listed;
for my $line (split /\n/, $node->safe_psql($db,
		"SELECT schema_name, table_name, rows, object_key FROM aibackup_list_tables('$id')"))
{
	my ($s, $t, $r, $k) = split /\|/, $line, -1;
	$listed{"$s\x01$t"} = [ $r, $k ];
}
for my $t (@tables)
{
	my ($s, $name) = @$t;
	my $n = sqlname($s, $name);
	my $l = $listed{"$s\x01$name"};
	ok($l, "$n is listed") or next;
	is($l->[0], $cnt{$n}, "$n: listed row count");
}
ok(!exists $listed{"public\x01part_root"}, 'the partitioned root is not listed');

for my $case (
	[ 'public', 'Order Items', 'public.Order%20Items.csv.gz' ],
	[ 'public', 'we"ird', 'public.we%22ird.csv.gz' ],
	[ 'public', 'MixedCase', 'public.MixedCase.csv.gz' ],
	[ 'public', 'Grüße', 'public.Gr%C3%BC%C3%9Fe.csv.gz' ],
	[ 'Schema Ü', 'tbl.with.dots', 'Schema%20%C3%9C.tbl%2Ewith%2Edots.csv.gz' ],
	[ 'dir/sub', 'x/y%z', 'dir%2Fsub.x%2Fy%25z.csv.gz' ],
	[ 'public', 'ü' x 31, 'public.' . ('%C3%BC' x 31) . '.csv.gz' ])
{
	my ($s, $name, $leaf) = @$case;
	my $key = "$prefix/$db/$id/$leaf";
	is(obj_key($prefix, $db, $id, $s, $name), $key, "percent-encoding helper agrees for $leaf");
	ok(s3_head($key), "object $leaf exists");
	like($listed{"$s\x01$name"}[1] // '', qr/\Q$leaf\E$/, "list_tables shows key $leaf");
}

# damage everything
for my $t (@tables)
{
	my $n = sqlname($t->[0], $t->[1]);
	if ($cnt{$n} == 0)
	{
		$node->safe_psql($db, "INSERT INTO $n DEFAULT VALUES");
	}
	else
	{
		$node->safe_psql($db, "TRUNCATE $n");
	}
	isnt(checksum($node, $db, $n), $cs{$n}, "$n is damaged");
}

# restore each in place
for my $t (@tables)
{
	my $n = sqlname($t->[0], $t->[1]);
	($ret, $out, $err) = $node->psql($db, restore_sql($n, $id));
	is($ret, 0, "restore $n") or diag($err);
	is($out, $cnt{$n}, "$n: restore returns the row count");
	is(checksum($node, $db, $n), $cs{$n}, "$n: identical after restore");
}
is(checksum($node, $db, 'part_root'), $cs_root, 'the partitioned table is whole again');
is($node->safe_psql($db, 'SELECT count(*) FROM gen WHERE b IS DISTINCT FROM a * 2'), '0',
	'generated columns are regenerated');
is($node->safe_psql($db, 'SELECT count(*) FROM dropped WHERE added IS NULL'), '1',
	'a column added after drops keeps its values (NULL stays NULL, defaults do not fill it)');

# source names: unqualified names follow search_path, quoted ones keep case
is($node->safe_psql($db, restore_sql('same_name', $id, 'copy.sn_default')), '1',
	'an unqualified source name resolves through search_path (public)');
is($node->safe_psql($db, restore_sql('s1.same_name', $id, 'copy.sn_s1')), '2',
	'a schema-qualified source name picks that schema');
is($node->safe_psql($db, restore_sql('MixedCase', $id, 'copy.mc_folded')), '1',
	'an unquoted MixedCase source name folds to lower case (mixedcase)');
is($node->safe_psql($db, restore_sql('"MixedCase"', $id, 'copy.mc_quoted')), '2',
	'a quoted "MixedCase" keeps its case');

# restore each into a new table in another schema
for my $t (@tables)
{
	my ($s, $name) = @$t;
	my $n = sqlname($s, $name);
	my $target = 'copy.' . qi("$name copy");
	($ret, $out, $err) = $node->psql($db, restore_sql($n, $id, $target));
	is($ret, 0, "restore $n into new table $target") or diag($err);
	is(checksum($node, $db, $target, $cols{$n}), checksum($node, $db, $n, $cols{$n}),
		"$target: same rows as $n");
	# (a generated column's expression lives in the DDL; only compare types
	# where every column is a plain one)
	is(col_types($node, $db, $target), col_types($node, $db, $n),
		"$target: same column names and types")
	  if $name ne 'gen';
}

# columns matched by name even when their names need quoting in the header
$node->safe_psql($db,
	'CREATE TABLE copy."OI reordered" ("Quote""Col" text, "qty,comma" int, "Item Name" text, id int)');
is($node->safe_psql($db, restore_sql('"Order Items"', $id, 'copy."OI reordered"')), '25',
	'restore into a reordered target whose column names need quoting');
is(checksum($node, $db, 'copy."OI reordered"', 'id, "Item Name", "qty,comma", "Quote""Col"'),
	checksum($node, $db, '"Order Items"', 'id, "Item Name", "qty,comma", "Quote""Col"'),
	'the quoted column names are matched');

# a new table's types must not depend on the restoring session's search_path
for my $src ('public.enums', 'public.domains', 'public.composite', 's1.sized')
{
	my ($sch, $tb) = split /\./, $src;
	($ret, $out, $err) = $node->psql($db,
		"SET search_path = copy; " . (restore_sql($src, $id, "copy.${tb}_sp") =~ s/SELECT /SELECT public./r));
	is($ret, 0, "restore $src into a new table from a session whose search_path lacks its types' schema")
	  or diag($err);
	is(checksum($node, $db, "copy.${tb}_sp"), checksum($node, $db, $src), "copy.${tb}_sp: same rows")
	  if $ret == 0;
}

# ------------------------------------------------------------------ session settings
my @settings_tables = qw(nums times bin arrays js composite text_edge);
my %cs2 = map { ($_ => checksum($node, $db, $_)) } @settings_tables;
my $id2;
($ret, $id2, $err) = backup_now($node, $db,
	'ARRAY[' . join(', ', map { "'$_'" } @settings_tables) . ']::regclass[]',
	pre => "SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard'; SET TimeZone = 'Asia/Kolkata'; "
	  . "SET extra_float_digits = -3; SET bytea_output = 'escape'; SET client_encoding = 'LATIN1'");
is($ret, 0, 'a backup from a session with unusual DateStyle, IntervalStyle, TimeZone, extra_float_digits, bytea_output, client_encoding, search_path')
  or diag($err);
$node->safe_psql($db, "TRUNCATE $_") for @settings_tables;
for my $tb (@settings_tables)
{
	($ret, $out, $err) = $node->psql($db,
		"SET DateStyle = 'German, MDY'; SET IntervalStyle = 'iso_8601'; SET TimeZone = 'America/New_York'; "
		  . "SET extra_float_digits = 0; SET bytea_output = 'hex'; SET client_encoding = 'WIN1252'; "
		  . restore_sql("public.$tb", $id2));
	is($ret, 0, "restore $tb from a session with other settings") or diag($err);
	is(checksum($node, $db, $tb), $cs2{$tb}, "$tb: values unchanged whatever the sessions' settings");
}

$node->stop;
done_testing();
