# Definitions: a dropped table comes back with its definition (compared in
# the catalog, not just the rows): serial and identity columns, a generated
# column, a collation, defaults, CHECK, UNIQUE, PRIMARY KEY, EXCLUDE, a
# partial and an expression index, comments, row security and a policy; its
# sequences past the data.  The same next to the original under a new name.
# aibackup_table_ddl() and the <schema>.<table>.sql object, run by psql in an
# empty database; a definition edited in the bucket to smuggle a statement.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use AibackupTest;
use AibackupData;

my $prefix = "t040-$$";
my $node = new_cluster('definitions', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $db = 'defs';
my ($ret, $out, $err);

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, <<'SQL');
CREATE EXTENSION aibackup;
CREATE ROLE clerk;
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, name text);
INSERT INTO shop.customers SELECT g, 'c' || g FROM generate_series(1, 10) g;
CREATE TABLE shop.orders (
    id serial PRIMARY KEY,
    n bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 5),
    code text COLLATE "C" NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'new',
    qty int CHECK (qty > 0),
    price numeric(10,2) DEFAULT 0,
    total numeric GENERATED ALWAYS AS (qty * price) STORED,
    during tsrange,
    customer_id int REFERENCES shop.customers (id),
    uid uuid NOT NULL DEFAULT gen_random_uuid(),
    CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&),
    CONSTRAINT price_sane CHECK (price >= 0) NOT VALID
);
CREATE INDEX orders_open ON shop.orders (status) WHERE status <> 'done';
-- an ordinary role owns them: its code may run as it at a restore
CREATE ROLE shopowner;
GRANT USAGE, CREATE ON SCHEMA shop TO shopowner;
ALTER TABLE shop.customers OWNER TO shopowner;
ALTER TABLE shop.orders OWNER TO shopowner;
CREATE INDEX orders_lower_code ON shop.orders (lower(code));
COMMENT ON TABLE shop.orders IS 'orders, with ''quotes''';
COMMENT ON COLUMN shop.orders.code IS 'the customer''s code';
ALTER TABLE shop.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY clerks_see_open ON shop.orders FOR SELECT TO clerk USING (status <> 'done');
INSERT INTO shop.orders (code, status, qty, price, during, customer_id)
  SELECT 'c' || g, CASE WHEN g % 3 = 0 THEN 'done' ELSE 'new' END, g % 7 + 1, g * 1.5,
         tsrange('2026-01-01'::timestamp + g * interval '1 day', '2026-01-01'::timestamp + g * interval '1 day' + interval '1 hour'),
         g % 10 + 1
  FROM generate_series(1, 300) g;
SQL

# the table's definition, as the catalog says it, with $t's own name taken
# out of object names so two tables can be compared
sub definition
{
	my ($t, $dbname) = @_;
	$dbname //= $db;
	my ($schema, $name) = split /\./, $t;
	return $node->safe_psql($dbname, <<"SQL");
SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
  SELECT 'col ' || a.attnum || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' coll=' || coalesce(co.collname, '-') || ' notnull=' || a.attnotnull
         || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
         || ' default=' || coalesce(regexp_replace(pg_get_expr(d.adbin, d.adrelid), '${name}_', 'T_', 'g'), '-') AS x
    FROM pg_attribute a
    LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = '$t'::regclass AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'con ' || contype::text || ' ' || pg_get_constraintdef(oid) || ' valid=' || convalidated
    FROM pg_constraint WHERE conrelid = '$t'::regclass AND contype <> 'f'
  UNION ALL
  SELECT 'idx ' || regexp_replace(pg_get_indexdef(indexrelid), 'INDEX \\S+ ON \\S+ ', 'INDEX I ON T ')
    FROM pg_index WHERE indrelid = '$t'::regclass
  UNION ALL
  SELECT 'comment ' || coalesce(obj_description('$t'::regclass, 'pg_class'), '-')
  UNION ALL
  SELECT 'colcomment ' || a.attname || ' ' || col_description('$t'::regclass, a.attnum)
    FROM pg_attribute a WHERE a.attrelid = '$t'::regclass AND col_description('$t'::regclass, a.attnum) IS NOT NULL
  UNION ALL
  SELECT 'rls ' || relrowsecurity || ' ' || relforcerowsecurity FROM pg_class WHERE oid = '$t'::regclass
  UNION ALL
  SELECT 'policy ' || policyname || ' ' || permissive || ' ' || cmd || ' ' || roles::text || ' ' || coalesce(qual, '-')
    FROM pg_policies WHERE schemaname = '$schema' AND tablename = '$name'
) s
SQL
}

