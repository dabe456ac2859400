# Backup and restore: the SQL functions end to end against the real S3
# server, listings, restores into the same, a new and a dropped table,
# transactions, column matching, foreign keys, privileges, row-level
# security, one consistent snapshot under concurrent writes, concurrent
# backups, exclusions, lock timeouts, partial backups, the manifest, and
# objects readable with standard tools.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Digest::SHA;
use Time::HiRes qw(time sleep);
use AibackupTest;
use AibackupData;

my $prefix = "t010-$$";
my $node = new_cluster('backup_restore', prefix => $prefix);
my $work = "$ENV{AIBACKUP_TEST_WORK}/t010-$$";
mkdir $work;
my $db = 'br';
my ($ret, $out, $err);

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION aibackup');
$node->safe_psql($db, <<'SQL');
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10,2));
INSERT INTO items SELECT g, 'item ' || g, g % 17, (g * 1.25)::numeric(10,2)
  FROM generate_series(1, 1000) g;
CREATE TABLE orders (id int PRIMARY KEY, item_id int, note text);
INSERT INTO orders SELECT g, g % 1000 + 1, CASE WHEN g % 5 = 0 THEN NULL ELSE 'note, "' || g || '"' END
  FROM generate_series(1, 500) g;
CREATE TABLE t_cols (a int, b text, c int);
INSERT INTO t_cols SELECT g, 'b' || g, g * 10 FROM generate_series(1, 100) g;
CREATE TABLE fk_parent (id int PRIMARY KEY, v text);
INSERT INTO fk_parent SELECT g, 'p' || g FROM generate_series(1, 20) g;
CREATE TABLE fk_child (id int, parent_id int CONSTRAINT fk_child_parent_fk REFERENCES fk_parent (id));
INSERT INTO fk_child SELECT g, g % 20 + 1 FROM generate_series(1, 40) g;
CREATE TABLE secret_t (id int, s text);
INSERT INTO secret_t SELECT g, 'secret ' || g FROM generate_series(1, 10) g;
CREATE TABLE rls_t (id int, v text);
INSERT INTO rls_t SELECT g, 'r' || g FROM generate_series(1, 10) g;
ALTER TABLE rls_t ENABLE ROW LEVEL SECURITY;
CREATE POLICY rls_all ON rls_t USING (true) WITH CHECK (true);
CREATE TABLE to_drop (id int, v text, d date, amount numeric(12,3));
INSERT INTO to_drop SELECT g, 'v' || g, date '2020-01-01' + g, g / 7.0 FROM generate_series(1, 300) g;
CREATE TABLE only_old (id int);
INSERT INTO only_old SELECT generate_series(1, 7);
CREATE SEQUENCE counter_seq;
SELECT nextval('counter_seq') FROM generate_series(1, 3);
CREATE SEQUENCE notcalled_seq;
SELECT setval('notcalled_seq', 42, false);
CREATE UNLOGGED TABLE ul (id int, v text);
INSERT INTO ul SELECT g, 'u' || g FROM generate_series(1, 50) g;
CREATE TABLE meas (id int, region text) PARTITION BY LIST (region);
CREATE TABLE meas_eu PARTITION OF meas FOR VALUES IN ('eu');
CREATE TABLE meas_us PARTITION OF meas FOR VALUES IN ('us');
CREATE TABLE meas_asia PARTITION OF meas FOR VALUES IN ('asia') PARTITION BY RANGE (id);
CREATE TABLE meas_asia_lo PARTITION OF meas_asia FOR VALUES FROM (MINVALUE) TO (100);
CREATE TABLE meas_asia_hi PARTITION OF meas_asia FOR VALUES FROM (100) TO (MAXVALUE);
INSERT INTO meas SELECT g, (ARRAY['eu','us','asia'])[g % 3 + 1] FROM generate_series(1, 300) g;
CREATE VIEW v_items AS SELECT * FROM items;
CREATE FOREIGN DATA WRAPPER dummy_fdw;
CREATE SERVER dummy_srv FOREIGN DATA WRAPPER dummy_fdw;
CREATE FOREIGN TABLE ft (a int) SERVER dummy_srv;
CREATE SCHEMA scratch;
CREATE TABLE scratch.tmp1 (x int);
INSERT INTO scratch.tmp1 VALUES (1), (2);
CREATE TABLE scratch.tmp2 (x int);
CREATE TABLE skip_me (x int);
INSERT INTO skip_me VALUES (3);
SQL

# what a backup of this database must hold: every table with storage
# outside system schemas (not the extension's own), with its row count
sub expected_tables
{
	my ($d) = @_;
	my %t;
	my $list = $node->safe_psql($d, <<'SQL');
SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
   AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                   AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1
SQL
	for my $name (split /\n/, $list)
	{
		my ($s, $r) = split /\./, $name, 2;
		$t{$name} = $node->safe_psql($d, "SELECT count(*) FROM " . qq("$s"."$r"));
	}
	return \%t;
}

