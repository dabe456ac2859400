# Incremental backups (0.4), attacked: a table is copied inside S3 from the
# previous backup only when it provably did not change; whatever the
# decision, every backup's object must hold exactly the table's rows as the
# backup's snapshot saw them.  For every backup below, every table's object
# is downloaded with the AWS CLI, gunzipped and compared with the table's
# own COPY (the settings src/pg/copy_out.c pins), row for row; where the
# answer is forced, whether it was copied is checked too (manifest
# copied_from/read_in and aibackup_list_tables().copied_from).
#
# Database inc, one table per case; the backups, in order:
#   B1  with transactions open across it (INSERT, DELETE, UPDATE, INSERT and
#       UPDATE in released savepoints, a savepoint rolled back, row locks, a
#       transaction rolled back later), one table failing (an enum label
#       deleted from pg_enum)
#   then: INSERT/UPDATE/DELETE, tail DELETE + VACUUM truncation (with and
#       without the same rows inserted again), TRUNCATE + the same rows,
#       CLUSTER, VACUUM FULL, ALTER COLUMN TYPE (rewrite, and int -> oid
#       without one), ADD COLUMN DEFAULT, DROP COLUMN, RENAME COLUMN, DROP
#       EXPRESSION, enum RENAME VALUE (used directly, in an array, a
#       composite, a domain, a range), composite ADD/DROP ATTRIBUTE, a type's
#       output function replaced, the objects named by regclass, regtype,
#       regnamespace (also a regclass domain in a composite in an array)
#       and aclitem values renamed (their output changes; the
#       B2 objects must restore), VACUUM FREEZE, a rolled-back INSERT,
#       multixact row locks, a table renamed and one moved to another
#       schema, nextval, the failed table repaired
#   B2  unchanged tables (TOAST, a 63-byte name needing quoting and
#       percent-encoding, empty, frozen, a few MB, partitions, serial)
#       copied from B1
#   then: B2's object of one table deleted and of another overwritten in
#       S3; a clean restart (its data directory is kept as a disk
#       snapshot); a committed UPDATE and an immediate stop (crash)
#   B3  the chain: copied from B2, read in B1; the tampered and the crashed
#       tables read again; the unlogged table empty
#   Bp  two tables only; B4 the whole database again
#   Kf, Ko, K0, K5, K6  two tables: backup_now(full => true),
#       aibackup.incremental = off, aibackup.full_every = 0 read them; the
#       defaults copy them; full_every = '1s' two seconds later reads them
# Database lw: LB0 uploads an 18 MB table as a multipart object (no
#   compression); LB1 copies it (the multipart path: no If-Match on Swift)
#   and its copy must survive LB0's object being deleted.  Then the data
#   directory is put back to the snapshot taken before LB0 (a VM or disk
#   snapshot restored): the system, timeline and relfilenodes are the same,
#   WAL positions and transaction ids are handed out again, so a row updated
#   then looks older than LB1 to a proof from LSNs and xids alone; WAL and
#   xids are then moved past LB1's.  LB2 must read that table again.
# Every backup's objects are downloaded once at the end (the AWS CLI is
# slow to start), the rows each backup must hold having been kept when it
# ran.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Path qw(make_path remove_tree);
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use JSON::PP;
use Digest::SHA;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;
use AibackupData;

$ENV{PGCLIENTENCODING} = 'UTF8';
my $t0 = time();
my $prefix = "t047-$$";
# No scheduled backups (each backup's predecessor is the one we made), no
# autovacuum (it would rewrite pages between backups: only slower backups,
# but the positive cases want to see copies)
my $node = new_cluster('incremental', prefix => $prefix,
	conf => "aibackup.enabled = off\nautovacuum = off\n"
	  # (cheap WAL segments: the lw case switches through a few)
	  . "wal_init_zero = off\nwal_recycle = off\n",
	initdb => [ '--encoding=UTF8', '--locale=C' ]);
my $work = "$ENV{AIBACKUP_TEST_WORK}/t047-$$";
remove_tree($work);
make_path($work);
my ($ret, $out, $err);

# ------------------------------------------------------------------ helpers

sub elapsed { sprintf('%.1f s', time() - $t0) }

sub qident
{
	my ($s) = @_;
	$s =~ s/"/""/g;
	return qq("$s");
}

# a decoded manifest string back to UTF-8 bytes (psql gives bytes)
sub bytes
{
	my ($s) = @_;
	return undef unless defined $s;
	utf8::encode($s) if utf8::is_utf8($s);
	return $s;
}

sub lsn_num
{
	my ($s) = @_;
	my ($hi, $lo) = $s =~ m{^([0-9A-Fa-f]+)/([0-9A-Fa-f]+)$} or return undef;
	return hex($hi) * 4294967296 + hex($lo);
}

# the tables a backup of $db must hold: "schema.name" => SQL name
sub db_tables
{
	my ($db) = @_;
	my %t;
	my $list = $node->safe_psql($db, <<'SQL');
SELECT n.nspname || '|' || c.relname || '|' || format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
   AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                   AND d.objid = c.oid AND d.deptype = 'e')
SQL
	for my $line (split /\n/, $list)
	{
		my ($s, $r, $q) = split /\|/, $line, 3;
		$t{"$s.$r"} = $q;
	}
	return \%t;
}