# the names of its constraints and indexes
sub object_names
{
	my ($t) = @_;
	return $node->safe_psql($db, "SELECT string_agg(n, ',' ORDER BY n) FROM ("
		  . "SELECT conname AS n FROM pg_constraint WHERE conrelid = '$t'::regclass AND contype <> 'f' "
		  . "UNION SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = '$t'::regclass) x");
}

# privileges, foreign keys (one into a table that will be gone, one into
# the table itself), for the options of a restore
$node->safe_psql($db, <<'SQL');
CREATE ROLE gone;
GRANT SELECT, INSERT ON shop.orders TO clerk;
GRANT UPDATE ON shop.orders TO clerk WITH GRANT OPTION;
GRANT SELECT ON shop.orders TO gone;
CREATE TABLE shop.parent_t (id int PRIMARY KEY);
CREATE TABLE shop.child_t (id int PRIMARY KEY, pid int REFERENCES shop.parent_t,
                           up int REFERENCES shop.child_t);
INSERT INTO shop.parent_t VALUES (1);
INSERT INTO shop.child_t VALUES (1, 1, NULL), (2, 1, 1);
ALTER TABLE shop.parent_t OWNER TO shopowner;
ALTER TABLE shop.child_t OWNER TO shopowner;
SQL
my $acl_before = $node->safe_psql($db, "SELECT relacl FROM pg_class WHERE oid = 'shop.orders'::regclass");

my $before = definition('shop.orders');
my $names_before = object_names('shop.orders');
my $rows_before = fast_checksum($node, $db, 'shop.orders', 'id');
like($before, qr/con x EXCLUDE USING gist \(during WITH &&\)/, 'the definition query sees the EXCLUDE constraint');
like($before, qr/idx CREATE INDEX I ON T USING btree \(status\) WHERE/, 'and the partial index');

($ret, $out, $err) = backup_now($node, $db);
is($ret, 0, 'a backup of the database') or diag($err);
my $id = $out;
$node->safe_psql($db, 'REVOKE ALL ON shop.orders FROM gone; DROP ROLE gone');