# list_tables(id) as { "schema.table" => row hash }
sub listed_tables
{
	my ($d, $id) = @_;
	my $arg = defined $id ? "'$id'" : 'NULL';
	my %t;
	my $rows = $node->safe_psql($d,
		"SELECT backup_id, schema_name, table_name, rows, raw_bytes, compressed_bytes, object_key, sha256 "
		  . "FROM aibackup_list_tables($arg)");
	for my $line (split /\n/, $rows)
	{
		my @f = split /\|/, $line, -1;
		$t{"$f[1].$f[2]"} = {
			backup_id => $f[0], rows => $f[3], raw_bytes => $f[4],
			compressed_bytes => $f[5], object_key => $f[6], sha256 => $f[7] };
	}
	return \%t;
}

# list_backups() as a list of row hashes, in the order returned
sub listed_backups
{
	my ($d) = @_;
	my @b;
	my $rows = $node->safe_psql($d,
		"SELECT backup_id, status, started_at <= finished_at, tables, rows, raw_bytes, compressed_bytes "
		  . "FROM aibackup_list_backups()");
	for my $line (split /\n/, $rows)
	{
		my @f = split /\|/, $line, -1;
		push @b, { backup_id => $f[0], status => $f[1], ordered => $f[2],
			tables => $f[3], rows => $f[4], raw_bytes => $f[5], compressed_bytes => $f[6] };
	}
	return @b;
}

my %cs;    # checksums before any damage
$cs{$_} = checksum($node, $db, $_)
  for qw(items orders t_cols fk_parent secret_t rls_t to_drop only_old ul meas meas_eu
  meas_asia_lo scratch.tmp1);

# ------------------------------------------------------------------ basic backup
my $expected = expected_tables($db);
my $id1;
($ret, $id1, $err) = backup_now($node, $db);
is($ret, 0, 'aibackup_backup_now() succeeds') or diag($err);
like($id1, qr/^\d{8}T\d{6}Z$/, 'it returns a backup id YYYYMMDDTHHMMSSZ');

my ($b1) = grep { $_->{backup_id} eq $id1 } listed_backups($db);
ok($b1, 'aibackup_list_backups() shows the backup');
is($b1->{status}, 'ok', 'with status ok');
is($b1->{ordered}, 't', 'started_at <= finished_at');
is($b1->{tables}, scalar(keys %$expected), 'its table count is the number of tables in the database');
my $exp_rows = 0;
$exp_rows += $_ for values %$expected;
is($b1->{rows}, $exp_rows, 'its row count is the sum of the tables\' real row counts');
ok($b1->{raw_bytes} > 0 && $b1->{compressed_bytes} > 0, 'raw and compressed bytes are reported');

my $lt1 = listed_tables($db, $id1);
is_deeply([ sort keys %$lt1 ], [ sort keys %$expected ],
	'aibackup_list_tables(id) lists exactly the tables of the database');
is_deeply({ map { $_ => $lt1->{$_}{rows} } keys %$lt1 }, $expected,
	'and each table\'s row count matches count(*)');
is_deeply([ grep { $lt1->{$_}{sha256} !~ /^[0-9a-f]{64}$/ } sort keys %$lt1 ], [],
	'every table has a SHA-256');
is_deeply([ grep { $lt1->{$_}{object_key} !~ /\Q$id1\E\/.*\.csv\.gz$/ } sort keys %$lt1 ], [],
	'every object key lies under the backup id and ends in .csv.gz');
is($b1->{compressed_bytes},
	eval { my $s = 0; $s += $_->{compressed_bytes} for values %$lt1; $s },
	'the backup\'s compressed bytes are the sum of its tables\'');

# ------------------------------------------------------------------ layout
ok(s3_head(obj_key($prefix, $db, $id1, 'public', 'items')),
	'the object is at <prefix>/<database>/<backup_id>/<schema>.<table>.csv.gz');
ok(s3_head("$prefix/$db/$id1/manifest.json"), 'manifest.json is next to it');

# ------------------------------------------------------------------ stray objects
# an object under a backup-like folder without a manifest is not a backup
my $stray_id = '20991231T235959Z';
{
	my $f = "$work/stray.csv.gz";
	system("printf 'id\\n1\\n' | gzip -c > '$f'") == 0 or die;
	is(s3_put($f, obj_key($prefix, $db, $stray_id, 'public', 'items')), 0,
		'an object without a manifest is uploaded');
}

# ------------------------------------------------------------------ second backup
$node->safe_psql($db, 'DROP TABLE only_old');
my $id2;
($ret, $id2, $err) = backup_now($node, $db);
is($ret, 0, 'a second backup succeeds') or diag($err);
my @bl = listed_backups($db);
is_deeply([ map { $_->{backup_id} } @bl ], [ $id2, $id1 ],
	'aibackup_list_backups() lists backups newest first, without the folder that has no manifest');
is_deeply([ sort keys %{ listed_tables($db, undef) } ], [ sort keys %{ listed_tables($db, $id2) } ],
	'aibackup_list_tables(NULL) lists the newest backup');
ok(!exists listed_tables($db, undef)->{'public.only_old'}, 'the newest backup lacks the dropped table');

is($node->safe_psql($db, restore_sql('only_old')), '7',
	'restore with backup_id NULL takes the newest backup that contains the table');
