# Parallel table copies (aibackup.max_parallel_tables): a backup's tables
# are copied by up to N dynamic background workers ("aibackup table
# worker") that share the backup's one snapshot and its lock group.
#
#   settings   the setting: default 2, 1..16, superuser only
#   par        ~54 tables of varied sizes (one with a 63-byte name, one
#              with TOAST, an empty one, a bigger one) and two account
#              tables under a concurrent transfer load that logs every
#              transfer: with 2 and with 4 workers the restored accounts
#              add up to the constant total and each holds exactly what the
#              transfer log of the same backup says (one snapshot for all
#              workers); every other table restores equal to its source;
#              a third backup copies the unchanged tables (incremental)
#   pfail      a table whose output function fails: partial, that table
#              failed, the others ok, the same statuses as a serial backup
#   priv       a granted non-superuser with the default of 2 workers: a
#              table it cannot SELECT fails alone
#   heavy      exactly min(N, tables) table workers while a throttled
#              backup runs, none after; DDL queued behind the backup's
#              ACCESS SHARE locks does not deadlock it (lock group);
#              cancel or terminate of one table worker, cancel or
#              terminate of the calling backend: an ERROR (or the session's
#              end), no worker, no manifest, no multipart upload left
#              open, and the next backup succeeds; SIGKILL of a table
#              worker: crash restart, no manifest, the launcher's start-up
#              sweep aborts the uploads left
#   restart    max_worker_processes leaving no room for a table worker:
#              the backup runs serially, ok, with the same data
#
# Checks outcomes, never timings; throttling (aibackup.max_rate) only keeps
# a backup running long enough to be watched or interrupted.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use AibackupTest;
use AibackupData;

my $t0 = time();
my $prefix = "t051-$$";
# no scheduled backups until the SIGKILL case needs the launcher's start-up
# sweep; no autovacuum (incremental copies want pages left alone); room for
# 4 table workers beside the launcher and the logical replication launcher
my $node = new_cluster('parallel', prefix => $prefix, conf => <<'CONF');
aibackup.enabled = off
autovacuum = off
restart_after_crash = on
max_worker_processes = 12
CONF
plan skip_all => 'table workers: run on 15-assert, 17 and 18 (AibackupTest::heavy_here)'
  unless heavy_here($node);
my ($ret, $out, $err);

sub elapsed { sprintf('%.1f s', time() - $t0) }

sub qident
{
	my ($s) = @_;
	$s =~ s/"/""/g;
	return qq("$s");
}

# wait until $cond->() is true or $secs pass; returns the truth
sub wait_for
{
	my ($secs, $cond) = @_;
	my $end = time() + $secs;
	while (time() < $end)
	{
		my $r = eval { $cond->() };
		return 1 if $r;
		sleep 0.1;
	}
	return eval { $cond->() } ? 1 : 0;
}

# the setting exists (the feature is built in): without it every backup
# below runs serially, and the checks that need table workers are skipped
# (the settings checks fail instead)
my $has_par = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_settings WHERE name = 'aibackup.max_parallel_tables'") eq '1';

sub par
{
	my ($n) = @_;
	return $has_par ? "SET aibackup.max_parallel_tables = $n" : "SET application_name = 't051'";
}

sub table_workers
{
	my ($db) = @_;
	my $where = defined $db ? " AND datname = '$db'" : '';
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup table worker'$where");
}

sub worker_pids
{
	my ($db) = @_;
	return split /\n/, $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'aibackup table worker' "
		  . "AND datname = '$db' ORDER BY pid");
}

# the backend running aibackup_backup_now() in $db ('' if none)
sub leader_pid
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = '$db' "
		  . "AND state = 'active' AND query LIKE '%aibackup_backup_now(%' AND pid <> pg_backend_pid() "
		  . "ORDER BY backend_start LIMIT 1");
}

# the id of the backup of $db running now ('' if none shows yet)
sub running_backup_id
{
	my ($db) = @_;
	# (the view is the extension's: asked in $db)
	return $node->safe_psql($db,
		"SELECT string_agg(DISTINCT backup_id, ',') FROM pg_stat_progress_aibackup "
		  . "WHERE datname = '$db' AND command = 'backup' AND coalesce(backup_id, '') <> ''") // '';
}

# multipart uploads open under our prefix (-1: the listing failed)
sub uploads_in_progress
{
	my ($r, $o, $e) = aws_cli('s3api', 'list-multipart-uploads', '--bucket',
		$ENV{S3_BUCKET}, '--prefix', "$prefix/", '--output', 'text',
		'--query', 'length(Uploads || `[]`)');
	if ($r)
	{
		diag("list-multipart-uploads: $e");
		return -1;
	}
	chomp $o;
	return $o eq '' || $o eq 'None' ? 0 : $o + 0;
}

sub has_manifest
{
	my ($db, $id) = @_;
	return s3_head("$prefix/$db/$id/manifest.json") ? 1 : 0;
}

sub listed
{
	my ($db, $id) = @_;
	return $node->safe_psql($db, "SELECT count(*) FROM aibackup_list_backups() WHERE backup_id = '$id'");
}

sub backup_status
{
	my ($db, $id) = @_;
	return $node->safe_psql($db, "SELECT status FROM aibackup_list_backups() WHERE backup_id = '$id'");
}

