# aibackup_read(): a backed-up table's rows in SQL without restoring it.
# Exactly the backed-up rows for awkward types (checksums against the table
# at backup time), in a LATIN1 database too; looking, row repair and diffing
# as the README shows them; columns matched by name; a row type of another
# table; a table dropped since; the rights of a restore (SELECT, row-level
# security, a dropped table); a damaged object gives an error and no rows;
# a table larger than work_mem spills and still returns every row.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;
use AibackupData;

my $prefix = "t048-$$";
my $node = new_cluster('read', prefix => $prefix);
my $work = "$ENV{AIBACKUP_TEST_WORK}/t048-$$";
mkdir $work;
my $db = 'rd';

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION aibackup');
$node->safe_psql($db, <<'SQL');
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE pair AS (a int, b text);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE awkward (
  id int PRIMARY KEY, t text, vc varchar(5), ch char(3), n numeric, f8 float8, f4 float4,
  b bytea, ts timestamp, tz timestamptz, d date, tt timetz, iv interval, j json, jb jsonb,
  x xml, u uuid, ip inet, cd cidr, mac macaddr, bits varbit, arr text[], iarr int[][],
  m mood, p pair, r int4range, mr int4multirange, pt point, bx box, tsv tsvector,
  dom posint, money_ money, bo boolean);
INSERT INTO awkward VALUES
  (1, E'comma, "quote" \\ backslash\nnewline\rcr\ttab', 'abcde', 'ab', 'NaN', 'Infinity', '-0',
   E'\\x00ff5c0a', '2026-02-28 23:59:59.999999', '2026-06-01 12:00+05:30', '4713-01-01 BC',
   '23:59:59+14', '-1 year 2 mons 3 days 04:05:06.7', '{"a": [1, "x,y"]}', '{"k": null}',
   '<a b="c">d &amp; e</a>', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '::ffff:1.2.3.4/120',
   '10.0.0.0/8', '08:00:2b:01:02:03', B'10101', ARRAY['', NULL, 'x,"y"', E'\\'],
   '{{1,2},{3,NULL}}', 'happy', ROW(1, E'a\nb'), '[1,5)', '{[1,3),[7,9)}', '(1.5,-2)',
   '((0,0),(1,1))', 'fat:2 cat:1', 7, '12.34', true),
  (2, '', '', '', '-1e-20', '-Infinity', 'NaN', '', 'infinity', '-infinity', 'epoch',
   '00:00:00-12', '0', 'null', '[]', '', '00000000-0000-0000-0000-000000000000', '0.0.0.0',
   '::/0', 'ff:ff:ff:ff:ff:ff', B'', '{}', '{}', 'sad', ROW(NULL, ''), 'empty', '{}',
   '(0,0)', '((0,0),(0,0))', '', 1, '-0.01', false),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL),
  (4, repeat(E'\u00e9\u4e2d\U0001F600', 20000), 'x', 'x', '123456789012345678901234567890.123456789',
   1e308, 1.17549e-38, decode(repeat('ab', 5000), 'hex'), now(), now(), now(), now(),
   '1 microsecond', '"\u00e9"', '{"\u00e9": 1}', '<x/>', gen_random_uuid(), '1.2.3.4',
   '1.2.3.0/24', '00:00:00:00:00:00', B'1', ARRAY['NULL'], '{{0}}', 'ok', ROW(0, 'NULL'),
   '(,)', '{(,)}', '(0,0)', '((1,1),(2,2))', 'a:1A', 2, '0', NULL);
CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(10,2));
INSERT INTO orders SELECT g, 'c' || (g % 7), g * 1.5 FROM generate_series(1, 200) g;
CREATE TABLE gone (id int, v text);
INSERT INTO gone SELECT g, 'g' || g FROM generate_series(1, 30) g;
CREATE TABLE secret (id int, s text);
INSERT INTO secret SELECT g, 's' || g FROM generate_series(1, 5) g;
CREATE TABLE rls_t (id int, v text);
INSERT INTO rls_t SELECT g, 'r' || g FROM generate_series(1, 5) g;
ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON rls_t USING (id < 3);
CREATE TABLE big (id int, payload text);
INSERT INTO big SELECT g, md5(g::text) || repeat('z', 200) FROM generate_series(1, 60000) g;
SQL

my $awkward_then = checksum($node, $db, 'awkward');
my $orders_then = checksum($node, $db, 'orders');
my $big_then = fast_checksum($node, $db, 'big', 'id');
my ($ret, $id, $err) = backup_now($node, $db);
is($ret, 0, 'backup') or diag($err);

