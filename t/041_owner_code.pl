# Code that runs as a table's owner during a restore, and definitions that
# only newer servers have (each part runs where the server has the feature):
# - a caller's planted search_path never reaches the owner's trigger;
# - a role that is a member of pg_execute_server_program only without its
#   privileges (NOINHERIT; ADMIN only in 16+) is not "ordinary";
# - 16+: a membership WITH SET FALSE does not let the caller create tables
#   owned by that role;
# - 18: a NOT NULL constraint added NOT VALID, virtual generated columns;
# - 17+: a partition's identity column draws from its root's sequence.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;
use AibackupData;

my $prefix = "t041-$$";
my $node = new_cluster('owner_code', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $db = 'owned';
my ($ret, $out, $err);
my $version = $node->safe_psql('postgres', 'SHOW server_version_num');

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, <<'SQL');
CREATE EXTENSION aibackup;
CREATE ROLE alice LOGIN;
CREATE ROLE carol LOGIN;
GRANT CREATE ON SCHEMA public TO alice, carol;
GRANT CREATE ON DATABASE owned TO carol;
GRANT EXECUTE ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean) TO carol;
SQL

# ------------------------------------------------ the caller's search_path
$node->safe_psql($db, <<'SQL', extra_params => [ '-U', 'alice' ]);
CREATE TABLE public.secret_alice (who text, what text);
INSERT INTO public.secret_alice VALUES ('alice', 'alice-secret');
CREATE FUNCTION public.norm(text) RETURNS text LANGUAGE sql AS 'SELECT lower($1)';
CREATE FUNCTION public.trg_norm() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.v := norm(NEW.v);   -- unqualified: resolved through search_path
  RETURN NEW;