is(checksum($node, $db, 'only_old'), $cs{only_old}, 'and the table comes back from the older backup');

# ------------------------------------------------------------------ restore after damage
$node->safe_psql($db, <<'SQL');
UPDATE items SET qty = qty + 1000 WHERE id % 3 = 0;
DELETE FROM items WHERE id % 7 = 0;
INSERT INTO items VALUES (5000, 'intruder', 1, 1);
SQL
isnt(checksum($node, $db, 'items'), $cs{items}, 'items is damaged');
is($node->safe_psql($db, restore_sql('items')), '1000', 'restore returns the number of rows loaded');
is(checksum($node, $db, 'items'), $cs{items}, 'restore makes the table identical to the backup');
is($node->safe_psql($db, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype = 'p'"),
	'1', 'the existing table keeps its primary key');

is($node->safe_psql($db, restore_sql('public.items', $id1, 'items_copy')), '1000',
	'restore into a new table name');
is(checksum($node, $db, 'items_copy'), $cs{items}, 'the new table has the same rows');
is(col_types($node, $db, 'items_copy'), col_types($node, $db, 'items'),
	'and the same column names and types');

is($node->safe_psql($db, restore_sql('"public"."items"', $id1, '"items copy 2"')), '1000',
	'quoted source and target names are accepted');
is(checksum($node, $db, '"items copy 2"'), $cs{items}, 'and the quoted target has the rows');

# ------------------------------------------------------------------ dropped table
$node->safe_psql($db, 'DROP TABLE to_drop');
is($node->safe_psql($db, restore_sql('to_drop')), '300', 'a dropped table is restored');
is(checksum($node, $db, 'to_drop'), $cs{to_drop}, 'it is recreated with its rows');
is(col_types($node, $db, 'to_drop'), 'id integer, v text, d date, amount numeric(12,3)',
	'and its columns and types');

# ------------------------------------------------------------------ transactions
$node->safe_psql($db, "UPDATE orders SET note = 'damaged' WHERE id <= 100");
my $damaged = checksum($node, $db, 'orders');
$out = $node->safe_psql($db,
	"BEGIN;\n" . restore_sql('orders') . ";\n"
	  . "SELECT count(*) FROM orders WHERE note = 'damaged';\nROLLBACK;");
is($out, "500\n0", 'inside a transaction the restored rows are visible');
is(checksum($node, $db, 'orders'), $damaged, 'BEGIN; restore; ROLLBACK leaves the damaged table as it was');
$node->safe_psql($db, restore_sql('orders'));
is(checksum($node, $db, 'orders'), $cs{orders}, 'and a committed restore repairs it');

# ------------------------------------------------------------------ columns by name
$node->safe_psql($db, 'CREATE TABLE t_cols_reord (c int, b text, a int)');
is($node->safe_psql($db, restore_sql('t_cols', undef, 't_cols_reord')), '100',
	'restore into a target with the same columns in another order');
is(checksum($node, $db, 't_cols_reord', 'a, b, c'), checksum($node, $db, 't_cols', 'a, b, c'),
	'columns are matched by name');

$node->safe_psql($db, "CREATE TABLE t_cols_missing (a int, b text); INSERT INTO t_cols_missing VALUES (-1, 'keep')");
my $cs_missing = checksum($node, $db, 't_cols_missing');
($ret, $out, $err) = $node->psql($db, restore_sql('t_cols', undef, 't_cols_missing'));
isnt($ret, 0, 'a target lacking a column of the backup is refused');
like($err, qr/column "?c"?\b/, 'the error names the missing column') or diag($err);
is(checksum($node, $db, 't_cols_missing'), $cs_missing, 'and the target is unchanged');

$node->safe_psql($db,
	"CREATE TABLE t_cols_extra (a int, b text, c int, zz_extra int); INSERT INTO t_cols_extra VALUES (-1, 'keep', 0, 0)");
my $cs_extra = checksum($node, $db, 't_cols_extra');
($ret, $out, $err) = $node->psql($db, restore_sql('t_cols', undef, 't_cols_extra'));
isnt($ret, 0, 'a target with a column the backup lacks is refused');
like($err, qr/zz_extra/, 'the error names the extra column') or diag($err);
is(checksum($node, $db, 't_cols_extra'), $cs_extra, 'and the target is unchanged');

# ------------------------------------------------------------------ foreign keys
$node->safe_psql($db, "UPDATE fk_parent SET v = 'changed'");
my $cs_fk = checksum($node, $db, 'fk_parent');
my $cs_child = checksum($node, $db, 'fk_child');
($ret, $out, $err) = $node->psql($db, restore_sql('fk_parent'));
isnt($ret, 0, 'a target referenced by a foreign key is refused');
like($err, qr/fk_child_parent_fk/, 'the error names the constraint') or diag($err);
like($err, qr/HINT:/, 'and gives a hint');
is(checksum($node, $db, 'fk_parent'), $cs_fk, 'the target is unchanged');
is(checksum($node, $db, 'fk_child'), $cs_child, 'the referencing table is unchanged');

# ------------------------------------------------------------------ privileges
$node->safe_psql($db, <<'SQL');
CREATE ROLE r_select LOGIN;
CREATE ROLE r_writer LOGIN;
CREATE ROLE r_nosel LOGIN;
CREATE ROLE r_rls LOGIN;
GRANT EXECUTE ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean) TO r_select, r_writer, r_nosel, r_rls;
GRANT SELECT ON items TO r_select;
GRANT SELECT, INSERT, TRUNCATE ON items TO r_writer;
CREATE SCHEMA r_nosel_s AUTHORIZATION r_nosel;
GRANT SELECT, INSERT, TRUNCATE ON rls_t TO r_rls;
SQL