# exactly the backed-up rows, every awkward type
is(checksum($node, $db, 'aibackup_read(NULL::awkward)'), $awkward_then,
	'aibackup_read returns exactly the backed-up rows of every awkward type');
is(checksum($node, $db, "aibackup_read(NULL::awkward, '$id')"), $awkward_then,
	'... also from a named backup');

# look, repair, diff: the README's walkthrough
$node->safe_psql($db, "DELETE FROM orders WHERE id IN (7, 9); UPDATE orders SET amount = 0 WHERE id = 42");
is($node->safe_psql($db, "SELECT amount FROM aibackup_read(NULL::public.orders, '$id') WHERE id = 42"),
	'63.00', 'look: one row as it was');
is($node->safe_psql($db,
		"SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT * FROM aibackup_read(NULL::orders) "
		  . "EXCEPT SELECT * FROM orders) d"),
	'7,9,42', 'diff: the rows that differ from the backup');
$node->safe_psql($db,
	"INSERT INTO orders SELECT * FROM aibackup_read(NULL::orders) WHERE id IN (7, 9) ON CONFLICT (id) DO NOTHING; "
	  . "UPDATE orders o SET amount = b.amount FROM aibackup_read(NULL::orders) b WHERE o.id = b.id AND o.id = 42");
is(checksum($node, $db, 'orders'), $orders_then, 'repair: the rows are back as they were');

# columns by name, a row type of another shape
$node->safe_psql($db, 'CREATE TYPE slim AS (amount numeric, id int, missing text)');
is($node->safe_psql($db,
		"SELECT count(*) || ':' || sum(id) || ':' || count(missing) FROM aibackup_read(NULL::slim, source_table => 'public.orders')"),
	'200:20100:0', 'columns matched by name, in any order; one the backup lacks is NULL');
($ret, undef, $err) = psql_err($node, $db, 'SELECT * FROM aibackup_read(NULL::slim)');
like($err, qr/not the row type of a table/, 'a composite type needs source_table');
$node->safe_psql($db, 'CREATE TYPE nothing_alike AS (zz int)');
($ret, undef, $err) = psql_err($node, $db, "SELECT * FROM aibackup_read(NULL::nothing_alike, NULL, 'orders')");
like($err, qr/no column of the row type/, 'a row type sharing no column is refused');
$node->safe_psql($db, 'CREATE TYPE wrong_type AS (id int, customer int)');
($ret, undef, $err) = psql_err($node, $db, "SELECT * FROM aibackup_read(NULL::wrong_type, NULL, 'orders')");
like($err, qr/invalid input syntax for type integer.*\n.*row \d+, column "customer" of table "public.orders"/,
	'a value the target type cannot read names its row and column');

# a table dropped since: read with the row type of a look-alike
$node->safe_psql($db, 'DROP TABLE gone; CREATE TYPE gone_row AS (id int, v text)');
is($node->safe_psql($db, "SELECT count(*) || ':' || max(v) FROM aibackup_read(NULL::gone_row, source_table => 'gone')"),
	'30:g9', 'a dropped table is read with the row type of a look-alike');

# the rights of a restore
$node->safe_psql($db, <<'SQL');
CREATE ROLE reader LOGIN;
GRANT EXECUTE ON FUNCTION aibackup_read(anyelement, text, text) TO reader;
GRANT SELECT ON orders TO reader;
GRANT USAGE ON TYPE gone_row TO reader;
SQL
my @as_reader = (extra_params => ['-U', 'reader']);
is($node->safe_psql($db, 'SELECT count(*) FROM aibackup_read(NULL::orders)', @as_reader),
	'200', 'a granted role with SELECT reads the backup');
($ret, undef, $err) = psql_err($node, $db, 'SELECT count(*) FROM aibackup_read(NULL::secret)', @as_reader);
like($err, qr/permission denied to read table "public.secret"/, 'without SELECT on the table: refused');
$node->safe_psql($db, 'GRANT SELECT ON rls_t TO reader');
($ret, undef, $err) = psql_err($node, $db, 'SELECT count(*) FROM aibackup_read(NULL::rls_t)', @as_reader);
like($err, qr/Row-level security/, 'row-level security for the role: refused (the backup holds every row)');
($ret, undef, $err) = psql_err($node, $db,
	"SELECT count(*) FROM aibackup_read(NULL::gone_row, source_table => 'gone')", @as_reader);