# manifest tables as { "schema.name" => entry }
sub manifest_tables
{
	my ($db, $id) = @_;
	my ($m) = manifest($prefix, $db, $id);
	return ($m, { map { ("$_->{schema}.$_->{name}" => $_) } @{ $m->{tables} // [] } });
}

# Watches a backup running in the background ($h from bg_start) until its
# psql ends: the most table workers of $db seen at once, and the polls made.
sub watch_workers
{
	my ($h, $db, $secs) = @_;
	my ($max, $polls) = (0, 0);
	my $end = time() + ($secs // 180);
	while (time() < $end)
	{
		my $n = table_workers($db);
		$max = $n if $n > $max;
		$polls++;
		last unless $h->{run}->pumpable;
		sleep 0.05;
	}
	return ($max, $polls);
}

sub backup_id_of
{
	my ($s) = @_;
	return ($s // '') =~ /(\d{8}T\d{6}Z)/ ? $1 : '';
}

# "schema.name" => "count:md5" for each of @rels (SQL names) of $db, in one session
sub checksums
{
	my ($db, @rels) = @_;
	my $sql = join '',
	  map {
		"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\")), '-') "
		  . "FROM $_ t;\n"
	  } @rels;
	my @l = split /\n/, $node->safe_psql($db, $sql);
	return { map { ($rels[$_] => $l[$_]) } 0 .. $#rels };
}

# ------------------------------------------------------------------ the setting
SKIP:
{
	ok($has_par, 'the setting aibackup.max_parallel_tables exists')
	  or skip('no aibackup.max_parallel_tables', 8);
	is($node->safe_psql('postgres',
			"SELECT context || '|' || min_val || '|' || max_val || '|' || boot_val || '|' || setting "
			  . "FROM pg_settings WHERE name = 'aibackup.max_parallel_tables'"),
		'superuser|1|16|2|2', 'it is a superuser setting from 1 to 16, 2 by default');
	($ret, $out, $err) = $node->psql('postgres', 'SET aibackup.max_parallel_tables = 0');
	isnt($ret, 0, '0 is refused');
	($ret, $out, $err) = $node->psql('postgres', 'SET aibackup.max_parallel_tables = 17');
	isnt($ret, 0, '17 is refused');
	($ret, $out, $err) = $node->psql('postgres',
		"SET aibackup.max_parallel_tables = 16; SHOW aibackup.max_parallel_tables; "
		  . "SET aibackup.max_parallel_tables = 1; SHOW aibackup.max_parallel_tables");
	is($out, "16\n1", 'a superuser sets 16 and 1 in a session') or diag($err);
	$node->safe_psql('postgres', 'CREATE ROLE r_plain LOGIN');
	($ret, $out, $err) = $node->psql('postgres', 'SET aibackup.max_parallel_tables = 3',
		extra_params => [ '-U', 'r_plain' ]);
	isnt($ret, 0, 'a plain role cannot set it');
	like($err, qr/permission denied/, 'permission denied') or diag($err);
	set_conf($node, 'aibackup.max_parallel_tables' => '3');
	is($node->safe_psql('postgres', 'SHOW aibackup.max_parallel_tables'), '3',
		'postgresql.conf and a reload set it');
	reset_conf($node, 'aibackup.max_parallel_tables');
	is($node->safe_psql('postgres', 'SHOW aibackup.max_parallel_tables'), '2', 'and back to 2');
}

# ------------------------------------------------------------------ par: data
my $db = 'par';
$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, 'CREATE EXTENSION aibackup; CREATE SCHEMA rst');
# 46 tables of 0 to ~4000 rows (NULLs, quotes, commas, newlines in text)
$node->safe_psql($db, <<'SQL');
DO $$
BEGIN
  FOR i IN 1..46 LOOP
    EXECUTE format('CREATE TABLE %I (id int, v text, n numeric, d date, b bool)', 'tab_' || lpad(i::text, 2, '0'));
    EXECUTE format($q$INSERT INTO %I SELECT g, CASE WHEN g %% 11 = 0 THEN NULL
                      ELSE md5((g * %s)::text) || E', "q"\n' || g END,
                      g / 7.0, date '2020-01-01' + g %% 1000, g %% 2 = 0
                     FROM generate_series(1, %s) g$q$,
                   'tab_' || lpad(i::text, 2, '0'), i, (i * i * 53) % 4000);
  END LOOP;
END $$;
CREATE TABLE empty_t (id int, v text);
CREATE TABLE one_row (id int, v text);
INSERT INTO one_row VALUES (1, 'one');
CREATE TABLE toasty (id int, doc text);
INSERT INTO toasty SELECT g, (SELECT string_agg(md5((g * 1000 + k)::text), '') FROM generate_series(1, 3000) k)
  FROM generate_series(1, 12) g;
CREATE TABLE big (id int, a text, b text);
INSERT INTO big SELECT g, md5(g::text), md5((g * 3)::text) FROM generate_series(1, 80000) g;
-- the accounts: 100 live ones; acct_a is made large (zero-balance rows) so
-- that it is copied first and acct_z, tiny, last
CREATE TABLE acct_a (id int PRIMARY KEY, bal bigint NOT NULL, pad text);
INSERT INTO acct_a SELECT g, CASE WHEN g <= 100 THEN 1000 ELSE 0 END, md5(g::text) FROM generate_series(1, 60000) g;
CREATE TABLE acct_z (id int PRIMARY KEY, bal bigint NOT NULL);
INSERT INTO acct_z SELECT g, 1000 FROM generate_series(1, 100) g;
CREATE TABLE xfer_log (n bigint PRIMARY KEY, a int NOT NULL, z int NOT NULL, amt int NOT NULL);
CREATE SEQUENCE transfers;
CREATE TABLE stop_flag (x int);
SQL
# a name of 63 bytes (the limit) that needs quoting and percent-encoding
my $long = 'Long "Name", ' . ('y' x 50);
is(length($long), 63, 'the long name has 63 bytes (setup)');
$node->safe_psql($db, 'CREATE TABLE ' . qident($long) . ' (id int, v text); INSERT INTO '
	  . qident($long) . " SELECT g, 'L' || g FROM generate_series(1, 3000) g");
is($node->safe_psql($db, "SELECT count(*) FROM pg_class WHERE relname = " . sql_quote($long)), '1',
	'and is stored untruncated (setup)');
# settle the pages once: a later backup may then prove them unchanged
$node->safe_psql($db, 'VACUUM (FREEZE, ANALYZE)');

# every table but the three the load changes, as SQL names
my @static = map { "public.tab_" . sprintf('%02d', $_) } 1 .. 46;
push @static, 'public.empty_t', 'public.one_row', 'public.toasty', 'public.big', 'public.stop_flag',
  'public.' . qident($long);
my @live = qw(public.acct_a public.acct_z public.xfer_log);
my $n_tables = @static + @live;
is($node->safe_psql($db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"), $n_tables,
	"$n_tables tables (setup)");
my $src = checksums($db, @static);
note('par set up at ' . elapsed());
my $total = 200 * 1000;

# the transfer load: each transaction moves an amount from an account of
# acct_a to one of acct_z and logs it
sub start_load
{
	return bg_start($node, $db, <<'SQL', timeout => 400);
DO $$
DECLARE
  a int; z int; amt int; n bigint; t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    a := 1 + floor(random() * 100)::int;
    z := 1 + floor(random() * 100)::int;
    amt := 1 + floor(random() * 50)::int;
    IF random() < 0.5 THEN amt := -amt; END IF;
    n := nextval('transfers');
    UPDATE acct_a SET bal = bal - amt WHERE id = a;
    UPDATE acct_z SET bal = bal + amt WHERE id = z;
    INSERT INTO xfer_log VALUES (n, a, z, amt);
    COMMIT;
    EXIT WHEN EXISTS (SELECT 1 FROM stop_flag) OR clock_timestamp() - t0 > interval '300 s';
  END LOOP;
END $$;
SQL
}

# Restores the three live tables of backup $id under suffix $sfx and checks
# they are one snapshot: the accounts add up to the total, and each account
# is its start value moved by exactly the logged transfers of that backup.
sub check_consistent
{
	my ($id, $sfx, $label) = @_;
	($ret, $out, $err) = psql_err($node, $db,
		restore_sql('public.acct_a', $id, "r_a_$sfx") . ";\n"
		  . restore_sql('public.acct_z', $id, "r_z_$sfx") . ";\n"
		  . restore_sql('public.xfer_log', $id, "r_log_$sfx") . ";\n");
	is($ret, 0, "$label: the accounts and the log restore") or diag($err);
	is($node->safe_psql($db, "SELECT (SELECT sum(bal) FROM r_a_$sfx) + (SELECT sum(bal) FROM r_z_$sfx)"),
		$total, "$label: the restored accounts add up to the constant total");
	is($node->safe_psql($db, "SELECT (SELECT count(*) FROM r_a_$sfx WHERE id <= 100) + (SELECT count(*) FROM r_z_$sfx)"),
		'200', "$label: with every account");
	my $logged = $node->safe_psql($db, "SELECT count(*) FROM r_log_$sfx");
	ok($logged > 0, "$label: the restored log has the transfers before the snapshot ($logged)");
	is($node->safe_psql($db, <<"SQL"), '0', "$label: acct_a is exactly the logged transfers' result");
WITH d AS (SELECT a AS id, sum(amt) AS s FROM r_log_$sfx GROUP BY a)
SELECT count(*) FROM r_a_$sfx r LEFT JOIN d USING (id)
 WHERE r.bal <> CASE WHEN r.id <= 100 THEN 1000 ELSE 0 END - coalesce(d.s, 0)
SQL
	is($node->safe_psql($db, <<"SQL"), '0', "$label: acct_z is exactly the logged transfers' result");
WITH d AS (SELECT z AS id, sum(amt) AS s FROM r_log_$sfx GROUP BY z)
SELECT count(*) FROM r_z_$sfx r LEFT JOIN d USING (id) WHERE r.bal <> 1000 + coalesce(d.s, 0)
SQL
	is($node->safe_psql($db, "SELECT min(n) = 1 AND max(n) = count(*) FROM r_log_$sfx"),
		't', "$label: the log is a prefix of the transfers, without a gap");
}

# ------------------------------------------------------------------ par: 2 workers under load
my $load = start_load();
ok(wait_until($node, $db, 'SELECT last_value > 200 FROM transfers', 60), 'a transfer load is running');
my $id_p2;
{
	my $before = $node->safe_psql($db, 'SELECT last_value FROM transfers');
	AibackupData::_next_second();
	my $h = bg_start($node, $db, par(2) . ";\nSELECT aibackup_backup_now();\n", timeout => 300);
	my ($max) = watch_workers($h, $db);
	my ($r, $o, $e) = bg_finish($h);
	my $after = $node->safe_psql($db, 'SELECT last_value FROM transfers');
	is($r, 0, 'max_parallel_tables = 2: a backup of 54 tables under concurrent transfers succeeds') or diag($e);
	$id_p2 = backup_id_of($o);
	ok($after - $before > 0, 'transfers committed while it ran (' . ($after - $before) . ')');
	note("table workers seen at once: $max");
  SKIP:
	{
		skip('no aibackup.max_parallel_tables', 1) unless $has_par;
		ok($max >= 1 && $max <= 2, "table workers copied its tables, never more than 2 at once (saw $max)");
	}
	is(table_workers($db), '0', 'no table worker is left after it');
}
my ($m_p2, $mt_p2) = manifest_tables($db, $id_p2);
is($m_p2->{status}, 'ok', 'its manifest says ok');
is(scalar(keys %$mt_p2), $n_tables, 'and lists every table');
is_deeply([ grep { ($mt_p2->{$_}{status} // '') ne 'ok' } sort keys %$mt_p2 ], [], 'every table ok');
note('par: first backup at ' . elapsed());
check_consistent($id_p2, 'p2', 'max_parallel_tables = 2');

# every other table restores equal to its source
{
	my $sql = join '', map { restore_sql($_, $id_p2, s/^public\./rst./r) . ";\n" } @static;
	($ret, $out, $err) = psql_err($node, $db, $sql);
	is($ret, 0, 'every other table of the parallel backup restores') or diag($err);
	my $got = checksums($db, map { s/^public\./rst./r } @static);
	is_deeply({ map { ($_ => $got->{ s/^public\./rst./r }) } @static }, $src,
		'and each is equal to its source (count and md5 of its rows), the 63-byte name\'s too');
}

# ------------------------------------------------------------------ par: 4 workers under load
my $id_p4;
{
	my $before = $node->safe_psql($db, 'SELECT last_value FROM transfers');
	AibackupData::_next_second();
	my $h = bg_start($node, $db, par(4) . ";\nSELECT aibackup_backup_now(full => true);\n", timeout => 300);
	my ($max) = watch_workers($h, $db);
	my ($r, $o, $e) = bg_finish($h);
	my $after = $node->safe_psql($db, 'SELECT last_value FROM transfers');
	is($r, 0, 'max_parallel_tables = 4: a full backup under concurrent transfers succeeds') or diag($e);
	$id_p4 = backup_id_of($o);
	ok($after - $before > 0, 'transfers committed while it ran (' . ($after - $before) . ')');
	note("table workers seen at once: $max");
  SKIP:
	{
		skip('no aibackup.max_parallel_tables', 1) unless $has_par;
		ok($max >= 1 && $max <= 4, "never more than 4 table workers at once (saw $max)");
	}
	is(backup_status($db, $id_p4), 'ok', 'it is ok');
}
note('par: second backup at ' . elapsed());
check_consistent($id_p4, 'p4', 'max_parallel_tables = 4');

$node->safe_psql($db, 'INSERT INTO stop_flag VALUES (1)');
{
	my ($lr, $lo, $le) = bg_finish($load);
	is($lr, 0, 'the transfer load ran without error') or diag($le);
	is($node->safe_psql($db, 'SELECT (SELECT sum(bal) FROM acct_a) + (SELECT sum(bal) FROM acct_z)'),
		$total, 'the live total is constant (sanity)');
}

# ------------------------------------------------------------------ par: incremental
{
	AibackupData::_next_second();
	my ($r, $o, $e) = backup_now($node, $db, undef, pre => par(2), timeout => 300);
	is($r, 0, 'a third parallel backup, incremental, succeeds') or diag($e);
	my $id3 = backup_id_of($o);
	my ($copied, $n, $ok) = split /\|/, $node->safe_psql($db,
		"SELECT count(*) FILTER (WHERE copied_from IS NOT NULL) || '|' || count(*) || '|' "
		  . "|| count(*) FILTER (WHERE copied_from IS NULL OR copied_from = '$id_p4') "
		  . "FROM aibackup_list_tables('$id3')");
	ok($copied > 0, "it copies the unchanged tables ($copied of $n)");
	is($ok, $n, 'from the previous backup');
	my ($ncopied) = $e =~ /DETAIL:\s+(\d+) unchanged tables? (?:was|were) copied/;
	is($ncopied // 0, $copied, 'its NOTICE counts them');
	is(backup_status($db, $id3), 'ok', 'it is ok');
	my %copied = map { ($_ => 1) } split /\n/, $node->safe_psql($db,
		"SELECT format('%I.%I', schema_name, table_name) FROM aibackup_list_tables('$id3') WHERE copied_from IS NOT NULL");
	my @check = grep { $copied{$_} } ('public.big', 'public.toasty', 'public.tab_46', 'public.' . qident($long));
	my $sql = '';
	my $i = 0;
	$sql .= restore_sql($_, $id3, 'rst.inc_' . $i++) . ";\n" for @check;
	($ret, $out, $err) = psql_err($node, $db, $sql);
	is($ret, 0, 'copied tables restore from it') or diag($err);
	my $got = checksums($db, map { "rst.inc_$_" } 0 .. $#check);
	is_deeply([ map { $got->{"rst.inc_$_"} } 0 .. $#check ], [ map { $src->{ $check[$_] } } 0 .. $#check ],
		'equal to their sources (' . join(', ', @check) . ')');
	($r, $o, $e) = psql_err($node, $db, restore_sql('public.acct_z', $id3, 'r_z_inc'));
	is($node->safe_psql($db, 'SELECT md5(string_agg(r_z_inc::text, \',\' ORDER BY id)) FROM r_z_inc'),
		$node->safe_psql($db, 'SELECT md5(string_agg(acct_z::text, \',\' ORDER BY id)) FROM acct_z'),
		'and a changed table was read again, as it is now');
}
note('par done at ' . elapsed());

# ------------------------------------------------------------------ pfail: a table fails alone
$node->safe_psql('postgres', 'CREATE DATABASE pfail');
$node->safe_psql('pfail', <<'SQL');
CREATE EXTENSION aibackup;
CREATE TYPE mood AS ENUM ('happy', 'sad', 'gone');
CREATE TABLE good1 (id int, v text);
INSERT INTO good1 SELECT g, md5(g::text) FROM generate_series(1, 40000) g;
CREATE TABLE moody (id int, m mood, pad text);
INSERT INTO moody SELECT g, CASE WHEN g = 500 THEN 'gone' ELSE 'happy' END::mood, md5(g::text)
  FROM generate_series(1, 20000) g;
CREATE TABLE good2 (id int, v text);
INSERT INTO good2 SELECT g, md5(g::text) FROM generate_series(1, 10000) g;
CREATE TABLE good3 (id int);
INSERT INTO good3 SELECT generate_series(1, 500);
CREATE TABLE good4 (id int);
DELETE FROM pg_enum WHERE enumtypid = 'mood'::regtype AND enumlabel = 'gone';
SQL
($ret, $out, $err) = $node->psql('pfail', 'SELECT * FROM moody');
like($err, qr/invalid internal value for enum/, 'a table whose type output fails (setup)');
{
	my %st;
	for my $n (1, 2)
	{
		my ($r, $o, $e) = backup_now($node, 'pfail', 'full => true', pre => par($n), timeout => 300);
		is($r, 0, "max_parallel_tables = $n: a backup with one failing table still returns an id") or diag($e);
		my $id = backup_id_of($o);
		my ($m, $mt) = manifest_tables('pfail', $id);
		is($m->{status}, 'partial', "max_parallel_tables = $n: it is partial");
		is(backup_status('pfail', $id), 'partial', "max_parallel_tables = $n: listed as partial");
		like($mt->{'public.moody'}{error} // '', qr/enum/, "max_parallel_tables = $n: the failing table's error is recorded");
		$st{$n} = join ',', map { "$_=" . ($mt->{$_}{status} // 'missing') } sort keys %$mt;
		if ($n == 2)
		{
			my $cs = checksum($node, 'pfail', 'good1');
			$node->safe_psql('pfail', restore_sql('public.good1', $id, 'good1_r'));
			is(checksum($node, 'pfail', 'good1_r'), $cs, 'a table of the partial parallel backup restores equal');
			$node->safe_psql('pfail', 'DROP TABLE good1_r');
		}
	}
	is($st{1}, 'public.good1=ok,public.good2=ok,public.good3=ok,public.good4=ok,public.moody=failed',
		'serially: the failing table failed, the others are ok');
	is($st{2}, $st{1}, 'with 2 workers: the same statuses as serially');
}

# ------------------------------------------------------------------ priv: a granted non-superuser
$node->safe_psql('postgres', 'CREATE DATABASE priv');
$node->safe_psql('priv', <<'SQL');
CREATE EXTENSION aibackup;
CREATE ROLE r_bk LOGIN;
GRANT EXECUTE ON FUNCTION aibackup_backup_now(regclass[], boolean) TO r_bk;
CREATE TABLE p1 (id int, v text);
CREATE TABLE p2 (id int, v text);
CREATE TABLE p3 (id int, v text);
CREATE TABLE hidden (id int, v text);
INSERT INTO p1 SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 15000) g;
INSERT INTO p2 SELECT g, repeat(md5((g + 1)::text), 8) FROM generate_series(1, 15000) g;
INSERT INTO p3 SELECT g, repeat(md5((g + 2)::text), 8) FROM generate_series(1, 15000) g;
INSERT INTO hidden SELECT g, 'secret ' || g FROM generate_series(1, 20000) g;
GRANT SELECT ON p1, p2, p3 TO r_bk;
SQL
{
	# (a plain role cannot SET the rate: the server's setting, for a while)
	set_conf($node, 'aibackup.max_rate' => '6');
	AibackupData::_next_second();
	my $h = bg_start($node, 'priv', "SELECT aibackup_backup_now();\n", extra => [ '-U', 'r_bk' ], timeout => 300);
	my ($max) = watch_workers($h, 'priv');
	my ($r, $o, $e) = bg_finish($h);
	reset_conf($node, 'aibackup.max_rate');
	is($r, 0, 'a granted non-superuser backs up with the default setting') or diag($e);
	my $id = backup_id_of($o);
  SKIP:
	{
		skip('no aibackup.max_parallel_tables', 1) unless $has_par;
		is($max, 2, 'with 2 table workers (the default)');
	}
	my ($m, $mt) = manifest_tables('priv', $id);
	is($m->{status}, 'partial', 'the backup is partial');
	is($mt->{'public.hidden'}{status} // 'missing', 'failed', 'the table it cannot SELECT failed');
	like($mt->{'public.hidden'}{error} // '', qr/permission denied/, 'with "permission denied"');
	is(join(',', map { $mt->{"public.$_"}{status} // 'missing' } qw(p1 p2 p3)), 'ok,ok,ok',
		'the tables it can read are ok');
	ok(!s3_head(obj_key($prefix, 'priv', $id, 'public', 'hidden')), 'no object holds the hidden table');
	my $cs = checksum($node, 'priv', 'p2');
	$node->safe_psql('priv', restore_sql('public.p2', $id, 'p2_r'));
	is(checksum($node, 'priv', 'p2_r'), $cs, 'and what it backed up restores equal');
}
note('pfail and priv done at ' . elapsed());

# ------------------------------------------------------------------ heavy: data
$node->safe_psql('postgres', 'CREATE DATABASE heavy');
$node->safe_psql('heavy', <<'SQL');
CREATE EXTENSION aibackup;
-- ~3.3 MB of CSV each
CREATE TABLE m1 (id int, v text);
CREATE TABLE m2 (id int, v text);
CREATE TABLE m3 (id int, v text);
INSERT INTO m1 SELECT g, repeat(md5(g::text), 10) FROM generate_series(1, 10000) g;
INSERT INTO m2 SELECT g, repeat(md5((g + 1)::text), 10) FROM generate_series(1, 10000) g;
INSERT INTO m3 SELECT g, repeat(md5((g + 2)::text), 10) FROM generate_series(1, 10000) g;
-- ~40 MB of CSV each: multipart uploads (16 MB parts) when not compressed
CREATE TABLE h1 (id int, v text);
CREATE TABLE h2 (id int, v text);
INSERT INTO h1 SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 42000) g;
INSERT INTO h2 SELECT g, repeat(md5((g + 1)::text), 30) FROM generate_series(1, 42000) g;
CREATE TABLE s1 (id int);
INSERT INTO s1 SELECT generate_series(1, 100);
CREATE TABLE d1 (id int, v text);
CREATE TABLE d2 (id int, v text);
INSERT INTO d1 SELECT g, 'd' || g FROM generate_series(1, 100) g;
INSERT INTO d2 SELECT g, 'd' || g FROM generate_series(1, 100) g;
VACUUM (FREEZE, ANALYZE);
SQL
$node->safe_psql('heavy', 'CHECKPOINT');
my $hsrc = checksums('heavy', qw(m1 m2 m3 h1 h2 s1 d2));
{
	my ($r, $o, $e) = backup_now($node, 'heavy', undef, pre => par(2), timeout => 300);
	is($r, 0, 'a first backup of heavy (setup)') or diag($e);
	is(backup_status('heavy', backup_id_of($o)), 'ok', 'it is ok (setup)');
}

note('heavy set up at ' . elapsed());

# ------------------------------------------------------------------ heavy: workers while it runs
for my $n (4, 2)
{
	my $want = $n < 3 ? $n : 3;
	AibackupData::_next_second();
	my $h = bg_start($node, 'heavy',
		"SET aibackup.max_rate = 5;\n" . par($n) . ";\n"
		  . "SELECT aibackup_backup_now(ARRAY['m1', 'm2', 'm3']::regclass[], full => true);\n", timeout => 300);
	my ($max, $polls) = watch_workers($h, 'heavy');
	my ($r, $o, $e) = bg_finish($h);
	is($r, 0, "max_parallel_tables = $n, three tables, throttled: the backup succeeds") or diag($e);
	note("$polls polls of pg_stat_activity");
  SKIP:
	{
		skip('no aibackup.max_parallel_tables', 2) unless $has_par;
		is($max, $want, "max_parallel_tables = $n, three tables: at most and at some point exactly $want table workers");
		ok(wait_for(15, sub { table_workers(undef) eq '0' }), 'and none remains after the backup');
	}
	my $id = backup_id_of($o);
	is(backup_status('heavy', $id), 'ok', "max_parallel_tables = $n: it is ok");
	if ($n == 4)
	{
		$node->safe_psql('heavy', restore_sql('public.m3', $id, 'm3_r'));
		is(checksum($node, 'heavy', 'm3_r'), $hsrc->{m3}, 'a table of it restores equal');
	}
}

# ------------------------------------------------------------------ heavy: DDL behind the backup's locks
# The backup holds ACCESS SHARE on all its tables from the start; an ALTER
# TABLE and a LOCK TABLE on two small tables queue behind those while the
# workers copy the big ones.  When a worker then opens a small table, its
# ACCESS SHARE would queue behind the DDL (which waits for the backup,
# which waits for the worker) unless the worker is in the backup's lock
# group.  The backup must finish (statement_timeout: no hang), then the DDL.
{
	AibackupData::_next_second();
	my $h = bg_start($node, 'heavy',
		"SET statement_timeout = '120s';\nSET aibackup.max_rate = 2;\n" . par(2) . ";\n"
		  . "SELECT aibackup_backup_now(ARRAY['m1', 'm2', 'd1', 'd2']::regclass[], full => true);\n",
		timeout => 200);
	my $running = $has_par
	  ? wait_for(60, sub { table_workers('heavy') eq '2' })
	  : wait_for(60, sub { running_backup_id('heavy') ne '' });
	ok($running, 'a throttled backup of two big and two small tables is copying (setup)');
	my $ddl1 = bg_start($node, 'heavy', "SET statement_timeout = '180s';\nALTER TABLE d1 ADD COLUMN added int;\n",
		timeout => 200);
	my $ddl2 = bg_start($node, 'heavy',
		"SET statement_timeout = '180s';\nBEGIN;\nLOCK TABLE d2 IN ACCESS EXCLUSIVE MODE;\n"
		  . "INSERT INTO d2 VALUES (-1, 'after');\nCOMMIT;\n", timeout => 200);
	my $queued = wait_for(30, sub {
		$node->safe_psql('heavy',
			"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
			  . "AND (query LIKE 'ALTER TABLE d1%' OR query LIKE 'LOCK TABLE d2%')") eq '2' });
	my $still = leader_pid('heavy') ne '';
	# (largest first: while a worker is still on m1 or m2, d1 and d2 wait)
	my $big_busy = $node->safe_psql('heavy',
		"SELECT count(*) FROM pg_stat_progress_aibackup WHERE table_name IN ('public.m1', 'public.m2')");
	note('progress when the DDL queued: ' . $node->safe_psql('heavy',
		"SELECT string_agg(pid || ' ' || phase || ' ' || coalesce(table_name, '-') || ' ' || tables_done || '/' || tables_total, '; ') "
		  . "FROM pg_stat_progress_aibackup"));
	ok($queued && $still, 'ALTER TABLE and LOCK TABLE queue behind the running backup (setup)');
	ok(!$has_par || $big_busy ne '0',
		'while its workers still copy the big tables, before the small ones (setup)');
	my ($r, $o, $e) = bg_finish($h);
	is($r, 0, 'the backup finishes: its workers are not deadlocked behind the queued DDL') or diag($e);
	my ($r1, $o1, $e1) = bg_finish($ddl1);
	is($r1, 0, 'then ALTER TABLE ... ADD COLUMN completes') or diag($e1);
	my ($r2, $o2, $e2) = bg_finish($ddl2);
	is($r2, 0, 'and LOCK TABLE ... IN ACCESS EXCLUSIVE MODE') or diag($e2);
	is($node->safe_psql('heavy', "SELECT count(*) FROM pg_attribute WHERE attrelid = 'd1'::regclass AND attname = 'added'"),
		'1', 'the column was added');
	my $id = backup_id_of($o);
	my ($m, $mt) = manifest_tables('heavy', $id);
	is($m->{status} // 'missing', 'ok', 'the backup is ok');
	is(join(',', map { $mt->{"public.$_"}{status} // 'missing' } qw(m1 m2 d1 d2)), 'ok,ok,ok,ok',
		'every table of it is ok');
	is(join(',', map { $_->{name} } @{ $mt->{'public.d1'}{columns} // [] }), 'id,v',
		'd1 as the backup\'s snapshot saw it (without the new column)');
	is($mt->{'public.d2'}{rows}, 100, 'd2 as the backup\'s snapshot saw it (without the new row)');
	ok(wait_for(15, sub { table_workers(undef) eq '0' }), 'no table worker remains');
}
note('lock group done at ' . elapsed());

# ------------------------------------------------------------------ heavy: cancel, terminate, SIGKILL
# Uncompressed, the big tables go up in 16 MB parts: a backup interrupted
# while copying them has multipart uploads open.
set_conf($node, 'aibackup.compression_level' => '0');
is(uploads_in_progress(), 0, 'no multipart upload is open before (setup)');

# (6 MB/s for the backup: a part is sent after about 5 s, the big tables
# end after about 13 s, which leaves time to see the upload and signal)
my $hsql = "SET aibackup.max_rate = 6;\n" . par(2) . ";\n"
  . "SELECT aibackup_backup_now(ARRAY['h1', 'h2', 's1']::regclass[], full => true);\n";

# starts the throttled backup; waits for its two workers and an open
# multipart upload; returns (handle, backup id)
sub start_interruptible
{
	my ($label) = @_;
	AibackupData::_next_second();
	my $h = bg_start($node, 'heavy', $hsql, timeout => 300);
	my $id = '';
	ok(wait_for(60, sub { ($id = running_backup_id('heavy')) ne '' }), "$label: the backup runs (setup)");
	if ($has_par)
	{
		ok(wait_for(60, sub { table_workers('heavy') eq '2' }), "$label: with two table workers");
	}
	# a first part sent (cheap to ask), then the upload seen in S3
	wait_for(60, sub { $node->safe_psql('heavy',
		"SELECT count(*) FROM pg_stat_progress_aibackup WHERE bytes_uploaded > 0") ne '0' });
	ok(wait_for(60, sub { uploads_in_progress() > 0 }), "$label: a multipart upload is open (setup)");
	return ($h, $id);
}

# after an interrupted backup: no manifest, no upload, no worker; the next
# backup succeeds
sub after_failure
{
	my ($label, $id) = @_;
	ok(wait_for(30, sub { table_workers(undef) eq '0' }), "$label: no table worker remains");
	ok(wait_no_backup($node, 'heavy', 30), "$label: the backup is over");
	is(has_manifest('heavy', $id), 0, "$label: no manifest.json was written for $id");
	is(listed('heavy', $id), '0', "$label: aibackup_list_backups() does not list it");
	is(uploads_in_progress(), 0, "$label: no multipart upload is left open");
	my ($r, $o, $e) = backup_now($node, 'heavy', "ARRAY['h1', 'h2', 's1']::regclass[]", pre => par(2), timeout => 300);
	is($r, 0, "$label: the next backup succeeds") or diag($e);
	is(backup_status('heavy', backup_id_of($o)), 'ok', "$label: and is ok");
}


my @victims = (
	[ 'cancel of a table worker', 'pg_cancel_backend', 'worker' ],
	[ 'terminate of a table worker', 'pg_terminate_backend', 'worker' ],
	[ 'cancel of the calling backend', 'pg_cancel_backend', 'leader' ],
	[ 'terminate of the calling backend', 'pg_terminate_backend', 'leader' ]);
for my $v (@victims)
{
	my ($label, $fn, $who) = @$v;
  SKIP:
	{
		skip("$label: no aibackup.max_parallel_tables", 11) if $who eq 'worker' && !$has_par;
		my ($h, $id) = start_interruptible($label);
		# found and signalled in one statement (the backup is running on)
		my $type = $who eq 'worker' ? 'aibackup table worker' : 'client backend';
		my $sig = $node->safe_psql('postgres',
			"SELECT pid || ' ' || $fn(pid) FROM pg_stat_activity WHERE backend_type = '$type' "
			  . "AND datname = 'heavy' AND pid <> pg_backend_pid() "
			  . ($who eq 'leader' ? "AND query LIKE '%aibackup_backup_now(%' " : '')
			  . "ORDER BY pid LIMIT 1");
		like($sig, qr/^\d+ (?:t|true)$/, "$label: $fn() signals it ($sig)");
		my ($r, $o, $e) = bg_finish($h);
		isnt($r, 0, "$label: the backup fails");
		if ($label eq 'terminate of the calling backend')
		{
			# the session ends (FATAL); its workers stop on their own
			like($e, qr/FATAL:.*terminating connection/, "$label: the session ends")
			  or diag("stdout: $o\nstderr: $e");
		}
		elsif ($fn eq 'pg_terminate_backend')
		{
			like($e, qr/ERROR:.*terminating aibackup table worker/,
				"$label: with an ERROR that says the worker was terminated")
			  or diag("stdout: $o\nstderr: $e");
		}
		else
		{
			like($e, qr/ERROR:.*canceling statement/, "$label: with an ERROR")
			  or diag("stdout: $o\nstderr: $e");
		}
		note("$label: $e");
		after_failure($label, $id);
		note("$label done at " . elapsed());
	}
}

# SIGKILL: the postmaster restarts the cluster; the launcher's start-up
# sweep (it runs when aibackup.enabled is on) aborts the uploads left.
SKIP:
{
	skip('SIGKILL of a table worker: no aibackup.max_parallel_tables', 12) unless $has_par;
	# (one slot a day, at midnight UTC: no scheduled run meets the test)
	set_conf($node, 'aibackup.databases' => 'heavy', 'aibackup.interval' => '1d',
		'aibackup.enabled' => 'on');
	my $launcher = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'aibackup launcher'");
	$node->safe_psql('postgres', 'CHECKPOINT');    # (a shorter recovery)
	my ($h, $id) = start_interruptible('SIGKILL');
	my ($wpid) = worker_pids('heavy');
	ok(($wpid // '') =~ /^\d+$/, "SIGKILL: a table worker's pid");
	my $log_off = -s $node->logfile;
	kill 'KILL', $wpid if ($wpid // '') =~ /^\d+$/;
	my ($r, $o, $e) = bg_finish($h);
	isnt($r, 0, 'SIGKILL: the backup\'s session fails');
	ok(wait_for(90, sub {
		my ($rr, $lo) = $node->psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'aibackup launcher'");
		$rr == 0 && $lo =~ /^\d+$/ && $lo ne $launcher }),
		'SIGKILL: the cluster restarts, with a new launcher');
	like(substr(slurp_file($node->logfile), $log_off), qr/terminated by signal 9/,
		'SIGKILL: the postmaster saw the worker killed');
	is(has_manifest('heavy', $id), 0, "SIGKILL: no manifest.json was written for $id");
	is(listed('heavy', $id), '0', 'SIGKILL: aibackup_list_backups() does not list it');
	ok(wait_for(60, sub { uploads_in_progress() == 0 }),
		'SIGKILL: the launcher\'s start-up sweep aborts the multipart uploads left');
	note('launcher: ' . join(' | ', substr(slurp_file($node->logfile), $log_off) =~ /(aborted \d+ multipart uploads[^\n]*)/g));
	set_conf($node, 'aibackup.enabled' => 'off');
	my ($r2, $o2, $e2) = backup_now($node, 'heavy', "ARRAY['h1', 'h2', 's1']::regclass[]", pre => par(2), timeout => 300);
	is($r2, 0, 'SIGKILL: the next backup succeeds') or diag($e2);
	is(backup_status('heavy', backup_id_of($o2)), 'ok', 'SIGKILL: and is ok');
	is(table_workers(undef), '0', 'SIGKILL: no table worker remains');
}
reset_conf($node, 'aibackup.compression_level');
note('interruptions done at ' . elapsed());

# ------------------------------------------------------------------ no room for a table worker
# max_worker_processes = the background workers running now (the aibackup
# launcher and PostgreSQL's own, e.g. the logical replication launcher):
# the launcher still fits, no table worker does
{
	my $bgw = $node->safe_psql('postgres', <<'SQL');
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type NOT IN ('client backend', 'autovacuum launcher', 'autovacuum worker',
       'background writer', 'checkpointer', 'walwriter', 'walsender', 'walreceiver',
       'startup', 'archiver', 'logger', 'io worker', 'walsummarizer', 'slotsync worker',
       'standalone backend', 'aibackup table worker', 'parallel worker')
SQL
	note("background workers: $bgw");
	$node->append_conf('postgresql.conf', "max_worker_processes = $bgw\n");
	$node->restart;
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup launcher'"),
		'1', "max_worker_processes = $bgw: the launcher runs (setup)");
	AibackupData::_next_second();
	my $h = bg_start($node, 'heavy',
		"SET aibackup.max_rate = 10;\n" . par(2) . ";\n"
		  . "SELECT aibackup_backup_now(ARRAY['m1', 'm2', 'm3', 'd2']::regclass[], full => true);\n",
		timeout => 300);
	my ($max) = watch_workers($h, 'heavy');
	my ($r, $o, $e) = bg_finish($h);
	is($r, 0, 'with no room for a table worker the backup still succeeds') or diag($e);
	is($max, 0, 'without any table worker');
	my $id = backup_id_of($o);
	my ($m, $mt) = manifest_tables('heavy', $id);
	is($m->{status} // 'missing', 'ok', 'it is ok');
	is(join(',', map { $mt->{"public.$_"}{status} // 'missing' } qw(m1 m2 m3 d2)), 'ok,ok,ok,ok',
		'every table of it is ok');
	$node->safe_psql('heavy', restore_sql('public.m1', $id, 'm1_r') . '; '
		  . restore_sql('public.d2', $id, 'd2_r'));
	is(checksum($node, 'heavy', 'm1_r'), $hsrc->{m1}, 'm1 restores equal to its source');
	is(checksum($node, 'heavy', 'd2_r'), checksum($node, 'heavy', 'd2'), 'd2 restores equal to its source');
}

note('total ' . elapsed());
$node->stop;
done_testing();