# --- the definition in the manifest and beside the data ---
my ($m) = manifest($prefix, $db, $id);
my ($mt) = grep { $_->{name} eq 'orders' } @{ $m->{tables} // [] };
ok($mt && @{ $mt->{definition} // [] } > 10, 'the manifest holds the definition in pieces');
like($mt->{ddl} // '', qr/CREATE TABLE shop\.orders/, 'and as a script');
my $sqlfile = "$ENV{AIBACKUP_TEST_WORK}/t040-orders.sql";
is(s3_get("$prefix/$db/$id/shop.orders.sql", $sqlfile), 0, 'shop.orders.sql is beside the data');
my $script = -f $sqlfile ? slurp_file($sqlfile) : '';
is($script, $mt->{ddl}, 'with the manifest\'s script');
my $ddl = $node->safe_psql($db, "SELECT aibackup_table_ddl('shop.orders')");
is($ddl =~ s/\s+\z//r, $script =~ s/\s+\z//r, 'aibackup_table_ddl() shows the same script');
like($ddl, qr/FOREIGN KEY \(customer_id\) REFERENCES shop\.customers\(id\)/, 'foreign keys are in it');
like($ddl, qr/CREATE POLICY clerks_see_open ON shop\.orders/, 'and the policy');

# --- dropped, and restored under its own name ---
$node->safe_psql($db, 'DROP TABLE shop.orders');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('shop.orders')");
is($ret, 0, 'the dropped table is restored') or diag($err);
is(fast_checksum($node, $db, 'shop.orders', 'id'), $rows_before, 'with its rows');
my $after = definition('shop.orders');
is($after, $before, 'and its definition, identical in the catalog');
is(object_names('shop.orders'), $names_before, 'with the same constraint and index names');
is($node->safe_psql($db,
	"SELECT count(*) FROM pg_constraint WHERE conrelid = 'shop.orders'::regclass AND contype = 'f'"),
	'0', 'foreign keys are not applied (the referenced table may differ)');
($ret, $out, $err) = $node->psql($db,
	"INSERT INTO shop.orders (code, qty) VALUES ('new1', 1) RETURNING id, n");
is($ret, 0, 'an INSERT after the restore does not collide') or diag($err);
my ($newid, $newn) = split /\|/, $out // '';
ok(($newid // 0) > 300, "the serial column's sequence is past the data ($newid)");
my $maxn = $node->safe_psql($db, "SELECT max(n) FROM shop.orders WHERE code <> 'new1'");
ok(($newn // 0) > $maxn, "the identity column's sequence too ($newn > $maxn)");
is($node->safe_psql($db, "SELECT pg_get_serial_sequence('shop.orders', 'id')"), 'shop.orders_id_seq',
	'the serial sequence has its old name and belongs to the column');

# --- next to the original, under a new name ---
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_then')");
is($ret, 0, 'restored next to the original under a new name') or diag($err);
is(fast_checksum($node, $db, 'shop.orders_then', 'id'), $rows_before, 'with the backed-up rows');
is(definition('shop.orders_then'), $before, 'and the same definition');
is($node->safe_psql($db, "SELECT pg_get_serial_sequence('shop.orders_then', 'id')"),
	'shop.orders_then_id_seq', 'its own serial sequence');
($ret, $out, $err) = $node->psql($db,
	"INSERT INTO shop.orders_then (code, qty) VALUES ('new2', 1); INSERT INTO shop.orders (code, qty) VALUES ('new3', 1)");
is($ret, 0, 'both tables take new rows') or diag($err);
is($node->safe_psql($db,
	"SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
	  . "WHERE i.indrelid = 'shop.orders_then'::regclass"),
	'no_overlap1,orders_then_code_key,orders_then_lower_code,orders_then_open,orders_then_pkey',
	'its indexes have names of their own: the table\'s name replaced, or a number added');

# --- restored in place: sequences moved past the restored data ---
$node->safe_psql($db, "ALTER SEQUENCE shop.orders_id_seq RESTART WITH 1");
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('shop.orders', '$id')");
is($ret, 0, 'a restore in place') or diag($err);
($ret, $out, $err) = $node->psql($db, "INSERT INTO shop.orders (code, qty) VALUES ('new4', 1) RETURNING id");
is($ret, 0, 'an INSERT after it does not collide') or diag($err);
ok(($out // 0) > 300, "the sequence was moved past the data ($out)");

# --- options: foreign keys and privileges, asked for; the owner, not ---
is($node->safe_psql($db, "SELECT has_table_privilege('clerk', 'shop.orders', 'SELECT')"), 'f',
	'a recreated table has no privileges unless asked for');
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_opts', foreign_keys => true, grants => true)");
is($ret, 0, 'restored with foreign_keys and grants') or diag($err);
like($err, qr/WARNING:  the privileges of role "gone" on table shop\.orders_opts are not restored: the role does not exist/,
	'a role that is gone is said, not fatal');
is($node->safe_psql($db, "SELECT relacl FROM pg_class WHERE oid = 'shop.orders_opts'::regclass"),
	$acl_before =~ s/,gone=r\/shopowner//r, 'its privileges are the backed-up ones, with the grant option');
is($node->safe_psql($db,
	"SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ',') FROM pg_constraint "
	  . "WHERE conrelid = 'shop.orders_opts'::regclass AND contype = 'f'"),
	'orders_opts_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES shop.customers(id)',
	'its foreign key is back, named for the new table');
$node->safe_psql($db, 'DROP TABLE shop.child_t');
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.child_t', '$id', 'shop.child_copy', foreign_keys => true)");
is($ret, 0, 'a table whose key points at itself, under a new name') or diag($err);
is($node->safe_psql($db,
	"SELECT string_agg(confrelid::regclass::text, ',' ORDER BY conname) FROM pg_constraint "
	  . "WHERE conrelid = 'shop.child_copy'::regclass AND contype = 'f'"),
	'shop.parent_t,shop.child_copy', 'its key into itself points at the new table');
$node->safe_psql($db, 'DROP TABLE shop.parent_t CASCADE');
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.child_t', '$id', NULL, foreign_keys => true)");
like($err, qr/foreign key child_t_pid_fkey of table shop\.child_t references a table that does not exist.*\n.*\nHINT:  Restore the referenced table first/,
	'a key into a table that is gone is refused, saying what to do');
is($node->safe_psql($db, "SELECT to_regclass('shop.child_t') IS NULL"), 't', 'and nothing was created');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('shop.child_t', '$id')");
is($ret, 0, 'without foreign_keys it is restored') or diag($err);
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_mine', owner => false)");
is($ret, 0, 'restored with owner => false') or diag($err);
is($node->safe_psql($db, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'shop.orders_mine'::regclass"),
	$node->safe_psql($db, 'SELECT current_user'), 'the caller owns it');
like($err, qr/recreated with its columns, types, plain keys and comments only/,
	'and, not the owner\'s, only what runs no code is recreated');
$node->safe_psql($db, 'DROP TABLE shop.orders_opts, shop.orders_mine, shop.child_copy');

# --- the script, run by psql in an empty database, then the data ---
# (roles are the cluster's: clerk, whom the policy names, exists there too)
$node->safe_psql('postgres', 'CREATE DATABASE plain');
$node->safe_psql('plain', 'CREATE SCHEMA shop; CREATE TABLE shop.customers (id int PRIMARY KEY, name text); '
	  . 'INSERT INTO shop.customers SELECT g, NULL FROM generate_series(1, 10) g');
my $csv = "$ENV{AIBACKUP_TEST_WORK}/t040-orders.csv";
is(s3_get("$prefix/$db/$id/shop.orders.csv.gz", "$csv.gz"), 0, 'the data downloaded');
system('gunzip', '-f', "$csv.gz");
my $psql = $node->installed_command('psql');
my $cols = join(', ', map { $_->{name} } @{ $mt->{columns} });
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run([ $psql, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('plain'),
	'-f', $sqlfile, '-c', "\\copy shop.orders ($cols) FROM '$csv' (FORMAT csv, HEADER)" ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'psql -f <schema>.<table>.sql, then \\copy of the gunzipped CSV, in an empty database')
  or diag($stderr);
is($node->safe_psql('plain', 'SELECT count(*) FROM shop.orders'), '300', 'all rows are there');
is(definition('shop.orders', 'plain'), $before, 'the script makes the same definition');

# --- a definition edited in the bucket to smuggle a statement ---
my $mfile = "$ENV{AIBACKUP_TEST_WORK}/t040-manifest.json";
s3_get("$prefix/$db/$id/manifest.json", $mfile);
my $orig_manifest = slurp_file($mfile);
my $mj = JSON::PP->new->decode($orig_manifest);
my ($evil) = grep { $_->{name} eq 'orders' } @{ $mj->{tables} };
my ($col) = grep { $_->{kind} eq 'column' && $_->{name} eq 'qty' } @{ $evil->{definition} };
$col->{sql} = 'integer); CREATE TABLE shop.pwned (x int); CREATE TABLE shop.more (y integer';
put_manifest($prefix, $db, $id, $mj);
$node->safe_psql($db, 'DROP TABLE shop.orders_then');
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_then')");
isnt($ret, 0, 'a definition that smuggles a statement is refused');
like($err, qr/definition of table "shop.orders" in backup "$id" is not valid/, 'saying so') or diag($err);
is($node->safe_psql($db, "SELECT count(*) FROM pg_class WHERE relname IN ('pwned', 'more', 'orders_then')"),
	'0', 'and nothing was created');

$col->{sql} = 'integer CHECK (qty > 0), CONSTRAINT sneaky CHECK (false)';
put_manifest($prefix, $db, $id, $mj);
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_then')");
isnt($ret, 0, 'a column that carries a table constraint of its own is refused');
my ($idx) = grep { $_->{kind} eq 'index' } @{ $evil->{definition} };
$col->{sql} = 'integer';
$idx->{sql} =~ s/ ON shop\.orders / ON shop.customers /;
put_manifest($prefix, $db, $id, $mj);
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_then')");
isnt($ret, 0, 'an index definition on another table is refused');
is($node->safe_psql($db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'customers'"), '1',
	'and no index was added to it');

# --- a manifest edited to run a built-in function as superuser ---
# (the owner set to the superuser, an extra column whose DEFAULT reads a
# server file, a CHECK that writes one)
my $pwned = $node->data_dir . '/pwned-by-manifest';
$mj = JSON::PP->new->decode($orig_manifest);
($evil) = grep { $_->{name} eq 'orders' } @{ $mj->{tables} };
push @{ $evil->{definition} }, { kind => 'column', name => 'extra',
	sql => "pg_catalog.text DEFAULT pg_catalog.pg_read_file('PG_VERSION')" };
put_manifest($prefix, $db, $id, $mj);
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_then')");
isnt($ret, 0, 'a definition with a column the backup did not copy is refused');
like($err, qr/is not valid/, 'as not valid') or diag($err);
pop @{ $evil->{definition} };
$evil->{owner} = 'postgres';	# a superuser: no code from the bucket runs as it
push @{ $evil->{definition} }, { kind => 'constraint', name => 'sneaky',
	sql => "CHECK ((pg_catalog.length(pg_catalog.pg_read_file('PG_VERSION')) > 0 AND "
	  . "pg_catalog.lo_export(pg_catalog.lo_from_bytea(0, '\\x41'::bytea), '$pwned') = 1))" };
put_manifest($prefix, $db, $id, $mj);
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_then')");
is($ret, 0, 'a table whose manifest names a superuser owner restores') or diag($err);
like($err, qr/WARNING:  table shop.orders_then is recreated with its columns, types, plain keys and comments only/,
	'with its columns, types, plain keys and comments only, saying so') or diag($err);
like($err, qr/is a superuser or holds powers/, 'and why');
ok(!-e $pwned, 'the CHECK\'s functions never ran');
is($node->safe_psql($db, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'shop.orders_then'::regclass AND contype = 'p'"),
	'1', 'its primary key is there (a plain key runs no code)');
is($node->safe_psql($db, "SELECT count(*) FROM pg_constraint WHERE conname = 'sneaky'"), '0',
	'the CHECK is not there');

# a function any role may call, but that runs SQL given as text
$mj = JSON::PP->new->decode($orig_manifest);
($evil) = grep { $_->{name} eq 'orders' } @{ $mj->{tables} };
$evil->{owner} = 'postgres';
push @{ $evil->{definition} }, { kind => 'index', name => 'sneaky_idx',
	sql => "CREATE INDEX sneaky_idx ON shop.orders USING btree ((pg_catalog.query_to_xml('SELECT 1', true, false, '')::text))" };
put_manifest($prefix, $db, $id, $mj);
$node->safe_psql($db, 'DROP TABLE shop.orders_then');
($ret, $out, $err) = $node->psql($db,
	"SELECT aibackup_restore_table('shop.orders', '$id', 'shop.orders_then')");
like($err, qr/plain keys and comments only/, 'so with an index that calls query_to_xml()') or diag($err);
is($node->safe_psql($db, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'sneaky%'"), '0',
	'which is not built');
$node->safe_psql($db, 'DROP TABLE shop.orders_then');
put_manifest($prefix, $db, $id, JSON::PP->new->decode($orig_manifest));	# as it was

# --- a tenant's CHECK must not run as the superuser restoring it ---
$node->safe_psql($db, <<'SQL');
CREATE ROLE alice LOGIN CREATEROLE;
CREATE ROLE carol LOGIN;
GRANT CREATE ON SCHEMA public TO alice, carol;
SQL
$node->safe_psql($db, <<'SQL', extra_params => [ '-U', 'alice' ]);
CREATE FUNCTION public.evil(int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE alice SUPERUSER';
  END IF;
  RETURN true;
END $$;
SQL
$node->safe_psql($db, <<'SQL', extra_params => [ '-U', 'carol' ]);
CREATE TABLE public.victim (id int CHECK (public.evil(id)));
INSERT INTO public.victim VALUES (1), (2);
SQL
($ret, $out, $err) = backup_now($node, $db);
is($ret, 0, 'a backup with the tenant\'s table') or diag($err);
my $vid = $out;
$node->safe_psql($db, 'DROP TABLE public.victim', extra_params => [ '-U', 'carol' ]);
# (16+ lets a CREATEROLE role rename only roles it administers: the superuser
# renames the owner away)
$node->safe_psql($db, 'ALTER ROLE carol RENAME TO carol_gone');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.victim', '$vid')");
is($ret, 0, 'the superuser restores the table whose owner is gone') or diag($err);
like($err, qr/plain keys and comments only.*\n.*\("carol"\) does not exist/s, 'without the tenant\'s CHECK, saying why')
  or diag($err);
is($node->safe_psql($db, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.victim'::regclass AND contype = 'c'"),
	'0', 'the CHECK is not there');
is($node->safe_psql($db, "SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'"), 'f',
	'the tenant did not become superuser');
is($node->safe_psql($db, 'SELECT count(*) FROM public.victim'), '2', 'the rows are back');

# --- a superuser's table: keys and comments, no code ---
$node->safe_psql($db, q{CREATE TABLE public.su_t (id int PRIMARY KEY, v text DEFAULT 'x' CHECK (length(v) < 10));
	COMMENT ON TABLE public.su_t IS 'kept'; INSERT INTO public.su_t VALUES (1, 'a')});
($ret, $out, $err) = backup_now($node, $db);
is($ret, 0, 'a backup with a superuser\'s table') or diag($err);
$node->safe_psql($db, 'DROP TABLE public.su_t');
($ret, $out, $err) = $node->psql($db, "SELECT aibackup_restore_table('public.su_t')");
is($ret, 0, 'it restores') or diag($err);
like($err, qr/plain keys and comments only/, 'with a WARNING');
is($node->safe_psql($db, q{SELECT (SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.su_t'::regclass AND contype = 'p')
	|| '/' || (SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.su_t'::regclass AND contype = 'c')
	|| '/' || coalesce(obj_description('public.su_t'::regclass, 'pg_class'), '-')
	|| '/' || (SELECT count(*) FROM pg_attrdef WHERE adrelid = 'public.su_t'::regclass)}),
	'1/0/kept/0', 'its primary key and comment, not its CHECK or default');

# --- a table name that breaks out of a comment in the script ---
$node->safe_psql($db, qq{CREATE TABLE public."t\nSELECT 'INJECTED-' || current_user; --" (id int)});
($ret, $out, $err) = backup_now($node, $db);
is($ret, 0, 'a backup with a table whose name holds a line break') or diag($err);
my $nl_ddl = $node->safe_psql($db,
	qq{SELECT aibackup_table_ddl(E'public."t\\nSELECT ''INJECTED-'' || current_user; --"')});
my $nl_file = "$ENV{AIBACKUP_TEST_WORK}/t040-nl.sql";
open my $nfh, '>', $nl_file or die;
print $nfh $nl_ddl;
close $nfh;
$node->safe_psql('postgres', 'CREATE DATABASE scratch');
($stdout, $stderr) = ('', '');
IPC::Run::run([ $psql, '-X', '-d', $node->connstr('scratch'), '-f', $nl_file ],
	'>', \$stdout, '2>', \$stderr);
unlike($stdout . $stderr, qr/INJECTED-/, 'running its script runs nothing but its definition')
  or diag($stdout . $stderr);
is($node->safe_psql('scratch', "SELECT count(*) FROM pg_class WHERE relname LIKE 't%INJECTED%'"), '1',
	'and creates the table');

$node->stop;
done_testing();