($ret, $out, $err) = $node->psql($db, 'SELECT aibackup_backup_now()', extra_params => [ '-U', 'r_select' ]);
like($err, qr/permission denied for function aibackup_backup_now/,
	'a plain role cannot run a backup unless granted');

$node->safe_psql($db, "UPDATE items SET qty = -1 WHERE id = 1");
my $cs_items_dmg = checksum($node, $db, 'items');
($ret, $out, $err) = $node->psql($db, restore_sql('items'), extra_params => [ '-U', 'r_select' ]);
isnt($ret, 0, 'a role with only SELECT cannot restore into a table');
like($err, qr/permission denied/i, 'it gets "permission denied"') or diag($err);
is(checksum($node, $db, 'items'), $cs_items_dmg, 'and the table is unchanged');

($ret, $out, $err) = $node->psql($db, restore_sql('items'), extra_params => [ '-U', 'r_writer' ]);
is($ret, 0, 'a role with SELECT, INSERT and TRUNCATE can restore into it') or diag($err);
is(checksum($node, $db, 'items'), $cs{items}, 'and the table is repaired');

($ret, $out, $err) = $node->psql($db, restore_sql('secret_t', undef, 'r_nosel_s.mine'),
	extra_params => [ '-U', 'r_nosel' ]);
isnt($ret, 0, 'a role without SELECT on the source cannot restore it into a table of its own');
like($err, qr/permission denied.*secret_t|secret_t.*permission denied/i, 'the error names the source table')
  or diag($err);
is($node->safe_psql($db, "SELECT to_regclass('r_nosel_s.mine') IS NULL"), 't', 'and no table is created');
$node->safe_psql($db, 'GRANT SELECT ON secret_t TO r_nosel');
($ret, $out, $err) = $node->psql($db, restore_sql('secret_t', undef, 'r_nosel_s.mine'),
	extra_params => [ '-U', 'r_nosel' ]);
is($ret, 0, 'once granted SELECT, the same role can restore it into a new table') or diag($err);
is($node->safe_psql($db, "SELECT tableowner FROM pg_tables WHERE schemaname = 'r_nosel_s' AND tablename = 'mine'"),
	'r_nosel', 'the new table is owned by the caller');
is(checksum($node, $db, 'r_nosel_s.mine'), $cs{secret_t}, 'and holds the rows');

$node->safe_psql($db, "UPDATE rls_t SET v = 'x'");
my $cs_rls = checksum($node, $db, 'rls_t');
($ret, $out, $err) = $node->psql($db, restore_sql('rls_t'), extra_params => [ '-U', 'r_rls' ]);
isnt($ret, 0, 'restore into a table with row-level security is refused for a role that does not bypass it');
like($err, qr/row[- ]level security|RLS/i, 'the error says why') or diag($err);
is(checksum($node, $db, 'rls_t'), $cs_rls, 'and the table is unchanged');
$node->safe_psql($db, restore_sql('rls_t'));
is(checksum($node, $db, 'rls_t'), $cs{rls_t}, 'a superuser (bypassing RLS) can restore it');

# more privilege cases
$node->safe_psql($db, <<'SQL');
CREATE ROLE r_notrunc LOGIN;
CREATE ROLE r_owner LOGIN;
CREATE ROLE r_bk LOGIN;
GRANT EXECUTE ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean) TO r_notrunc, r_owner;
GRANT EXECUTE ON FUNCTION aibackup_backup_now(regclass[], boolean) TO r_bk;
GRANT SELECT, INSERT ON items TO r_notrunc;
GRANT SELECT ON secret_t TO r_notrunc;
CREATE TABLE owned_rls (id int, v text);
INSERT INTO owned_rls SELECT g, 'o' || g FROM generate_series(1, 5) g;
SQL
$node->safe_psql($db, "UPDATE items SET qty = -2 WHERE id = 2");
$cs_items_dmg = checksum($node, $db, 'items');
($ret, $out, $err) = $node->psql($db, restore_sql('items'), extra_params => [ '-U', 'r_notrunc' ]);
isnt($ret, 0, 'a role with SELECT and INSERT but not TRUNCATE cannot restore into a table');
like($err, qr/permission denied/i, 'it gets "permission denied"') or diag($err);
is(checksum($node, $db, 'items'), $cs_items_dmg, 'and the table is unchanged');
($ret, $out, $err) = $node->psql($db, restore_sql('secret_t', undef, 'public.notrunc_new'),
	extra_params => [ '-U', 'r_notrunc' ]);