like($err, qr/no longer exists/, 'a dropped table: only a superuser or pg_read_all_data');

# no USAGE on the table's schema: refused, as a SELECT would be
$node->safe_psql($db, <<'SQL');
CREATE SCHEMA hidden;
CREATE TABLE hidden.s (id int, v text);
INSERT INTO hidden.s VALUES (1, 'top secret');
GRANT SELECT ON hidden.s TO reader;
SQL
($ret, undef, $err) = backup_now($node, $db, "ARRAY['hidden.s']::regclass[]");
is($ret, 0, 'backup of a table in a schema the reader cannot use');
($ret, my $hid, $err) = psql_err($node, $db,
	"SELECT * FROM aibackup_read(NULL::orders, NULL, 'hidden.s')", @as_reader);
like($err, qr/permission denied to read table "hidden.s"/, 'without USAGE on its schema: refused');
unlike($hid, qr/top secret/, '... and nothing of it is shown');

# a superuser reading a tenant's domain would run the tenant's code as superuser
$node->safe_psql($db, <<'SQL');
CREATE ROLE tenant LOGIN;
CREATE SCHEMA tenant AUTHORIZATION tenant;
SET ROLE tenant;
CREATE FUNCTION tenant.evil(text) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('is_superuser') = 'on' THEN EXECUTE 'ALTER ROLE tenant SUPERUSER'; END IF;
  RETURN true;
END $$;
CREATE DOMAIN tenant.d AS text CHECK (tenant.evil(VALUE));
CREATE TABLE tenant.t (id int, v tenant.d);
INSERT INTO tenant.t VALUES (1, 'x');
RESET ROLE;
SQL
($ret, undef, $err) = backup_now($node, $db, "ARRAY['tenant.t']::regclass[]");
is($ret, 0, "backup of a tenant's table with its own domain");
($ret, undef, $err) = psql_err($node, $db, 'SELECT * FROM aibackup_read(NULL::tenant.t)');
like($err, qr/its checks are code of role "tenant"/, "a superuser's read into the tenant's domain is refused");
is($node->safe_psql($db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'tenant'"), 'f',
	'the tenant did not become a superuser');
$node->safe_psql($db, 'CREATE TYPE t_plain AS (id int, v text)');
is($node->safe_psql($db, "SELECT v FROM aibackup_read(NULL::t_plain, NULL, 'tenant.t')"), 'x',
	"... but reading with the domain's base type works");

# bigger than work_mem: spills, every row, bounded memory
is($node->safe_psql($db, "SET work_mem = '64kB'; SELECT count(*) || ':' || coalesce(md5(string_agg(md5(t::text), '' ORDER BY id)), '-') FROM aibackup_read(NULL::big) t"),
	$big_then, 'a table 200 times work_mem comes back whole through the tuplestore');

# a damaged object: an error, and no row
my $key = obj_key($prefix, $db, $id, 'public', 'orders');
my $file = "$work/orders.csv.gz";
is(s3_get($key, $file), 0, 'download the object');
my $bytes = slurp_file($file);
substr($bytes, length($bytes) - 12, 1) = chr(ord(substr($bytes, length($bytes) - 12, 1)) ^ 1);
open my $fh, '>', $file or die;
binmode $fh;
print $fh $bytes;
close $fh;
is(s3_put($file, $key), 0, 'damage one byte of it in the bucket');
($ret, my $out, $err) = psql_err($node, $db,
	"SELECT count(*) FROM aibackup_read(NULL::orders, '$id')");
isnt($ret, 0, 'reading the damaged object fails');
like($err, qr/is corrupt/, '... saying the object is corrupt');
is($out, '', '... and no row is returned');

# a LATIN1 database: the text converted to this database's encoding
$node->safe_psql('postgres', "CREATE DATABASE rd_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
$node->safe_psql('rd_latin1', 'CREATE EXTENSION aibackup');
$node->safe_psql('rd_latin1',
	"CREATE TABLE l (id int, t text); INSERT INTO l VALUES (1, E'caf\\u00e9 \\u00fc\\u00df'), (2, E'\"\\u00e0,\\u00e8\"\\n')");
my $l_then = checksum($node, 'rd_latin1', 'l');
($ret, undef, $err) = backup_now($node, 'rd_latin1');
is($ret, 0, 'backup of a LATIN1 database') or diag($err);
is(checksum($node, 'rd_latin1', 'aibackup_read(NULL::l)'), $l_then,
	'a LATIN1 backup reads back exactly in its database');

$node->stop;
done_testing();
