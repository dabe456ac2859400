# The bulk restore (src/pg/copy_in.c): a table without INSERT triggers or
# generated columns is loaded frozen, without index entries, and its
# indexes are built after the load.  It must keep every promise of COPY:
# unique, exclusion, deferrable, CHECK and NOT NULL constraints refuse bad
# rows and change nothing; expression and partial indexes answer right;
# the rows are frozen (VACUUM finds nothing to do) and vanish with a
# rollback or a rollback to a savepoint; a REPEATABLE READ transaction may
# restore.  Tables with triggers, generated columns or foreign keys take
# COPY's row-by-row path, triggers firing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;
use AibackupData;

my $prefix = "t050-$$";
my $node = new_cluster('bulk', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $db = 'bk';
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION aibackup');
$node->safe_psql($db, <<'SQL');
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric CHECK (price >= 0),
                    during int4range, tag text);
CREATE UNIQUE INDEX items_lower_name ON items (lower(name));
CREATE INDEX items_cheap ON items (price) WHERE price < 10;
INSERT INTO items SELECT g, 'item ' || g, g % 50, int4range(g * 10, g * 10 + 5), repeat('x', g % 3000)
  FROM generate_series(1, 20000) g;
CREATE TABLE dups (id int, name text, price numeric, during int4range, tag text);
INSERT INTO dups VALUES (1, 'a', 1, '[1,2)', NULL), (1, 'b', 2, '[3,4)', NULL);
CREATE TABLE negative (id int, name text, price numeric, during int4range, tag text);
INSERT INTO negative VALUES (1, 'a', 1, NULL, NULL), (2, 'b', -5, NULL, NULL);
CREATE TABLE nameless (id int, name text, price numeric, during int4range, tag text);
INSERT INTO nameless VALUES (1, NULL, 1, NULL, NULL);
CREATE TABLE overlapping (id int, name text, price numeric, during int4range, tag text);
INSERT INTO overlapping VALUES (1, 'a', 1, '[1,10)', NULL), (2, 'b', 1, '[5,15)', NULL);
CREATE TABLE audit (n int);
CREATE FUNCTION count_row() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.audit VALUES (NEW.id); RETURN NEW; END$$;
CREATE TABLE trig (id int PRIMARY KEY, v text);
CREATE TRIGGER trig_count AFTER INSERT ON trig FOR EACH ROW EXECUTE FUNCTION count_row();
INSERT INTO trig SELECT g, 'v' || g FROM generate_series(1, 100) g;
CREATE TABLE gen (id int PRIMARY KEY, a int, b int GENERATED ALWAYS AS (a * 2) STORED);
INSERT INTO gen (id, a) SELECT g, g FROM generate_series(1, 100) g;
CREATE TABLE parent (id int PRIMARY KEY);
INSERT INTO parent SELECT generate_series(1, 100);
CREATE TABLE child (id int PRIMARY KEY, item int REFERENCES parent);
INSERT INTO child SELECT g, g FROM generate_series(1, 100) g;
SQL
my $sum = checksum($node, $db, 'items');
my ($ret, $out, $err) = backup_now($node, $db);
is($ret, 0, 'backup') or diag($err);
my $id = $node->safe_psql($db, 'SELECT max(backup_id) FROM aibackup_list_backups()');
$node->safe_psql($db, 'DELETE FROM audit');

# which path a restore took, from its DEBUG1 line
sub restore_path
{
	my ($sql, $pre) = @_;
	my ($r, $o, $e) = psql_err($node, $db,
		($pre // '') . "SET client_min_messages = debug1; $sql");
	my $path = $e =~ /loaded table "[^"]*" in bulk/ ? 'bulk'
	  : $e =~ /loaded table "[^"]*" through COPY FROM/ ? 'copy' : 'none';
	return ($r, $path, $e);
}

# the bulk path, in place
$node->safe_psql($db, "UPDATE items SET name = 'changed ' || id WHERE id % 7 = 0");
my ($r, $path, $e) = restore_path(restore_sql('items', $id));
is($r, 0, 'restore of items') or diag($e);
is($path, 'bulk', 'items is loaded in bulk');
is(checksum($node, $db, 'items'), $sum, 'the rows are the backed-up rows');
is($node->safe_psql($db, "SET enable_seqscan = off; SELECT id FROM items WHERE lower(name) = 'item 777'"),
	'777', 'the expression index answers');
is($node->safe_psql($db, "SET enable_seqscan = off; SELECT count(*) FROM items WHERE price < 10"),
	$node->safe_psql($db, "SET enable_indexscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM items WHERE price < 10"),
	'the partial index agrees with a sequential scan');
is($node->safe_psql($db, "SELECT count(*) FROM items WHERE during && int4range(100, 116)"), '2',
	'the ranges came back');