isnt($ret, 0, 'a role without CREATE on the target schema cannot restore into a new table there');
like($err, qr/permission denied for schema public/, 'it gets "permission denied for schema"') or diag($err);
is($node->safe_psql($db, "SELECT to_regclass('public.notrunc_new') IS NULL"), 't', 'and no table is created');
$node->safe_psql($db, restore_sql('items'));
is(checksum($node, $db, 'items'), $cs{items}, 'items repaired (setup)');
($ret, $out, $err) = $node->psql($db, 'INSERT INTO items VALUES (1, \'dup\', 0, 0)');
like($err, qr/duplicate key value violates unique constraint "items_pkey"/,
	'after a restore the primary key index is intact and enforced');

# the owner of a table with FORCE ROW LEVEL SECURITY does not bypass it
my $id_owned;
($ret, $id_owned, $err) = backup_now($node, $db, "ARRAY['owned_rls']::regclass[]");
is($ret, 0, 'a backup of a table to be owned by a plain role (setup)') or diag($err);
$node->safe_psql($db, <<'SQL');
ALTER TABLE owned_rls OWNER TO r_owner;
ALTER TABLE owned_rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE owned_rls FORCE ROW LEVEL SECURITY;
CREATE POLICY p_all ON owned_rls USING (true) WITH CHECK (true);
UPDATE owned_rls SET v = 'x';
SQL
my $cs_owned = checksum($node, $db, 'owned_rls');
($ret, $out, $err) = $node->psql($db, restore_sql('owned_rls', $id_owned), extra_params => [ '-U', 'r_owner' ]);
isnt($ret, 0, 'the owner of a table with FORCE ROW LEVEL SECURITY cannot restore into it');
like($err, qr/row[- ]level security|RLS/i, 'the error says why') or diag($err);
is(checksum($node, $db, 'owned_rls'), $cs_owned, 'and the table is unchanged');
$node->safe_psql($db, 'ALTER TABLE owned_rls NO FORCE ROW LEVEL SECURITY');
($ret, $out, $err) = $node->psql($db, restore_sql('owned_rls', $id_owned), extra_params => [ '-U', 'r_owner' ]);
is($ret, 0, 'without FORCE, the owner (who bypasses RLS) can restore into it') or diag($err);