END $$;
CREATE TABLE public.trg (id int, v text);
CREATE TRIGGER trg_norm BEFORE INSERT ON public.trg FOR EACH ROW EXECUTE FUNCTION public.trg_norm();
INSERT INTO public.trg VALUES (1, 'A'), (2, 'B');
GRANT SELECT, INSERT, TRUNCATE ON public.trg TO carol;
SQL
($ret, my $id, $err) = backup_now($node, $db);
is($ret, 0, 'a backup of alice\'s table with a trigger') or diag($err);
$node->safe_psql($db, <<'SQL', extra_params => [ '-U', 'carol' ]);
CREATE SCHEMA carols;
GRANT USAGE ON SCHEMA carols TO PUBLIC;
CREATE TABLE carols.loot (who text, what text);
GRANT INSERT ON carols.loot TO PUBLIC;
CREATE FUNCTION carols.norm(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO carols.loot SELECT * FROM public.secret_alice;
  RETURN $1;
END $$;
SQL
($ret, $out, $err) = $node->psql($db,
	"SET search_path = carols, public; SELECT aibackup_restore_table('public.trg', '$id')",
	extra_params => [ '-U', 'carol' ]);
is($node->safe_psql($db, 'SELECT count(*) FROM carols.loot'), '0',
	'the caller\'s function planted in its search_path did not run as the owner')
  or diag("restore said: $err");
like($err, qr/function norm\(text\) does not exist/,
	'the owner\'s trigger runs with search_path pg_catalog, pg_temp (its unqualified call fails)');
is($node->safe_psql($db, 'SELECT string_agg(v, \',\' ORDER BY id) FROM public.trg'), 'a,b',
	'and the failed restore changed nothing');
# with the function qualified by its owner, the same restore works
$node->safe_psql($db, q{ALTER FUNCTION public.trg_norm() SET search_path = public},
	extra_params => [ '-U', 'alice' ]);
($ret, $out, $err) = $node->psql($db,
	"SET search_path = carols, public; SELECT aibackup_restore_table('public.trg', '$id')",
	extra_params => [ '-U', 'carol' ]);
is($ret, 0, 'a trigger function that sets its own search_path restores') or diag($err);
is($node->safe_psql($db, 'SELECT count(*) FROM carols.loot'), '0', 'and still nothing is looted');

# ------------------------------ membership without privileges is not ordinary
$node->safe_psql($db, <<'SQL');
CREATE ROLE bob LOGIN NOINHERIT;
GRANT pg_execute_server_program TO bob;
GRANT CREATE ON SCHEMA public TO bob;
SQL
$node->safe_psql($db, <<'SQL', extra_params => [ '-U', 'bob' ]);
CREATE FUNCTION public.bob_ok(int) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE TABLE public.bt (id int PRIMARY KEY CHECK (public.bob_ok(id)));
INSERT INTO public.bt VALUES (1), (2);
SQL
($ret, $id, $err) = backup_now($node, $db);
is($ret, 0, 'a backup of a table owned by a NOINHERIT member of pg_execute_server_program') or diag($err);
$node->safe_psql($db, 'DROP TABLE public.bt');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.bt', '$id')");
is($ret, 0, 'the superuser restores it') or diag($err);
like($err, qr/plain keys and comments only/, 'with keys and comments only: the owner is not ordinary');
is($node->safe_psql($db, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.bt'::regclass AND contype = 'c'"),
	'0', 'its CHECK (code) was not recreated');
is($node->safe_psql($db, 'SELECT count(*) FROM public.bt'), '2', 'the rows are back');

# ------------------------------------- sequences: descending, out of bounds
$node->safe_psql($db, <<'SQL', extra_params => [ '-U', 'alice' ]);
CREATE SEQUENCE public.ds_seq INCREMENT -1 START -1 MAXVALUE -1;
CREATE TABLE public.ds (id int DEFAULT nextval('public.ds_seq'), v text);
ALTER SEQUENCE public.ds_seq OWNED BY public.ds.id;
INSERT INTO public.ds (v) SELECT 'd' FROM generate_series(1, 5);
CREATE TABLE public.ob (id int GENERATED ALWAYS AS IDENTITY (MAXVALUE 100), v text);
INSERT INTO public.ob (v) VALUES ('a'), ('b');
INSERT INTO public.ob OVERRIDING SYSTEM VALUE VALUES (1000, 'far');
SQL
($ret, $id, $err) = backup_now($node, $db);
is($ret, 0, 'a backup with a descending sequence and an identity value past its MAXVALUE') or diag($err);
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.ds', '$id')");
is($ret, 0, 'the table of the descending sequence restores in place') or diag($err);
is($node->safe_psql($db, q{INSERT INTO public.ds (v) VALUES ('next') RETURNING id}), '-6',
	'and its sequence goes on downwards, past the data');
# its sequence set back: the catch-up must pass the values within bounds
$node->safe_psql($db, 'ALTER TABLE public.ob ALTER COLUMN id RESTART WITH 1', extra_params => [ '-U', 'alice' ]);
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.ob', '$id')");
is($ret, 0, 'a table holding a value beyond its identity\'s MAXVALUE restores') or diag($err);
is($node->safe_psql($db, q{INSERT INTO public.ob (v) VALUES ('c') RETURNING id}), '3',
	'and its sequence goes past the values within its bounds, and stays within them');

# ---------------------------------------------- 16+: WITH SET FALSE
SKIP:
{
	skip 'GRANT ... WITH SET is 16\'s', 3 if $version < 160000;
	$node->safe_psql($db, <<'SQL');
CREATE ROLE dora LOGIN;
GRANT CREATE ON SCHEMA public TO dora;
GRANT dora TO carol WITH INHERIT FALSE, SET FALSE;
SQL
	$node->safe_psql($db, q{CREATE TABLE public.dt (id int PRIMARY KEY, v text DEFAULT 'd');
		INSERT INTO public.dt VALUES (1)}, extra_params => [ '-U', 'dora' ]);
	($ret, $id, $err) = backup_now($node, $db);
	is($ret, 0, 'a backup of dora\'s table') or diag($err);
	$node->safe_psql($db, 'DROP TABLE public.dt', extra_params => [ '-U', 'dora' ]);
	$node->safe_psql($db, 'GRANT pg_read_all_data TO carol');
	($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.dt', '$id')",
		extra_params => [ '-U', 'carol' ]);
	is($ret, 0, 'carol, a member of dora WITH SET FALSE, restores it') or diag($err);
	is($node->safe_psql($db, "SELECT relowner::regrole FROM pg_class WHERE oid = 'public.dt'::regclass"),
		'carol', 'as her own table: she may not make tables owned by dora');
	$node->safe_psql($db, 'REVOKE pg_read_all_data FROM carol');
}

# ---------------------------------------------- 18: NOT VALID NOT NULL, VIRTUAL
SKIP:
{
	skip 'NOT NULL NOT VALID and virtual generated columns are 18\'s', 7 if $version < 180000;
	$node->safe_psql($db, <<'SQL', extra_params => [ '-U', 'alice' ]);
CREATE TABLE public.nn (a int, b int);
INSERT INTO public.nn VALUES (1, NULL), (2, 20);
ALTER TABLE public.nn ADD CONSTRAINT nn_b NOT NULL b NOT VALID;
CREATE TABLE public.vg (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL);
INSERT INTO public.vg (a) VALUES (1), (5);
SQL
	($ret, $id, $err) = backup_now($node, $db);
	is($ret, 0, 'a backup with a NOT VALID NOT NULL and a virtual generated column') or diag($err);
	($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.nn', '$id', 'public.nn_r')");
	is($ret, 0, 'the table whose NOT NULL is NOT VALID restores next to itself') or diag($err);
	is($node->safe_psql($db, 'SELECT count(*) FILTER (WHERE b IS NULL) || \'/\' || count(*) FROM public.nn_r'),
		'1/2', 'with its NULL');
	like($node->safe_psql($db, "SELECT aibackup_table_ddl('public.vg', '$id')"),
		qr/b integer GENERATED ALWAYS AS \(\(?a \* 2\)?\) VIRTUAL/, 'the virtual column is captured as VIRTUAL');
	$node->safe_psql($db, 'DROP TABLE public.vg', extra_params => [ '-U', 'alice' ]);
	($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.vg', '$id')");
	is($ret, 0, 'the dropped table with a virtual column restores') or diag($err);
	is($node->safe_psql($db, "SELECT attgenerated FROM pg_attribute WHERE attrelid = 'public.vg'::regclass AND attname = 'b'"),
		'v', 'as a virtual generated column');
	is($node->safe_psql($db, q{SELECT string_agg(a || '=' || b, ',' ORDER BY a) FROM public.vg}),
		'1=2,5=10', 'computing its values');
}

# ---------------------------------------------- 17+: a partition's identity
SKIP:
{
	skip 'identity columns on partitioned tables are 17\'s', 4 if $version < 170000;
	$node->safe_psql($db, <<'SQL', extra_params => [ '-U', 'alice' ]);
CREATE TABLE public.pt (id int GENERATED ALWAYS AS IDENTITY, v text, PRIMARY KEY (id)) PARTITION BY RANGE (id);
CREATE TABLE public.pt1 PARTITION OF public.pt FOR VALUES FROM (1) TO (1000);
INSERT INTO public.pt (v) SELECT 'r' || g FROM generate_series(1, 5) g;
SQL
	($ret, $id, $err) = backup_now($node, $db);
	is($ret, 0, 'a backup of a partitioned table with an identity column') or diag($err);
	($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.pt1', '$id', 'public.pt1_r')");
	is($ret, 0, 'its partition restores next to itself') or diag($err);
	($ret, $out, $err) = $node->psql($db, q{INSERT INTO public.pt1_r (v) VALUES ('new') RETURNING id});
	ok($ret == 0 && $out > 5, 'an INSERT into the restored copy takes an id past the data')
	  or diag("ret $ret, id $out: $err\n"
		  . $node->safe_psql($db, "SELECT aibackup_table_ddl('public.pt1', '$id')") . "\n"
		  . $node->safe_psql($db, q{SELECT s, (SELECT last_value FROM public.pt1_r_id_seq) FROM pg_get_serial_sequence('public.pt1_r', 'id') s}));
	# in place, with the root's sequence set back
	$node->safe_psql($db, 'ALTER TABLE public.pt ALTER COLUMN id RESTART WITH 1', extra_params => [ '-U', 'alice' ]);
	($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.pt1', '$id')");
	($ret, $out, $err) = $node->psql($db, q{INSERT INTO public.pt (v) VALUES ('next') RETURNING id})
	  if $ret == 0;
	ok($ret == 0 && $out > 5, 'after a restore in place, the partitioned table\'s sequence is past the data')
	  or diag("ret $ret, id $out: $err");
}

done_testing();