($r, $out, $e) = psql_err($node, $db, "INSERT INTO items VALUES (5, 'x', 1, NULL, NULL)");
like($e, qr/duplicate key value violates unique constraint "items_pkey"/,
	'the primary key refuses a duplicate after the load');
($r, $out, $e) = psql_err($node, $db, 'VACUUM (FREEZE, VERBOSE) items');
like($e, qr/pages: 0 removed, \d+ remain, 0 scanned/,
	'VACUUM FREEZE has no page to scan: the rows were written frozen and all-visible')
  or diag($e);

# the bulk path with a subtransaction rolled back, and a transaction
$node->safe_psql($db, "UPDATE items SET name = 'kept ' || id");
my $kept = checksum($node, $db, 'items');
($r, $out, $e) = psql_err($node, $db,
	"BEGIN; SAVEPOINT s; " . restore_sql('items', $id) . "; ROLLBACK TO s; COMMIT");
is($r, 0, 'restore inside a savepoint, rolled back') or diag($e);
is(checksum($node, $db, 'items'), $kept, 'the frozen rows went with the savepoint');
($r, $out, $e) = psql_err($node, $db, "BEGIN; " . restore_sql('items', $id) . "; ROLLBACK");
is(checksum($node, $db, 'items'), $kept, 'and with a rolled-back transaction');
($r, $path, $e) = restore_path(restore_sql('items', $id) . '; COMMIT',
	'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM items; ');
is($r, 0, 'restore in a REPEATABLE READ transaction that read the table') or diag($e);
is($path, 'bulk', 'in bulk too');
is(checksum($node, $db, 'items'), $sum, 'with the backed-up rows');

# bad rows for the target: refused, nothing changed
for my $case (
	[ 'dups', qr/could not create unique index "items_pkey"|duplicate key value/, 'a duplicate key' ],
	[ 'negative', qr/violates check constraint "items_price_check"/, 'a CHECK violation' ],
	[ 'nameless', qr/null value in column "name"/, 'a NOT NULL violation' ])
{
	my ($src, $re, $what) = @$case;
	($r, $path, $e) = restore_path(restore_sql("public.$src", $id, 'items'));
	isnt($r, 0, "restoring $src into items fails: $what");
	like($e, $re, "$what: PostgreSQL's error");
	is(checksum($node, $db, 'items'), $sum, "$what: items is unchanged");
}

# an exclusion constraint and a deferrable unique constraint
$node->safe_psql($db, <<'SQL');
CREATE TABLE booked (id int, name text, price numeric, during int4range, tag text,
                     EXCLUDE USING gist (during WITH &&));
CREATE TABLE deferred (id int UNIQUE DEFERRABLE INITIALLY DEFERRED, name text, price numeric,
                       during int4range, tag text);
INSERT INTO booked VALUES (9, 'keep', 1, '[100,200)', NULL);
INSERT INTO deferred VALUES (9, 'keep', 1, NULL, NULL);
SQL
($r, $path, $e) = restore_path(restore_sql('public.overlapping', $id, 'booked'));
isnt($r, 0, 'overlapping ranges into an exclusion constraint fail');
like($e, qr/could not create exclusion constraint|conflicting key value violates exclusion constraint/,
	'with the exclusion error');
is($node->safe_psql($db, 'SELECT id FROM booked'), '9', 'booked is unchanged');
($r, $path, $e) = restore_path(restore_sql('public.dups', $id, 'deferred'));
isnt($r, 0, 'duplicates into a deferrable unique constraint fail');
is($node->safe_psql($db, 'SELECT id FROM deferred'), '9', 'deferred is unchanged');

# the row-by-row path: triggers fire, generated columns, foreign keys
($r, $path, $e) = restore_path(restore_sql('trig', $id));
is($r, 0, 'restore of a table with a trigger') or diag($e);
is($path, 'copy', 'goes through COPY FROM');
is($node->safe_psql($db, 'SELECT count(*) FROM audit'), '100', 'and its trigger fired for every row');
($r, $path, $e) = restore_path(restore_sql('gen', $id));
is($path, 'copy', 'a table with a generated column goes through COPY FROM');
is($node->safe_psql($db, 'SELECT sum(b) FROM gen'), '10100', 'which computes it');
($r, $path, $e) = restore_path(restore_sql('child', $id));
is($r, 0, 'restore of a table with a foreign key') or diag($e);
is($path, 'copy', 'goes through COPY FROM (its checks are triggers)');

# a dropped table is created and loaded (its indexes come after, as before)
$node->safe_psql($db, 'DROP TABLE items');
($r, $path, $e) = restore_path(restore_sql('items', $id));
is($r, 0, 'restore of a dropped table') or diag($e);
is($path, 'bulk', 'loaded in bulk');
is(checksum($node, $db, 'items'), $sum, 'with the backed-up rows');

$node->stop;
done_testing();