# each table's COPY as aibackup writes it (src/pg/copy_out.c: CSV, HEADER,
# the database's encoding; DateStyle ISO, IntervalStyle postgres,
# extra_float_digits 3, bytea_output hex, search_path ''), all in one
# session: "schema.name" => bytes
my $copy_n = 0;
sub current_csv
{
	my ($db, $tables) = @_;    # { "schema.name" => SQL name }
	my $sql = "SET datestyle = 'ISO'; SET intervalstyle = 'postgres'; SET extra_float_digits = 3;\n"
	  . "SET bytea_output = 'hex'; SET search_path = '';\n";
	my %file;
	for my $t (sort keys %$tables)
	{
		my $f = "$work/cur-" . $copy_n++ . ".csv";
		$file{$t} = $f;
		$sql .= "COPY $tables->{$t} TO '$f' (FORMAT csv, HEADER, ENCODING 'UTF8');\n";
	}
	$node->safe_psql($db, $sql);
	my %csv;
	for my $t (keys %file)
	{
		$csv{$t} = slurp_file($file{$t});
		unlink $file{$t};
	}
	return \%csv;
}

# the same rows in any order: (1) or (0, why)
sub csv_same
{
	my ($got, $want) = @_;
	return (1) if $got eq $want;    # in the same order too (the usual case)
	my @g = split /\n/, $got, -1;
	my @w = split /\n/, $want, -1;
	pop @g if @g && $g[-1] eq '';
	pop @w if @w && $w[-1] eq '';
	my ($hg, $hw) = (shift(@g) // '(none)', shift(@w) // '(none)');
	return (0, "header: the object's [$hg], the table's [$hw]") if $hg ne $hw;
	@g = sort @g;
	@w = sort @w;
	return (1) if join("\n", @g) eq join("\n", @w);
	my (%cg, %cw);
	$cg{$_}++ for @g;
	$cw{$_}++ for @w;
	my @og = grep { $cg{$_} > ($cw{$_} // 0) } sort keys %cg;
	my @ow = grep { $cw{$_} > ($cg{$_} // 0) } sort keys %cw;
	my $show = sub {
		my @l = @_;
		my $s = join(' | ', map { length($_) > 90 ? substr($_, 0, 90) . '...' : $_ } @l[ 0 .. ($#l < 2 ? $#l : 2) ]);
		$s .= sprintf(' (+%d more)', @l - 3) if @l > 3;
		return $s;
	};
	return (0, sprintf("rows: the object %d, the table %d; only in the object: %s; only in the table: %s",
			scalar(@g), scalar(@w), $show->(@og) || '-', $show->(@ow) || '-'));
}

# backup($db, label, tables => SQL, pre => SQL): the backup id; dies when
# the backup fails.  Runs at DEBUG1 and keeps why each table was read.
my %why_full;    # id => { "schema.name" => reason }
sub backup
{
	my ($db, $label, %o) = @_;
	my $pre = 'SET client_min_messages = debug1' . ($o{pre} ? "; $o{pre}" : '');
	my ($r, $id, $e) = backup_now($node, $db, $o{tables}, pre => $pre, timeout => 300);
	if ($r != 0 || $id !~ /^\d{8}T\d{6}Z$/)
	{
		diag("$label failed: $e");
		die "$label: the backup failed";
	}
	my %why;
	while ($e =~ /aibackup: table "(.+?)" is read in full: (.*)$/mg)
	{
		$why{$1} = $2;
	}
	$why_full{$id} = \%why;
	my @warn = ($e =~ /(WARNING:.*)$/mg);
	push @warn, $1 if $e =~ /aibackup: (every table is read in full: .*)$/m;
	note("$label = $id (" . elapsed() . "): read in full: "
		  . join('; ', map { "$_: $why{$_}" } sort keys %why));
	note("$label: $_") for @warn;
	if ($e =~ /DETAIL:\s+(\d+ unchanged tables? were copied.*)$/m)
	{
		note("$label: $1");
	}
	return $id;
}

# list_tables(id): "schema.name" => { sha256, copied_from }
sub list_tables
{
	my ($db, $id) = @_;
	my %lt;
	for my $line (split /\n/, $node->safe_psql($db,
		"SELECT schema_name || '|' || table_name || '|' || sha256 || '|' || coalesce(copied_from, '') "
		  . "FROM aibackup_list_tables('$id')"))
	{
		my ($s, $n, $sha, $cf) = split /\|/, $line, -1;
		$lt{"$s.$n"} = { sha256 => $sha, copied_from => ($cf eq '' ? undef : $cf) };
	}
	return \%lt;
}

# Right after a backup: the tables as they are (so as its snapshot saw
# them), its listing, and the copies it must and must not have made (%o:
# copied => { table => source id }, fresh => [tables], read_in => { table
# => id }, failed => [tables], tables => [only these], tampered => [tables
# whose objects the test replaces later]).  The objects are compared with
# these rows by verify(), after one download of every backup.
my @captured;
my %listed;    # keys under the database's folder, from aws s3 ls
sub capture
{
	my ($db, $id, $label, %o) = @_;
	my $want = db_tables($db);
	$want = { map { ($_ => $want->{$_}) } @{ $o{tables} } } if $o{tables};
	my $lt = list_tables($db, $id);
	my %tampered = map { $_ => 1 } @{ $o{tampered} // [] };
	my $cur = current_csv($db, { map { ($_ => $want->{$_}) } grep { $want->{$_} && !$tampered{$_} } keys %$lt });
	for my $t (sort keys %{ $o{copied} // {} })
	{
		is($lt->{$t}{copied_from} // 'read in full: ' . ($why_full{$id}{$t} // '?'), $o{copied}{$t},
			"$label $t: copied from $o{copied}{$t}");
	}
	for my $t (@{ $o{fresh} // [] })
	{
		ok($lt->{$t} && !defined $lt->{$t}{copied_from}, "$label $t: read in full, not copied")
		  or diag("$label $t: " . ($lt->{$t} ? "copied from $lt->{$t}{copied_from}" : 'not listed'));
	}
	my $c = { db => $db, id => $id, label => $label, o => \%o, want => $want, lt => $lt, cur => $cur };
	push @captured, $c;
	return $c;
}

# every captured backup of $db: its folder as downloaded into $dl/<id>
sub verify
{
	my ($c, $dl) = @_;
	my ($db, $id, $label, $want, $lt, $cur) = @$c{qw(db id label want lt cur)};
	my %o = %{ $c->{o} };
	my $dir = "$dl/$db/$id";
	my $m = eval { JSON::PP->new->utf8->allow_bignum->decode(slurp_file("$dir/manifest.json")) };
	ok($m, "$label: its manifest downloads and parses") or diag($@);
	$m //= { tables => [] };
	$c->{m} = $m;
	my %ent = map { (bytes($_->{schema}) . '.' . bytes($_->{name}) => $_) } @{ $m->{tables} };
	is_deeply([ sort keys %ent ], [ sort keys %$want ],
		"$label: it holds " . ($o{tables} ? 'the tables asked for' : 'every table of the database'));
	my %tampered = map { $_ => 1 } @{ $o{tampered} // [] };
	is_deeply([ grep { ($ent{$_}{status} // '') ne 'ok' } sort keys %ent ], [ sort @{ $o{failed} // [] } ],
		"$label: the tables that failed are the expected ones");
	for my $t (grep { ($ent{$_}{status} // '') eq 'ok' } sort keys %ent)
	{
		my $e = $ent{$t};
		my $key = $e->{object_key} // '';
		# names hold no dot but the separator (none of ours do)
		is($key, obj_key($prefix, $db, $id, split(/\./, $t, 2)), "$label $t: object key under the backup's folder");
		is($lt->{$t}{copied_from}, $e->{copied_from}, "$label $t: list_tables' copied_from is the manifest's");
		if (defined $e->{copied_from})
		{
			ok(defined $e->{read_in} && $e->{read_in} le $e->{copied_from},
				"$label $t: copied, read_in names the earlier backup that read it");
		}
		else
		{
			ok(!defined $e->{read_in} || $e->{read_in} eq $id, "$label $t: read here, read_in is absent or its own id");
		}
		is($e->{read_in} // 'null', $o{read_in}{$t}, "$label $t: read_in is $o{read_in}{$t}")
		  if $o{read_in} && $o{read_in}{$t};
		(my $rel = $key) =~ s{^\Q$prefix/$db/$id/\E}{};
		my $gzf = "$dir/$rel";
		(my $sqlk = $key) =~ s/\.csv\.gz$/.sql/;
		if ($tampered{$t})
		{
			ok($listed{$sqlk}, "$label $t: its .sql is listed in the folder");
			note("$label $t: its object was deleted or replaced by the test since");
			next;
		}
		ok($listed{$key} && $listed{$sqlk}, "$label $t: its .csv.gz and .sql are listed in the folder");
		my $sha = -f $gzf ? Digest::SHA->new(256)->addfile($gzf)->hexdigest : 'missing';
		is($sha, $e->{sha256} // '', "$label $t: the object's SHA-256 is the manifest's");
		is($lt->{$t}{sha256} // 'unlisted', $sha, "$label $t: and list_tables' sha256");
		my $csv = '';
		gunzip($gzf => \$csv, MultiStream => 1) or $csv = "(gunzip: $GunzipError)" if -f $gzf;
		my ($same, $why) = exists $cur->{$t} ? csv_same($csv, $cur->{$t}) : (0, 'no such table now');
		ok($same, "$label $t: the object holds exactly the table's rows")
		  or diag("$label $t: $why\n  copied_from: " . ($e->{copied_from} // 'null')
			  . ", read_in: " . ($e->{read_in} // 'null') . ", read in full because: "
			  . ($why_full{$id}{$t} // '-')
			  . "\n  entry: " . JSON::PP->new->canonical->encode(
				  { map { ($_ => $e->{$_}) } grep { !/^(columns|ddl|definition)$/ } keys %$e }));
		is($e->{rows}, ($cur->{$t} // '') =~ tr/\n// - 1, "$label $t: the manifest's row count")
		  if defined $cur->{$t};
	}
}

# restore $src from $id into $target and compare with $src (or $against)
sub restore_same
{
	my ($db, $label, $src, $id, $target, $against) = @_;
	my ($r, $o, $e) = psql_err($node, $db, restore_sql($src, $id, $target));
	is($r, 0, "$label: $src restores from $id into $target") or diag($e);
	if ($r != 0)
	{
		fail("$label: $target has ${src}'s rows (not restored)");
		return;
	}
	is(checksum($node, $db, $target), checksum($node, $db, $against // $src),
		"$label: $target has ${src}'s rows");
}

# ------------------------------------------------------------------ database inc
my $db = 'inc';
$node->safe_psql('postgres', "CREATE DATABASE $db");
# a 63-byte table name that needs quoting and percent-encoding, in a schema
# that does too (both end up in CopyObject's x-amz-copy-source)
my $long = 'Tä "quoted", 100% spaced/';
$long .= 'x' x (63 - length($long));
die "long name is " . length($long) . " bytes" unless length($long) == 63;
my $long_t = "Sch ü.$long";
my $long_q = qident('Sch ü') . '.' . qident($long);

my @std = qw(u_frozen u_9del u_9over u_rename u_move c_ins c_upd c_del c_upd_same
  d_truncate d_vacfull d_colrename f_freeze r_rollback o_ins o_sub_ins o_sub_upd
  o_sub_rb o_del o_upd o_lock o_rb mx k_crash);
my $std_sql = join('', map { "CREATE TABLE $_ (id int, v text);\nINSERT INTO $_ SELECT g, val(g) FROM generate_series(1, "
	  . ($_ eq 'u_9del' ? 150 : 200) . ") g;\n" } @std);
$node->safe_psql($db, <<"SQL");
CREATE EXTENSION aibackup;
CREATE FUNCTION val(g int) RETURNS text LANGUAGE sql IMMUTABLE AS \$\$ SELECT 'row ' || g || ', "q" ' || md5(g::text) \$\$;
CREATE SCHEMA other;
CREATE SCHEMA "Sch ü";
CREATE TYPE e_mood AS ENUM ('happy', 'sad', 'meh');
CREATE TYPE e_comp AS (m e_mood, note text);
CREATE DOMAIN e_dom AS e_mood;
CREATE TYPE e_range AS RANGE (subtype = e_mood);
CREATE TYPE cp_add AS (x int, y text);
CREATE TYPE cp_drop AS (x int, y text);
CREATE DOMAIN d_dom_t AS int;
CREATE TYPE mood_fail AS ENUM ('ok', 'gone');
CREATE TYPE mytext;
CREATE FUNCTION mytext_in(cstring) RETURNS mytext AS 'textin' LANGUAGE internal IMMUTABLE STRICT;
CREATE FUNCTION mytext_out(mytext) RETURNS cstring AS 'textout' LANGUAGE internal IMMUTABLE STRICT;
CREATE TYPE mytext (INPUT = mytext_in, OUTPUT = mytext_out, LIKE = text);
CREATE TABLE reg_target (x int);
CREATE TYPE reg_type AS (a int);
CREATE SCHEMA reg_ns;
$std_sql
-- case 1: unchanged
CREATE TABLE u_plain (id int PRIMARY KEY, t text, n numeric(12,3), d date, ts timestamptz, f float8,
  b bool, j jsonb, by bytea, iv interval, arr int[]);
INSERT INTO u_plain SELECT g, val(g), g / 7.0, date '2020-01-01' + g,
  timestamptz '2024-05-06 07:08:09+02' + g * interval '1 hour', g / 3.0, g % 2 = 0,
  jsonb_build_object('k', g, 's', 'a"b'), decode(md5(g::text), 'hex'), g * interval '1 min 1.5 s',
  ARRAY[g, NULL, -g] FROM generate_series(1, 300) g;
CREATE TABLE u_toast (id int, v text);
ALTER TABLE u_toast ALTER COLUMN v SET STORAGE EXTERNAL;
INSERT INTO u_toast SELECT g, repeat(md5(g::text), 200) FROM generate_series(1, 30) g;
CREATE TABLE $long_q (id int, "Col, ""q""" text);
INSERT INTO $long_q SELECT g, val(g) FROM generate_series(1, 50) g;
CREATE TABLE u_empty (id int, v text);
CREATE TABLE u_big (id int, pad text);
INSERT INTO u_big SELECT g, md5(g::text) || md5((g + 1)::text) FROM generate_series(1, 40000) g;
-- case 4: the tail deleted and truncated away
CREATE TABLE c_tail (id int, v text);
INSERT INTO c_tail SELECT g, val(g) FROM generate_series(1, 600) g;
CREATE TABLE c_tail2 (id int, v text);
INSERT INTO c_tail2 SELECT g, val(g) FROM generate_series(1, 600) g;
-- case 5: rewrites and definitions
CREATE TABLE d_cluster (id int PRIMARY KEY, v text);
INSERT INTO d_cluster SELECT g, val(g) FROM generate_series(300, 1, -1) g;
CREATE TABLE d_alter_type (id int, n int);
INSERT INTO d_alter_type SELECT g, g * 3 FROM generate_series(1, 200) g;
CREATE TABLE d_add_default (id int, v text);
INSERT INTO d_add_default SELECT g, val(g) FROM generate_series(1, 200) g;
CREATE TABLE d_drop_col (id int, extra text, v text);
INSERT INTO d_drop_col SELECT g, 'extra ' || g, val(g) FROM generate_series(1, 200) g;
CREATE TABLE d_enum (id int, m e_mood, ma e_mood[]);
INSERT INTO d_enum SELECT g, (ARRAY['happy','sad','meh'])[g % 3 + 1]::e_mood, ARRAY['sad', 'happy']::e_mood[]
  FROM generate_series(1, 100) g;
CREATE TABLE d_enum_comp (id int, c e_comp);
INSERT INTO d_enum_comp SELECT g, ROW('sad', 'n' || g)::e_comp FROM generate_series(1, 100) g;
CREATE TABLE d_enum_dom (id int, d e_dom);
INSERT INTO d_enum_dom SELECT g, 'sad' FROM generate_series(1, 100) g;
CREATE TABLE d_enum_range (id int, r e_range);
INSERT INTO d_enum_range SELECT g, e_range('happy', 'sad', '[]') FROM generate_series(1, 100) g;
CREATE TABLE d_comp_add (id int, c cp_add);
INSERT INTO d_comp_add SELECT g, ROW(g, 'y' || g)::cp_add FROM generate_series(1, 100) g;
CREATE TABLE d_comp_drop (id int, c cp_drop);
INSERT INTO d_comp_drop SELECT g, ROW(g, 'y' || g)::cp_drop FROM generate_series(1, 100) g;
CREATE TABLE d_oid (id int, i int);
INSERT INTO d_oid SELECT g, -g FROM generate_series(1, 100) g;
CREATE TABLE d_gen (id int, g int GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO d_gen SELECT g FROM generate_series(1, 100) g;
CREATE TABLE d_outfn (id int, t mytext);
INSERT INTO d_outfn SELECT g, ('ab' || g)::text::mytext FROM generate_series(1, 100) g;
CREATE TABLE d_reg (id int, c regclass, t regtype, n regnamespace, ca regclass[]);
INSERT INTO d_reg SELECT g, 'reg_target', 'reg_type', 'reg_ns', ARRAY['reg_target', 'u_plain']::regclass[]
  FROM generate_series(1, 50) g;
CREATE TABLE reg_target2 (x int);
CREATE DOMAIN dom_rc AS regclass;
CREATE TYPE comp_rc AS (c dom_rc, n int);
CREATE TABLE d_reg_nested (id int, x comp_rc[]);
INSERT INTO d_reg_nested SELECT g, ARRAY[ROW('reg_target2', g)::comp_rc] FROM generate_series(1, 20) g;
CREATE TABLE d_domain (id int, d d_dom_t);
INSERT INTO d_domain SELECT g, g FROM generate_series(1, 100) g;
CREATE ROLE r047_acl;
CREATE TABLE d_acl (id int, a aclitem[]);
INSERT INTO d_acl SELECT g, ARRAY['r047_acl=r/postgres']::aclitem[] FROM generate_series(1, 20) g;
CREATE TABLE u_serial (id serial, v text);
INSERT INTO u_serial (v) SELECT 's' || g FROM generate_series(1, 20) g;
CREATE TABLE p (id int, v text) PARTITION BY RANGE (id);
CREATE TABLE p_lo PARTITION OF p FOR VALUES FROM (MINVALUE) TO (100);
CREATE TABLE p_hi PARTITION OF p FOR VALUES FROM (100) TO (MAXVALUE);
INSERT INTO p SELECT g, val(g) FROM generate_series(1, 200) g;
-- case 11, 12
CREATE UNLOGGED TABLE ul_unlogged (id int, v text);
INSERT INTO ul_unlogged SELECT g, val(g) FROM generate_series(1, 100) g;
CREATE TABLE moody (id int, m mood_fail);
INSERT INTO moody SELECT g, CASE WHEN g % 10 = 0 THEN 'gone' ELSE 'ok' END::mood_fail FROM generate_series(1, 100) g;
SQL
# every page hinted and all-visible before the first backup (with data
# checksums a hint bit set by a backup's COPY is WAL-logged and would make
# the next backup read the table: correct, but no copy to check)
$node->safe_psql($db, 'VACUUM');
$node->safe_psql($db, 'VACUUM FREEZE u_frozen');
my $ldb = 'lw';
$node->safe_psql('postgres', "CREATE DATABASE $ldb");
$node->safe_psql($ldb, <<'SQL');
CREATE EXTENSION aibackup;
CREATE TABLE lw_t (id int, v text);
INSERT INTO lw_t SELECT g, 'lw ' || g FROM generate_series(1, 5) g;
CREATE TABLE lw_same (id int, v text);
INSERT INTO lw_same SELECT g, 'same ' || g FROM generate_series(1, 5) g;
-- 18 MB of CSV: with aibackup.compression_level = 0 a multipart object
CREATE TABLE lw_big (id int, pad text);
INSERT INTO lw_big SELECT g, md5(g::text) || md5((-g)::text) FROM generate_series(1, 240000) g;
CREATE PROCEDURE burn(n int) LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. n LOOP PERFORM txid_current(); COMMIT; END LOOP;
END $$;
-- WAL and transaction ids on, past a WAL position and an xid
CREATE PROCEDURE advance(lsn pg_lsn, xid bigint) LANGUAGE plpgsql AS $$
BEGIN
  WHILE pg_current_wal_insert_lsn() <= lsn LOOP
    PERFORM txid_current(); COMMIT;
    PERFORM pg_switch_wal(); COMMIT;
  END LOOP;
  WHILE txid_current() <= xid LOOP COMMIT; END LOOP;
END $$;
SQL
$node->safe_psql($ldb, 'VACUUM');
note('setup done (' . elapsed() . ')');

# case 12: moody fails in B1 (a label its rows use is gone); put back after
my ($enum_oid, $enum_order) = split /\|/, $node->safe_psql($db,
	"SELECT oid, enumsortorder FROM pg_enum WHERE enumtypid = 'mood_fail'::regtype AND enumlabel = 'gone'");
$node->safe_psql($db, "DELETE FROM pg_enum WHERE oid = $enum_oid");

# case 3: transactions open across B1
my $bg = $node->background_psql($db);
$bg->query_safe(<<'SQL');
BEGIN;
INSERT INTO o_ins VALUES (1001, 'open insert');
DELETE FROM o_del WHERE id <= 10;
UPDATE o_upd SET v = 'open update' WHERE id <= 5;
SAVEPOINT s1;
INSERT INTO o_sub_ins VALUES (1001, 'inserted in a savepoint');
RELEASE s1;
SAVEPOINT s2;
UPDATE o_sub_upd SET v = 'updated in a savepoint' WHERE id = 3;
RELEASE s2;
SAVEPOINT s3;
INSERT INTO o_sub_rb VALUES (1001, 'rolled back to savepoint');
ROLLBACK TO s3;
UPDATE o_sub_rb SET v = 'after rollback to savepoint' WHERE id = 4;
SELECT id FROM o_lock WHERE id <= 5 FOR UPDATE;
SQL
my $bg_rb = $node->background_psql($db);
$bg_rb->query_safe("BEGIN; INSERT INTO o_rb VALUES (1001, 'never'); DELETE FROM o_rb WHERE id = 1;");

my $B1 = backup($db, 'B1');
my $b1 = capture($db, $B1, 'B1', failed => ['public.moody'],
	fresh => [ grep { $_ ne 'public.moody' } sort keys %{ db_tables($db) } ]);

$bg->query_safe('COMMIT');
$bg->quit;
$bg_rb->query_safe('ROLLBACK');
$bg_rb->quit;

# ------------------------------------------------------------------ changes after B1
$node->safe_psql($db, "INSERT INTO pg_enum (oid, enumtypid, enumsortorder, enumlabel) "
	  . "VALUES ($enum_oid, 'mood_fail'::regtype, $enum_order, 'gone')");
my $tail_size = $node->safe_psql($db, "SELECT pg_relation_size('c_tail')");
$node->safe_psql($db, <<'SQL');
INSERT INTO c_ins VALUES (1001, 'new');
UPDATE c_upd SET v = 'changed' WHERE id = 7;
DELETE FROM c_del WHERE id = 7;
UPDATE c_upd_same SET v = v WHERE id = 7;
DELETE FROM c_tail WHERE id > 300;
DELETE FROM c_tail2 WHERE id > 300;
TRUNCATE d_truncate;
INSERT INTO d_truncate SELECT g, val(g) FROM generate_series(1, 200) g;
CLUSTER d_cluster USING d_cluster_pkey;
VACUUM FULL d_vacfull;
ALTER TABLE d_alter_type ALTER COLUMN n TYPE bigint;
ALTER TABLE d_add_default ADD COLUMN c int DEFAULT 5;
ALTER TABLE d_drop_col DROP COLUMN extra;
ALTER TABLE d_colrename RENAME COLUMN v TO v_renamed;
ALTER TYPE e_mood RENAME VALUE 'sad' TO 'blue';
ALTER TYPE cp_add ADD ATTRIBUTE z int;
ALTER TYPE cp_drop DROP ATTRIBUTE y;
ALTER TABLE d_oid ALTER COLUMN i TYPE oid;
ALTER TABLE d_gen ALTER COLUMN g DROP EXPRESSION;
CREATE OR REPLACE FUNCTION mytext_out(mytext) RETURNS cstring AS 'byteaout' LANGUAGE internal IMMUTABLE STRICT;
ALTER TABLE reg_target RENAME TO reg_target_renamed;
ALTER TABLE reg_target2 RENAME TO reg_target2_renamed;
ALTER TYPE reg_type RENAME TO reg_type_renamed;
ALTER SCHEMA reg_ns RENAME TO reg_ns_renamed;
ALTER ROLE r047_acl RENAME TO r047_acl_renamed;
ALTER DOMAIN d_dom_t ADD CONSTRAINT d_dom_t_pos CHECK (VALUE > 0);
BEGIN;
INSERT INTO r_rollback VALUES (1001, 'rolled back');
DELETE FROM r_rollback WHERE id < 10;
ROLLBACK;
ALTER TABLE u_rename RENAME TO u_renamed;
ALTER TABLE u_move SET SCHEMA other;
SELECT nextval('u_serial_id_seq') FROM generate_series(1, 5);
SQL
$node->safe_psql($db, 'VACUUM c_tail; VACUUM c_tail2; VACUUM FREEZE f_freeze');
$node->safe_psql($db, 'INSERT INTO c_tail2 SELECT g, val(g) FROM generate_series(301, 600) g');
ok($node->safe_psql($db, "SELECT pg_relation_size('c_tail') < $tail_size"),
	'c_tail: VACUUM truncated the pages at its end (setup)');
# multixact row locks: two transactions share a row lock
{
	my $locker = $node->background_psql($db);
	$locker->query_safe('BEGIN; SELECT id FROM mx WHERE id <= 3 FOR SHARE;');
	$node->safe_psql($db, 'SELECT id FROM mx WHERE id <= 3 FOR SHARE');
	$locker->query_safe('COMMIT');
	$locker->quit;
}

my @case1 = ('public.u_plain', 'public.u_toast', $long_t, 'public.u_empty', 'public.u_big', 'public.u_frozen',
	'public.u_serial', 'public.p_lo', 'public.p_hi');
my @changed = map { "public.$_" } qw(c_ins c_upd c_del c_tail c_tail2 d_truncate d_cluster d_vacfull
  d_alter_type d_add_default d_drop_col d_colrename d_enum d_enum_comp d_enum_dom d_enum_range
  d_comp_add d_comp_drop d_oid d_gen d_outfn d_reg d_reg_nested d_acl o_ins o_sub_ins o_sub_upd o_sub_rb o_del o_upd
  ul_unlogged moody);
my $B2 = backup($db, 'B2');
my $b2 = capture($db, $B2, 'B2',
	copied => { map { ($_ => $B1) } @case1, qw(public.u_9del public.u_9over public.k_crash) },
	read_in => { map { ($_ => $B1) } @case1 },
	fresh => \@changed, tampered => [qw(public.u_9del public.u_9over)]);
for my $t (@case1, qw(public.u_9del public.u_9over))
{
	is($b2->{lt}{$t}{sha256}, $b1->{lt}{$t}{sha256}, "B2 $t: the same object bytes as B1's");
}
# a reg* value whose object was renamed restores from B2
restore_same($db, 'B2', 'd_reg', $B2, 'd_reg_r');
restore_same($db, 'B2', 'd_acl', $B2, 'd_acl_r');
$node->safe_psql($db, 'DROP TABLE IF EXISTS d_reg_r, d_acl_r');

# ------------------------------------------------------------------ case 9, 8
# B2's object of u_9del moves onto u_9over's (other rows): one is gone,
# the other holds other bytes
($ret, $out, $err) = aws_cli('s3', 'mv', '--quiet',
	's3://' . $ENV{S3_BUCKET} . '/' . obj_key($prefix, $db, $B2, 'public', 'u_9del'),
	's3://' . $ENV{S3_BUCKET} . '/' . obj_key($prefix, $db, $B2, 'public', 'u_9over'));
is($ret, 0, "B2's objects of u_9del and u_9over: one deleted, one overwritten in S3") or diag($err);

# a clean restart; the stopped data directory is kept for the lw case
my $pgdata = $node->data_dir;
my $snap = "$work/pgdata-snapshot";
$node->stop;
system('cp', '-a', $pgdata, $snap) == 0 or die "cp $pgdata: $!";
$node->start;
# a committed change, then a crash
$node->safe_psql($db, "UPDATE k_crash SET v = 'changed before the crash' WHERE id <= 3");
$node->stop('immediate');
$node->start;
note('restart and crash done (' . elapsed() . ')');

my $B3 = backup($db, 'B3');
my $b3 = capture($db, $B3, 'B3',
	copied => { map { ($_ => $B2) } @case1 },
	read_in => { map { ($_ => $B1) } @case1 },
	fresh => [qw(public.u_9del public.u_9over public.k_crash public.ul_unlogged)]);
for my $t (@case1)
{
	is($b3->{lt}{$t}{sha256}, $b1->{lt}{$t}{sha256}, "B3 $t: the same object bytes as B1's");
}
is($node->safe_psql($db, 'SELECT count(*) FROM ul_unlogged'), '0', 'the unlogged table is empty after the crash (sanity)');

# ------------------------------------------------------------------ case 13
my $Bp = backup($db, 'Bp', tables => "ARRAY['u_plain', 'c_ins']::regclass[]");
capture($db, $Bp, 'Bp', tables => [qw(public.u_plain public.c_ins)],
	copied => { 'public.u_plain' => $B3 }, read_in => { 'public.u_plain' => $B1 });
$node->safe_psql($db, "UPDATE c_upd SET v = 'after Bp' WHERE id = 8");
my $B4 = backup($db, 'B4');
capture($db, $B4, 'B4', copied => { 'public.u_plain' => $Bp }, read_in => { 'public.u_plain' => $B1 },
	fresh => ['public.c_upd']);

# ------------------------------------------------------------------ case 10: the settings
# two tables that would be copied, backed up alone
my @kt = qw(public.u_plain public.u_toast);
my $ktables = "ARRAY['u_plain', 'u_toast']::regclass[]";
my $Kf = backup($db, 'Kf (full => true)', tables => "$ktables, full => true");
capture($db, $Kf, 'Kf', tables => \@kt, fresh => \@kt);
my $Ko = backup($db, 'Ko (incremental off)', tables => $ktables, pre => 'SET aibackup.incremental = off');
capture($db, $Ko, 'Ko', tables => \@kt, fresh => \@kt);
my $K0 = backup($db, 'K0 (full_every = 0)', tables => $ktables, pre => 'SET aibackup.full_every = 0');
capture($db, $K0, 'K0', tables => \@kt, fresh => \@kt);
my $K5 = backup($db, 'K5 (defaults)', tables => $ktables);
capture($db, $K5, 'K5', tables => \@kt, copied => { map { ($_ => $K0) } @kt }, read_in => { map { ($_ => $K0) } @kt });
($ret, $out, $err) = $node->psql($db, "SET aibackup.full_every = '7d'; SHOW aibackup.full_every");
is($out, '7d', "aibackup.full_every accepts '7d'") or diag($err);
# K6 is 2 s or more after K0 (ids are seconds): the rows were read that long ago
my $K6 = backup($db, 'K6 (full_every = 1s)', tables => $ktables, pre => "SET aibackup.full_every = '1s'");
capture($db, $K6, 'K6', tables => \@kt, fresh => \@kt);

# case 1: restores from the third backup (objects copied twice)
restore_same($db, 'B3', 'u_big', $B3, 'u_big_r');
restore_same($db, 'B3', $long_q, $B3, '"Sch ü".long_r', $long_q);
restore_same($db, 'B3', 'p', $B3, 'p_r');
note('database inc done (' . elapsed() . ')');

# ------------------------------------------------------------------ lw: an old data directory comes back
# The data directory of the clean restart above (before lw's first
# backup) is put back after it, as a disk snapshot would be: same system,
# timeline, relfilenodes; WAL positions and transaction ids are handed out
# again.  A row changed then carries an xid older than that backup's
# snapshot xmin and a page LSN below its recorded LSN.
my ($L0, $L1, $L2, $uxid, $ulsn);
{
	# lw_big's object in LB0 is a multipart upload: LB1 copies it, and its
	# copy must stand alone once LB0's is deleted (as retention would)
	# (the data directory that comes back has the default again)
	set_conf($node, 'aibackup.compression_level' => '0');
	$L0 = backup($ldb, 'LB0');
	capture($ldb, $L0, 'LB0', tampered => ['public.lw_big']);
	# lw's first backup, after transaction ids and WAL were used since the snapshot
	$node->safe_psql($ldb, 'CALL burn(20)');
	$L1 = backup($ldb, 'LB1');
	capture($ldb, $L1, 'LB1', copied => { map { ($_ => $L0) } qw(public.lw_big public.lw_t public.lw_same) });
	is(s3_rm(obj_key($prefix, $ldb, $L0, 'public', 'lw_big')), 0, "LB0's multipart object of lw_big deleted");
	my ($lsn_after, $xid_after) = split /\|/, $node->safe_psql($ldb,
		"SELECT pg_current_wal_insert_lsn() || '|' || txid_current()");

	$node->stop('immediate');
	remove_tree($pgdata);
	rename($snap, $pgdata) or die "mv $snap $pgdata: $!";
	$node->start;
	($uxid, $ulsn) = split /\|/, $node->safe_psql($ldb,
		"BEGIN; UPDATE lw_t SET v = 'changed after the old data directory came back' WHERE id = 1; "
		  . "SELECT txid_current() || '|' || pg_current_wal_insert_lsn(); COMMIT;");
	note("lw: the update after the old data directory came back: xid $uxid, WAL up to $ulsn");
	# WAL and transaction ids past where they were at LB1, as they soon are
	$node->safe_psql($ldb, "CALL advance('$lsn_after', $xid_after)");
	$L2 = backup($ldb, 'LB2');
	my $c = capture($ldb, $L2, 'LB2', fresh => ['public.lw_t']);
	note("LB2 $_: " . ($c->{lt}{$_}{copied_from} ? 'copied from LB1' : 'read')) for qw(public.lw_same public.lw_big);
	note('lw done (' . elapsed() . ')');
}

# ------------------------------------------------------------------ every backup, downloaded once
{
	my $dl = "$work/dl";
	my ($r, $so, $se) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/");
	is($r, 0, 'the backups list with the AWS CLI') or diag($se);
	%listed = map { (m{ (\Q$prefix\E/\S+)$} ? ($1 => 1) : ()) } split /\n/, $so;
	($r, $so, $se) = aws_cli('s3', 'cp', '--recursive', '--quiet',
		'--exclude', '*', '--include', '*.csv.gz', '--include', '*/manifest.json',
		"s3://$ENV{S3_BUCKET}/$prefix/", "$dl/");
	is($r, 0, 'their objects and manifests download with the AWS CLI') or diag($se);
	note('downloaded (' . elapsed() . ')');
	verify($_, $dl) for @captured;
	note('verified (' . elapsed() . ')');
	is($b1->{m}{status}, 'partial', 'B1: partial (moody failed)');
	is($b2->{m}{status}, 'ok', 'B2: ok');
	my ($seq) = grep { $_->{name} eq 'u_serial_id_seq' } @{ $b2->{m}{sequences} // [] };
	is($seq->{last_value} // 'absent', 25, 'B2: the sequence of the copied u_serial is as it was then');
	my ($lb0) = grep { $_->{id} eq $L0 } @captured;
	my ($lb1) = grep { $_->{id} eq $L1 } @captured;
	my ($big) = grep { $_->{name} eq 'lw_big' } @{ $lb0->{m}{tables} // [] };
	like($big->{etag} // '', qr/-\d+$/, "LB0 lw_big: a multipart object (setup)");
	my ($lb2) = grep { $_->{id} eq $L2 } @captured;
	my ($lwt) = grep { $_->{name} eq 'lw_t' } @{ $lb2->{m}{tables} // [] };
	diag(sprintf('lw: lw_t was updated by xid %s with WAL up to %s after the old data directory came back; '
			  . 'LB1 recorded snapshot_xmin %s, reuse_lsn %s, timeline %s, system %s; LB2 copied lw_t from %s',
			$uxid, $ulsn, map({ $lb1->{m}{$_} // '?' } qw(snapshot_xmin reuse_lsn timeline system_identifier)),
			$lwt->{copied_from} // '?'))
	  if $lwt && defined $lwt->{copied_from};
}

$node->stop;
done_testing();