# a role granted backup_now must not export a table it cannot read
{
	my $okey;
	($ret, $out, $err) = backup_now($node, $db, "ARRAY['secret_t']::regclass[]",
		extra_params => [ '-U', 'r_bk' ]);
	if ($ret == 0)
	{
		my ($mm) = manifest($prefix, $db, $out);
		my ($st) = grep { $_->{name} eq 'secret_t' } @{ $mm->{tables} // [] };
		is($st->{status} // 'absent', 'failed',
			'a granted role\'s backup of a table it cannot SELECT does not export it');
		like($st->{error} // '', qr/permission denied/i, 'and says why');
	}
	else
	{
		pass('a granted role\'s backup of a table it cannot SELECT is refused');
		like($err, qr/permission denied.*secret_t/i, 'with "permission denied" naming the table') or diag($err);
	}
}

# ------------------------------------------------------------------ manifest
my ($m, $mfile) = manifest($prefix, $db, $id1);
ok($m, 'manifest.json downloads and parses');
{
	my $jt = system("python3 -m json.tool '$mfile' >/dev/null 2>&1");
	is($jt, 0, 'manifest.json is valid JSON for python3 -m json.tool');
}
$m //= {};
is_deeply([ grep { !exists $m->{$_} } qw(format backup_id database status started_at finished_at
	  server_version system_identifier extension_version snapshot_lsn tables sequences) ], [],
	'the manifest has every top-level field');
is($m->{backup_id}, $id1, 'manifest backup_id');
is($m->{database}, $db, 'manifest database');
is($m->{status}, 'ok', 'manifest status');
is($m->{system_identifier} . '',
	$node->safe_psql($db, 'SELECT system_identifier FROM pg_control_system()'),
	'manifest system_identifier is the cluster\'s');
like($m->{snapshot_lsn} // '', qr/^[0-9A-F]+\/[0-9A-F]+$/i, 'manifest snapshot_lsn is an LSN');
is($m->{server_version} // '', $node->safe_psql($db, 'SHOW server_version'),
	'manifest server_version is the server\'s');

my %mt = map { ("$_->{schema}.$_->{name}" => $_) } @{ $m->{tables} // [] };
my $mi = $mt{'public.items'} // {};
is_deeply([ grep { !exists $mi->{$_} } qw(schema name parent status error object_key format compression
	  rows raw_bytes compressed_bytes sha256 columns ddl) ], [],
	'a table entry has every field');
is($mi->{status}, 'ok', 'the table\'s status is ok');
is($mi->{rows}, 1000, 'the table\'s row count');
is_deeply([ map { "$_->{name}:$_->{type}:$_->{position}:" . ($_->{not_null} ? 1 : 0) } @{ $mi->{columns} // [] } ],
	[ 'id:integer:1:1', 'name:text:2:1', 'qty:integer:3:0', 'price:numeric(10,2):4:0' ],
	'the table\'s columns: name, type, position, not null');

# the object itself: hash and sizes as recorded
my $gz = "$work/items.csv.gz";
is(s3_get(obj_key($prefix, $db, $id1, 'public', 'items'), $gz), 0, 'aws s3 cp downloads the table\'s object');
is(Digest::SHA->new(256)->addfile($gz)->hexdigest, $mi->{sha256}, 'its SHA-256 is the manifest\'s');
is(-s $gz, $mi->{compressed_bytes}, 'its size is the manifest\'s compressed_bytes');
is($lt1->{'public.items'}{sha256}, $mi->{sha256}, 'list_tables shows the same SHA-256');
system("gzip -dc '$gz' > '$work/items.csv'") == 0 or diag('gunzip failed');
is(-s "$work/items.csv", $mi->{raw_bytes}, 'its gunzipped size is the manifest\'s raw_bytes');
open my $fh, '<', "$work/items.csv" or die;
my $header = <$fh>;
close $fh;
is($header, "id,name,qty,price\n", 'the CSV starts with a header row');

# ------------------------------------------------------------------ interoperability
$node->safe_psql($db, 'CREATE TABLE items_interop (LIKE items)');
($ret, $out, $err) = $node->psql($db, "\\copy items_interop FROM '$work/items.csv' CSV HEADER");
is($ret, 0, 'psql \\copy ... CSV HEADER loads the gunzipped object') or diag($err);
is(checksum($node, $db, 'items_interop'), $cs{items}, 'and gives the original rows');

# ------------------------------------------------------------------ sequences
my %ms = map { ("$_->{schema}.$_->{name}" => $_) } @{ $m->{sequences} // [] };
is($ms{'public.counter_seq'}{last_value}, 3, 'a sequence\'s last_value is recorded');
ok($ms{'public.counter_seq'}{is_called} && $ms{'public.counter_seq'}{is_called} ne 'false',
	'and its is_called (true)');
is($ms{'public.notcalled_seq'}{last_value}, 42, 'a setval(..., false) sequence\'s last_value is recorded');
ok(exists $ms{'public.notcalled_seq'} && !($ms{'public.notcalled_seq'}{is_called}),
	'and its is_called (false)');

# ------------------------------------------------------------------ kinds of relations
ok(exists $lt1->{'public.ul'}, 'an unlogged table is backed up');
ok((exists $lt1->{'public.meas_eu'}) && (exists $lt1->{'public.meas_us'})
	  && (exists $lt1->{'public.meas_asia_lo'}) && (exists $lt1->{'public.meas_asia_hi'}),
	'every leaf partition is backed up');
ok(!exists $lt1->{'public.meas'} && !exists $lt1->{'public.meas_asia'},
	'partitioned parents are not listed');
ok(!s3_head(obj_key($prefix, $db, $id1, 'public', 'meas')), 'a partitioned parent has no object');
ok(!exists $lt1->{'public.v_items'}, 'a view is not backed up');
ok(!exists $lt1->{'public.ft'}, 'a foreign table is not backed up');
like($mt{'public.meas_eu'}{parent} // '', qr/meas/, 'a leaf partition\'s parent is recorded');

$node->safe_psql($db, "DELETE FROM ul WHERE id > 10; DELETE FROM meas WHERE region = 'eu'");
$node->safe_psql($db, restore_sql('ul'));
is(checksum($node, $db, 'ul'), $cs{ul}, 'an unlogged table is restored');
is($node->safe_psql($db, "SELECT relpersistence FROM pg_class WHERE oid = 'ul'::regclass"), 'u',
	'and stays unlogged');
$node->safe_psql($db, restore_sql('meas_eu'));
is(checksum($node, $db, 'meas_eu'), $cs{meas_eu}, 'a leaf partition is restored');
is(checksum($node, $db, 'meas'), $cs{meas}, 'and the partitioned table is whole again');

# ------------------------------------------------------------------ exclude
set_conf($node, 'aibackup.exclude' => 'scratch.*,public.skip_me');
my $id3;
($ret, $id3, $err) = backup_now($node, $db);
is($ret, 0, 'a backup with aibackup.exclude set succeeds') or diag($err);
my $lt3 = listed_tables($db, $id3);
is_deeply([ grep { /^scratch\.|^public\.skip_me$/ } sort keys %$lt3 ], [],
	'aibackup.exclude leaves out schema.* and schema.table matches');
ok(exists $lt3->{'public.items'}, 'and keeps the other tables');
ok(!s3_head(obj_key($prefix, $db, $id3, 'scratch', 'tmp1')), 'no object is written for an excluded table');
reset_conf($node, 'aibackup.exclude');

# ------------------------------------------------------------------ a table list
my $id4;
($ret, $id4, $err) = backup_now($node, $db, "ARRAY['items', 'scratch.tmp1']::regclass[]");
is($ret, 0, 'a backup of a table list succeeds') or diag($err);
is_deeply([ sort keys %{ listed_tables($db, $id4) } ], [ 'public.items', 'scratch.tmp1' ],
	'it holds only the listed tables');

# ------------------------------------------------------------------ back to back
# two backups started within one second must not share an id (and so
# overwrite each other's objects): the second gets its own id or is refused
{
	AibackupData::_next_second();
	($ret, $out, $err) = psql_err($node, $db,
		"SELECT aibackup_backup_now(ARRAY['items']::regclass[]);\n"
		  . "SELECT aibackup_backup_now(ARRAY['t_cols']::regclass[]);", on_error_stop => 0);
	my @ids = grep { /^\d{8}T\d{6}Z$/ } split /\n/, $out;
	ok(@ids == 2 ? $ids[0] ne $ids[1] : ($err =~ /ERROR/), 'back-to-back backups get distinct ids or the second is refused')
	  or diag("ids: @ids; $err");
	my $lt = listed_tables($db, $ids[0]);
	ok(exists $lt->{'public.items'}, 'the first of them still holds its table');
	if (exists $lt->{'public.items'})
	{
		my $f = "$work/b2b.csv.gz";
		s3_get(obj_key($prefix, $db, $ids[0], 'public', 'items'), $f);
		is(Digest::SHA->new(256)->addfile($f)->hexdigest, $lt->{'public.items'}{sha256},
			'and its object was not overwritten');
	}
	sleep 1.1;
}

# ------------------------------------------------------------------ lock timeout
{
	set_conf($node, 'aibackup.lock_timeout' => '1s');
	my $locker = $node->background_psql($db);
	$locker->query_safe('BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;');
	my $t0 = time();
	($ret, $out, $err) = backup_now($node, $db, undef, timeout => 30);
	my $el = time() - $t0;
	isnt($ret, 0, 'a table locked longer than aibackup.lock_timeout fails the backup');
	like($err, qr/lock/i, 'the error speaks of the lock') or diag($err);
	like($err, qr/orders/, 'and names the table');
	ok($el < 30, sprintf('it fails after about the lock timeout (%.1f s)', $el));
	$locker->query_safe('COMMIT');
	$locker->quit;
	reset_conf($node, 'aibackup.lock_timeout');
	ok(wait_no_backup($node, $db), 'no backup is left running after the lock timeout');
}

# ------------------------------------------------------------------ concurrent backups
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION aibackup; CREATE TABLE o (x int); INSERT INTO o VALUES (1)');
{
	my $locker = $node->background_psql($db);
	$locker->query_safe('BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE;');
	AibackupData::_next_second();
	my $first = bg_start($node, $db, "SELECT aibackup_backup_now(ARRAY['items']::regclass[]);\n");
	my $waiting = wait_until($node, $db,
		"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT aibackup_backup_now%' "
		  . "AND state = 'active' AND (wait_event_type = 'Lock' OR now() - query_start > interval '3 s'))", 30);
	ok($waiting, 'a first backup waits for a lock');
	my $first_pid = $node->safe_psql($db,
		"SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT aibackup_backup_now%' AND pid <> pg_backend_pid()");

	my ($r2, $o2, $e2) = psql_err($node, $db, "SELECT aibackup_backup_now(ARRAY['orders']::regclass[])",
		timeout => 60);
	isnt($r2, 0, 'a second backup of the same database meanwhile is refused');
	like($e2, qr/already|running|in progress/i, 'the error says a backup is running') or diag($e2);

	my ($r3, $o3, $e3) = psql_err($node, 'other', 'SELECT aibackup_backup_now()', timeout => 60);
	is($r3, 0, 'a backup of another database meanwhile succeeds') or diag($e3);

	$locker->query_safe('COMMIT');
	$locker->quit;
	my ($r1, $o1, $e1) = bg_finish($first);
	is($r1, 0, 'the first backup completes once the lock is released') or diag($e1);
	like($o1, qr/^\d{8}T\d{6}Z$/, 'and returns its id');
	like($e2, qr/\Q$o1\E|\b$first_pid\b/, 'the refusal named the running backup (id or pid)')
	  or diag("running: $o1 pid $first_pid; error: $e2");
	my $id5;
	($ret, $id5, $err) = backup_now($node, $db, "ARRAY['items']::regclass[]");
	is($ret, 0, 'a backup after it succeeds (no stale "running" state)') or diag($err);
}

# ------------------------------------------------------------------ consistency
$node->safe_psql('postgres', 'CREATE DATABASE cons');
$node->safe_psql('cons', <<'SQL');
CREATE EXTENSION aibackup;
CREATE TABLE acct_a (id int PRIMARY KEY, bal bigint NOT NULL);
CREATE TABLE acct_m_filler (id int, pad text);
CREATE TABLE acct_z (id int PRIMARY KEY, bal bigint NOT NULL);
INSERT INTO acct_a SELECT g, 1000 FROM generate_series(1, 100) g;
INSERT INTO acct_m_filler SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 200000) g;
INSERT INTO acct_z SELECT g, 1000 FROM generate_series(1, 100) g;
CREATE TABLE stop_flag (x int);
CREATE SEQUENCE transfers;
SQL
my $total = 200 * 1000;
{
	my $load = bg_start($node, 'cons', <<'SQL', timeout => 300);
DO $$
DECLARE
  a int; z int; amt int; t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    a := 1 + floor(random() * 100)::int;
    z := 1 + floor(random() * 100)::int;
    amt := 1 + floor(random() * 50)::int;
    IF random() < 0.5 THEN amt := -amt; END IF;
    UPDATE acct_a SET bal = bal - amt WHERE id = a;
    UPDATE acct_z SET bal = bal + amt WHERE id = z;
    PERFORM nextval('transfers');
    COMMIT;
    EXIT WHEN EXISTS (SELECT 1 FROM stop_flag) OR clock_timestamp() - t0 > interval '240 s';
  END LOOP;
END $$;
SQL
	ok(wait_until($node, 'cons', 'SELECT last_value > 200 FROM transfers', 60),
		'a transfer load is running');
	my $before = $node->safe_psql('cons', 'SELECT last_value FROM transfers');
	my ($r, $cid, $e) = backup_now($node, 'cons',
		"ARRAY['acct_a', 'acct_m_filler', 'acct_z']::regclass[]");
	my $after = $node->safe_psql('cons', 'SELECT last_value FROM transfers');
	is($r, 0, 'a backup under concurrent transfers succeeds') or diag($e);
	$node->safe_psql('cons', 'INSERT INTO stop_flag VALUES (1)');
	my ($lr, $lo, $le) = bg_finish($load);
	is($lr, 0, 'the transfer load ran without error') or diag($le);
	diag("transfers during the backup: " . ($after - $before));
	ok($after - $before > 0, 'transfers committed while the backup ran');
	is($node->safe_psql('cons', 'SELECT sum(bal) FROM acct_a') + $node->safe_psql('cons', 'SELECT sum(bal) FROM acct_z'),
		$total, 'the live total is constant (sanity)');

	$node->safe_psql('cons', restore_sql('acct_a', $cid, 'r_a') . '; ' . restore_sql('acct_z', $cid, 'r_z'));
	my $sum = $node->safe_psql('cons', 'SELECT (SELECT sum(bal) FROM r_a) + (SELECT sum(bal) FROM r_z)');
	is($sum, $total, 'the two tables restored from one backup add up to the constant total (one snapshot)');
	is($node->safe_psql('cons', 'SELECT (SELECT count(*) FROM r_a) + (SELECT count(*) FROM r_z)'), '200',
		'with every account');
}

# ------------------------------------------------------------------ partial backup
$node->safe_psql('postgres', 'CREATE DATABASE partial');
$node->safe_psql('partial', <<'SQL');
CREATE EXTENSION aibackup;
CREATE TYPE mood AS ENUM ('happy', 'sad', 'gone');
CREATE TABLE good1 (id int, v text);
INSERT INTO good1 SELECT g, 'g' || g FROM generate_series(1, 100) g;
CREATE TABLE moody (id int, m mood);
INSERT INTO moody VALUES (1, 'happy'), (2, 'gone');
CREATE TABLE good2 (id int);
INSERT INTO good2 SELECT generate_series(1, 50);
DELETE FROM pg_enum WHERE enumtypid = 'mood'::regtype AND enumlabel = 'gone';
SQL
($ret, $out, $err) = $node->psql('partial', 'SELECT * FROM moody');
like($err, qr/invalid internal value for enum/, 'a table whose type output fails (setup)');
{
	my $cs_g1 = checksum($node, 'partial', 'good1');
	my ($r, $pid, $e) = backup_now($node, 'partial');
	is($r, 0, 'a backup with one unreadable table still returns an id') or diag($e);
	my ($pb) = grep { $_->{backup_id} eq $pid } listed_backups('partial');
	is($pb->{status}, 'partial', 'list_backups shows it as partial');
	my ($pm) = manifest($prefix, 'partial', $pid);
	is($pm->{status}, 'partial', 'the manifest status is partial');
	my %pt = map { ("$_->{schema}.$_->{name}" => $_) } @{ $pm->{tables} // [] };
	is($pt{'public.moody'}{status}, 'failed', 'the bad table is marked failed');
	like($pt{'public.moody'}{error} // '', qr/enum/i, 'with its error');
	is(($pt{'public.good1'}{status} // '') . ',' . ($pt{'public.good2'}{status} // ''), 'ok,ok',
		'the other tables are ok');
	$node->safe_psql('partial', 'DELETE FROM good1 WHERE id > 50');
	$node->safe_psql('partial', restore_sql('good1', $pid));
	is(checksum($node, 'partial', 'good1'), $cs_g1, 'and restorable');
	($r, $out, $e) = $node->psql('partial', restore_sql('moody', $pid, 'moody_r'));
	isnt($r, 0, 'restoring the failed table from that backup is refused');
	like($e, qr/moody/, 'naming it') or diag($e);

	# a run in which no table could be backed up is a failed backup
	($r, $out, $e) = $node->psql('partial',
		"SELECT aibackup_backup_now(ARRAY['moody']::regclass[])");
	is($r, 0, 'a backup whose only table fails still returns an id') or diag($e);
	my ($fb) = grep { $_->{backup_id} eq $out } listed_backups('partial');
	is($fb->{status} // 'missing', 'failed', 'and it is listed as failed, not partial');
	is($node->safe_psql('partial', 'SELECT last_status FROM pg_stat_aibackup WHERE datname = current_database()'),
		'failed', 'pg_stat_aibackup counts it as failed');
}

$node->stop;
done_testing();
