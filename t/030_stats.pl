# Monitoring: pg_stat_aibackup (per-database state and counters),
# pg_stat_progress_aibackup (live progress of backups and restores),
# pg_stat_aibackup_tables (per-table history kept by the backups),
# aibackup_stat_reset(); counters after failures, secrets kept out of
# errors, survival of a clean restart, privileges, the scheduler's next run,
# and the postgres_exporter queries file (scripts/postgres_exporter_queries.yaml).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use AibackupTest;
use AibackupData;

my $prefix = "t030-$$";
my $node = new_cluster('stats', prefix => $prefix, conf => <<'CONF');
aibackup.enabled = off
max_wal_size = 1GB
checkpoint_timeout = 30min
CONF
my $db = 'st';
my ($ret, $out, $err);

$node->safe_psql('postgres', "CREATE DATABASE $db");
$node->safe_psql($db, <<'SQL');
CREATE EXTENSION aibackup;
CREATE TABLE a (id int PRIMARY KEY, v text);
INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 1000) g;
CREATE TABLE b (id int, w text);
INSERT INTO b SELECT g, repeat('b', g % 50) FROM generate_series(1, 500) g;
SQL

# the pg_stat_aibackup row of $datname (read in database $qdb) as a hash,
# undef when there is none; e_* are epochs of the timestamps
sub stat_db
{
	my ($datname, $qdb) = @_;
	my $j = $node->safe_psql($qdb // $db,
		"SELECT row_to_json(x) FROM (SELECT s.*, extract(epoch FROM last_started_at) AS e_started, "
		  . "extract(epoch FROM last_finished_at) AS e_finished, "
		  . "extract(epoch FROM last_success_at) AS e_success, "
		  . "extract(epoch FROM next_run_at) AS e_next_run, "
		  . "extract(epoch FROM stats_reset) AS e_reset "
		  . "FROM pg_stat_aibackup s WHERE datname = " . sql_quote($datname) . ") x");
	return $j eq '' ? undef : JSON::PP->new->allow_bignum->decode($j);
}

my @counters = qw(backups_succeeded backups_failed tables_backed_up tables_failed
  rows_backed_up raw_bytes compressed_bytes);

# sums of aibackup_list_tables(id): tables, rows, raw, compressed
sub list_sums
{
	my ($d, $id) = @_;
	return split /\|/, $node->safe_psql($d,
		"SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(raw_bytes), 0), "
		  . "coalesce(sum(compressed_bytes), 0) FROM aibackup_list_tables(" . sql_quote($id) . ")");
}

# ------------------------------------------------------------------ empty
is($node->safe_psql($db, 'SELECT count(*) FROM pg_stat_aibackup'), '0',
	'with the scheduler off and no backup yet, pg_stat_aibackup is empty');
is($node->safe_psql($db, 'SELECT count(*) FROM pg_stat_progress_aibackup'), '0',
	'and nothing is in progress');

# ------------------------------------------------------------------ successful backup
my $id1;
($ret, $id1, $err) = backup_now($node, $db);
is($ret, 0, 'a backup succeeds') or diag($err);
my $s1 = stat_db($db);
ok($s1, 'pg_stat_aibackup has a row for the database afterwards');
is($s1->{last_status}, 'ok', 'last_status is ok');
is($s1->{last_backup_id}, $id1, 'last_backup_id is the id aibackup_backup_now() returned');
is($s1->{last_error}, undef, 'last_error is NULL');
ok(defined $s1->{e_success} && defined $s1->{e_started} && defined $s1->{e_finished}
	  && $s1->{e_started} <= $s1->{e_finished} && $s1->{e_success} == $s1->{e_finished},
	'last_started_at <= last_finished_at = last_success_at');
ok($s1->{e_finished} <= time() + 1 && $s1->{e_finished} > time() - 120, 'last_finished_at is recent');
is($s1->{next_run_at}, undef, 'next_run_at is NULL with the scheduler off');
is("$s1->{backups_succeeded}/$s1->{backups_failed}", '1/0', 'one backup succeeded, none failed');
is($s1->{tables_failed}, 0, 'no table failed');
{
	my ($n, $rows, $raw, $comp) = list_sums($db, $id1);
	is($s1->{tables_backed_up}, $n, "tables_backed_up is the number of tables in aibackup_list_tables ($n)");
	is($s1->{rows_backed_up}, $rows, "rows_backed_up is the sum of their rows ($rows)");
	is($s1->{raw_bytes}, $raw, 'raw_bytes is the sum of their raw_bytes');
	is($s1->{compressed_bytes}, $comp, 'compressed_bytes is the sum of their compressed_bytes');
	is($rows, 1500, 'which is every row of the database (sanity)');

	my ($m) = manifest($prefix, $db, $id1);
	my %ms = (n => 0, rows => 0, raw => 0, comp => 0);
	for my $t (@{ $m->{tables} // [] })
	{
		next unless $t->{status} eq 'ok';
		$ms{n}++;
		$ms{rows} += $t->{rows};
		$ms{raw} += $t->{raw_bytes};
		$ms{comp} += $t->{compressed_bytes};
	}
	is_deeply([ @{$s1}{qw(tables_backed_up rows_backed_up raw_bytes compressed_bytes)} ],
		[ @ms{qw(n rows raw comp)} ], 'and the same as the sums in manifest.json');
}

# ------------------------------------------------------------------ failed backup
# S3 unreachable: the backup fails as a whole
my $before = stat_db($db);
set_conf($node, 'aibackup.s3_endpoint' => 'http://127.0.0.1:1');
($ret, $out, $err) = backup_now($node, $db, undef, timeout => 180);
isnt($ret, 0, 'a backup with S3 unreachable fails');
my $sf = stat_db($db);
is($sf->{last_status}, 'failed', 'last_status is failed');
like($sf->{last_error} // '', qr/connect/i, 'last_error says why (could not connect)')
  or diag("last_error: " . ($sf->{last_error} // 'NULL') . "; client error: $err");
is($sf->{backups_failed}, $before->{backups_failed} + 1, 'backups_failed went up by one');
is($sf->{backups_succeeded}, $before->{backups_succeeded}, 'backups_succeeded did not change');
is($sf->{last_success_at}, $before->{last_success_at}, 'last_success_at did not change');
ok($sf->{e_finished} > $before->{e_finished}, 'last_finished_at moved on');
is_deeply([ @{$sf}{qw(tables_backed_up rows_backed_up raw_bytes compressed_bytes)} ],
	[ @{$before}{qw(tables_backed_up rows_backed_up raw_bytes compressed_bytes)} ],
	'the table, row and byte counters did not change');
diag('last_backup_id after a backup that failed before it got an id: '
	  . ($sf->{last_backup_id} // 'NULL'));
reset_conf($node, 'aibackup.s3_endpoint');

my $id2;
($ret, $id2, $err) = backup_now($node, $db);
is($ret, 0, 'with S3 back, a backup succeeds again') or diag($err);
my $s2 = stat_db($db);
is("$s2->{last_status}/$s2->{last_backup_id}", "ok/$id2", 'last_status ok, last_backup_id the new id');
is($s2->{last_error}, undef, 'last_error is cleared by a successful backup');
is($s2->{backups_succeeded}, $before->{backups_succeeded} + 1, 'backups_succeeded went up by one');
ok($s2->{e_success} > $before->{e_success}, 'last_success_at moved on');
{
	my ($n, $rows, $raw, $comp) = list_sums($db, $id2);
	is($s2->{rows_backed_up} - $before->{rows_backed_up}, $rows,
		'rows_backed_up grew by the rows of the new backup');
	is($s2->{compressed_bytes} - $before->{compressed_bytes}, $comp,
		'compressed_bytes grew by the compressed bytes of the new backup');
}

# ------------------------------------------------------------------ secrets stay out
my $secret = "T030zzDistinctSecret${$}Qx";
$before = stat_db($db);
set_conf($node, 'aibackup.s3_secret_access_key' => $secret);
($ret, $out, $err) = backup_now($node, $db, undef, timeout => 180);
isnt($ret, 0, 'a backup with a wrong secret key fails');
like($err, qr/SignatureDoesNotMatch|signature/i, 'with SignatureDoesNotMatch') or diag($err);
my $ss = stat_db($db);
is($ss->{last_status}, 'failed', 'last_status is failed');
like($ss->{last_error} // '', qr/SignatureDoesNotMatch|signature/i, 'last_error names the signature mismatch')
  or diag('last_error: ' . ($ss->{last_error} // 'NULL'));
unlike($ss->{last_error} // '', qr/\Q$secret\E/, 'last_error does not contain the secret key');
unlike($err, qr/\Q$secret\E/, 'nor does the error the client got');
is($ss->{backups_failed}, $before->{backups_failed} + 1, 'backups_failed went up by one');
reset_conf($node, 'aibackup.s3_secret_access_key');
unlike(slurp_file($node->logfile), qr/\Q$secret\E/, 'the server log does not contain the secret key');

# ------------------------------------------------------------------ progress
# a table of a few hundred MB of CSV that gzip can only halve, so the backup
# and the restore last long enough to be watched
my $t0 = time();
$node->safe_psql($db, <<'SQL');
CREATE TABLE big (id int, p text);
INSERT INTO big SELECT g, md5(random()::text) || md5(random()::text) || md5(random()::text)
  FROM generate_series(1, 2500000) g;
SQL
diag(sprintf('generated the big table in %.1f s (%s)', time() - $t0,
	$node->safe_psql($db, "SELECT pg_size_pretty(pg_table_size('big'))")));

# polls pg_stat_progress_aibackup for $command rows until the background
# session $h ends; returns the samples (hashes)
sub watch_progress
{
	my ($command, $h) = @_;
	my @samples;
	my $deadline = time() + 300;
	my $seen_none_since = time();
	while (time() < $deadline)
	{
		my $j = $node->safe_psql($db,
			"SELECT coalesce(json_agg(p), '[]') FROM (SELECT pid, datname, command, backup_id, phase, "
			  . "relid, table_name, tables_total, tables_done, bytes_raw, bytes_compressed, "
			  . "bytes_uploaded, started_at FROM pg_stat_progress_aibackup "
			  . "WHERE command = " . sql_quote($command) . ") p");
		my $rows = JSON::PP->new->allow_bignum->decode($j);
		if (@$rows)
		{
			# what pg_stat_aibackup says meanwhile
			$rows->[0]{db_state} = $node->safe_psql($db,
				"SELECT last_status || '/' || coalesce(last_backup_id, 'NULL') FROM pg_stat_aibackup "
				  . "WHERE datname = " . sql_quote($db));
			push @samples, $rows->[0];
			$seen_none_since = time();
		}
		else
		{
			# gone after it was seen, or never seen for long
			last if @samples && !$h->{run}->pumpable;
			last if !@samples && time() - $seen_none_since > 60;
			last if !$h->{run}->pumpable && time() - $seen_none_since > 2;
		}
		sleep 0.25;
	}
	return @samples;
}

# how many times consecutive samples (in phase $phase) grew in $field
sub growth
{
	my ($field, $phase, @s) = @_;
	my @p = grep { $_->{phase} eq $phase } @s;
	my ($grew, $shrank) = (0, 0);
	for my $i (1 .. $#p)
	{
		$grew++ if $p[$i]{$field} > $p[ $i - 1 ]{$field};
		$shrank++ if $p[$i]{$field} < $p[ $i - 1 ]{$field};
	}
	return ($grew, $shrank, scalar @p);
}

AibackupData::_next_second();
my $bg = bg_start($node, $db, "SELECT aibackup_backup_now(ARRAY['big']::regclass[], full => true)");
my @bs = watch_progress('backup', $bg);
my ($brc, $bigid, $berr) = bg_finish($bg);
is($brc, 0, 'the backup of the big table succeeds') or diag($berr);
diag(scalar(@bs) . ' progress samples during the backup; last: '
	  . (@bs ? JSON::PP->new->canonical->allow_bignum->encode($bs[-1]) : 'none'));
my @copying = grep { $_->{phase} eq 'copying' } @bs;
ok(@copying >= 2, 'pg_stat_progress_aibackup showed the backup in phase copying at least twice ('
	  . scalar(@copying) . ' reads)');
is_deeply([ grep { $_->{command} ne 'backup' || $_->{datname} ne $db } @bs ], [],
	'every read shows command backup in the right database');
is_deeply([ grep { ($_->{table_name} // '') ne 'public.big' } @copying ], [],
	'while copying, table_name is public.big');
is_deeply([ grep { ($_->{backup_id} // '') ne $bigid } @copying ], [],
	'and backup_id the id the backup returned');
is_deeply([ grep { !defined $_->{relid} || $_->{tables_total} != 1 } @copying ], [],
	'relid is set and tables_total is 1');
{
	my ($g, $sh) = growth('bytes_raw', 'copying', @bs);
	ok($g >= 1, "bytes_raw grew between reads ($g times)");
	is($sh, 0, 'and never went down');
	($g, $sh) = growth('bytes_uploaded', 'copying', @bs);
	ok($g >= 1, "bytes_uploaded grew between reads ($g times)");
	is($sh, 0, 'and never went down');
	ok(@copying && $copying[-1]{bytes_raw} > $copying[0]{bytes_raw}
		  && $copying[-1]{bytes_uploaded} > $copying[0]{bytes_uploaded},
		'bytes_raw and bytes_uploaded at the last read exceed those at the first');
	is_deeply([ grep { $_->{bytes_compressed} > $_->{bytes_raw} || $_->{bytes_uploaded} > $_->{bytes_compressed} } @copying ], [],
		'bytes_uploaded <= bytes_compressed <= bytes_raw at every read');
}
is($node->safe_psql($db, 'SELECT count(*) FROM pg_stat_progress_aibackup'), '0',
	'the progress row is gone when the backup has finished');
# each sample reads the progress view, then pg_stat_aibackup in a second
# query: the backup may finish in between, so the last sample may say ok
is_deeply([ grep { $_->{db_state} ne "running/$bigid" } @copying[0 .. $#copying - 1] ], [],
	'while it copies, pg_stat_aibackup shows last_status running with its backup id');
like(@copying ? $copying[-1]{db_state} : '', qr{^(running|ok)/\Q$bigid\E$},
	'and at the last sample running, or ok if it finished between the two reads');
{
	my $sb = stat_db($db);
	is("$sb->{last_status}/$sb->{last_backup_id}", "ok/$bigid", 'pg_stat_aibackup shows the big backup');
	my ($n, $rows) = list_sums($db, $bigid);
	is($rows, 2500000, 'which holds every row');
}

# restore it into a new table, watching
my $bgr = bg_start($node, $db, restore_sql('big', $bigid, 'big_r'));
my @rs = watch_progress('restore', $bgr);
my ($rrc, $rout, $rerr) = bg_finish($bgr);
is($rrc, 0, 'the restore of the big table succeeds') or diag($rerr);
diag(scalar(@rs) . ' progress samples during the restore; last: '
	  . (@rs ? JSON::PP->new->canonical->allow_bignum->encode($rs[-1]) : 'none'));
my @down = grep { $_->{phase} eq 'downloading' } @rs;
ok(@down >= 2, 'pg_stat_progress_aibackup showed the restore in phase downloading at least twice ('
	  . scalar(@down) . ' reads)');
is_deeply([ grep { $_->{command} ne 'restore' || ($_->{backup_id} // '') ne $bigid } @rs ], [],
	'with command restore and the backup id');
is_deeply([ grep { ($_->{table_name} // '') !~ /big_r/ } @down ], [],
	'and the target table as table_name');
{
	my ($g, $sh) = growth('bytes_raw', 'downloading', @rs);
	ok($g >= 1, "bytes_raw grew between reads ($g times)");
	($g, $sh) = growth('bytes_uploaded', 'downloading', @rs);
	ok($g >= 1, "bytes_uploaded (bytes downloaded, for a restore) grew between reads ($g times)");
	is($sh, 0, 'and never went down');
}
is($node->safe_psql($db, 'SELECT count(*) FROM big_r'), '2500000', 'the restored table has every row');

# a backup whose backend is terminated mid-copy: not left "running"
$before = stat_db($db);
AibackupData::_next_second();
my $bgk = bg_start($node, $db, "SELECT aibackup_backup_now(ARRAY['big']::regclass[], full => true)");
my $kpid = '';
ok(wait_until($node, $db,
	"SELECT EXISTS (SELECT 1 FROM pg_stat_progress_aibackup WHERE phase = 'copying' AND bytes_raw > 0)", 60),
	'a second backup of the big table is copying');
$kpid = $node->safe_psql($db, 'SELECT pid FROM pg_stat_progress_aibackup');
$node->safe_psql($db, "SELECT pg_terminate_backend($kpid)");
my ($krc, $kout, $kerr) = bg_finish($bgk);
isnt($krc, 0, 'terminating its backend ends it');
ok(wait_until($node, $db, "SELECT count(*) = 0 FROM pg_stat_progress_aibackup", 10),
	'its progress row goes away');
ok(wait_until($node, $db,
	"SELECT last_status <> 'running' FROM pg_stat_aibackup WHERE datname = " . sql_quote($db), 10),
	'pg_stat_aibackup does not go on showing it as running')
  or diag('pg_stat_aibackup: ' . JSON::PP->new->canonical->allow_bignum->encode(stat_db($db)));
is(stat_db($db)->{backups_failed}, $before->{backups_failed} + 1, 'it counts as a failed backup');
($ret, $out, $err) = backup_now($node, $db, "ARRAY['a']::regclass[]");
is($ret, 0, 'the next backup of the database runs') or diag($err);
is(stat_db($db)->{last_status}, 'ok', 'and shows as ok');

$node->safe_psql($db, 'DROP TABLE big, big_r');

# ------------------------------------------------------------------ restart
$before = stat_db($db);
$node->restart;
my $sr = stat_db($db);
ok($sr, 'after a clean restart the row is still there');
is_deeply({ map { $_ => $sr->{$_} } @counters, qw(last_backup_id last_status last_success_at last_started_at last_finished_at last_error stats_reset) },
	{ map { $_ => $before->{$_} } @counters, qw(last_backup_id last_status last_success_at last_started_at last_finished_at last_error stats_reset) },
	'with the same counters, last backup and stats_reset');
ok(!-e $node->data_dir . '/pg_stat/aibackup.stat', 'the saved statistics file was consumed at start');

# ------------------------------------------------------------------ reset
sleep 0.05;
$node->safe_psql($db, 'SELECT aibackup_stat_reset()');
my $sz = stat_db($db);
is_deeply({ map { $_ => $sz->{$_} } @counters }, { map { $_ => 0 } @counters },
	'after aibackup_stat_reset() every counter is 0');
ok($sz->{e_reset} > $before->{e_reset}, 'and stats_reset is newer');
ok($sz->{e_reset} <= time() + 1, 'and not in the future');

# ------------------------------------------------------------------ privileges
$node->safe_psql($db, <<'SQL');
CREATE ROLE plain LOGIN;
CREATE ROLE watcher LOGIN IN ROLE pg_read_all_stats;
CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
SQL
for my $v (qw(pg_stat_aibackup pg_stat_progress_aibackup pg_stat_aibackup_tables))
{
	($ret, $out, $err) = psql_err($node, $db, "SELECT count(*) FROM $v", extra_params => [ '-U', 'plain' ]);
	like($err, qr/permission denied/, "a role without pg_read_all_stats cannot read $v");
	($ret, $out, $err) = psql_err($node, $db, "SELECT count(*) FROM $v", extra_params => [ '-U', 'watcher' ]);
	is($ret, 0, "a member of pg_read_all_stats can read $v") or diag($err);
	($ret, $out, $err) = psql_err($node, $db, "SELECT count(*) FROM $v", extra_params => [ '-U', 'monitor' ]);
	is($ret, 0, "so can a member of pg_monitor") or diag($err);
}
for my $f (qw(aibackup_stat_databases aibackup_stat_progress aibackup_stat_tables))
{
	($ret, $out, $err) = psql_err($node, $db, "SELECT count(*) FROM $f()", extra_params => [ '-U', 'plain' ]);
	like($err, qr/permission denied/, "a plain role cannot call $f() directly either");
}
($ret, $out, $err) = psql_err($node, $db, 'SELECT aibackup_stat_reset()', extra_params => [ '-U', 'plain' ]);
like($err, qr/permission denied/, 'aibackup_stat_reset() is refused for a plain role');
($ret, $out, $err) = psql_err($node, $db, 'SELECT aibackup_stat_reset()', extra_params => [ '-U', 'watcher' ]);
like($err, qr/permission denied/, 'and for a member of pg_read_all_stats');
is(stat_db($db)->{stats_reset}, $sz->{stats_reset}, 'the refused resets reset nothing');

# ------------------------------------------------------------------ per-table history
$node->safe_psql('postgres', 'CREATE DATABASE partial');
$node->safe_psql('partial', <<'SQL');
CREATE EXTENSION aibackup;
CREATE TYPE mood AS ENUM ('happy', 'sad', 'gone');
CREATE TABLE good1 (id int, v text);
INSERT INTO good1 SELECT g, 'g' || g FROM generate_series(1, 100) g;
CREATE TABLE moody (id int, m mood);
INSERT INTO moody VALUES (1, 'happy'), (2, 'gone');
DELETE FROM pg_enum WHERE enumtypid = 'mood'::regtype AND enumlabel = 'gone';
SQL

# pg_stat_aibackup_tables of database partial as { "schema.table" => row }
sub stat_tables
{
	my ($d) = @_;
	my $j = $node->safe_psql($d, "SELECT coalesce(json_agg(t), '[]') FROM pg_stat_aibackup_tables t");
	return { map { ("$_->{schema_name}.$_->{table_name}" => $_) }
		  @{ JSON::PP->new->allow_bignum->decode($j) } };
}

is_deeply(stat_tables('partial'), {}, 'pg_stat_aibackup_tables is empty before the first backup');
my ($pid1, $pid2, $pid3);
($ret, $pid1, $err) = backup_now($node, 'partial');
is($ret, 0, 'a partial backup returns an id') or diag($err);
($ret, $pid2, $err) = backup_now($node, 'partial');
is($ret, 0, 'and a second one') or diag($err);
{
	my $sp = stat_db('partial', 'partial');
	is($sp->{last_status}, 'partial', 'pg_stat_aibackup: last_status partial');
	like($sp->{last_error} // '', qr/moody.*enum|enum.*moody/s, 'last_error names the table and the enum failure')
	  or diag('last_error: ' . ($sp->{last_error} // 'NULL'));
	is($sp->{tables_failed}, 2, 'tables_failed counts the failed table once per backup');
	is($sp->{tables_backed_up}, 2, 'tables_backed_up counts only the good one');
	is($sp->{backups_failed}, 0, 'a partial backup does not count as failed');
	is($sp->{backups_succeeded}, 2, 'but as completed (backups_succeeded)');
	ok(!defined $sp->{last_success_at},
		'but does not set last_success_at: not every table was backed up');
}
my $st = stat_tables('partial');
is_deeply([ sort keys %$st ], [ 'public.good1', 'public.moody' ], 'pg_stat_aibackup_tables lists both tables');
is($st->{'public.moody'}{last_status}, 'failed', 'the bad table: last_status failed');
is($st->{'public.moody'}{consecutive_failures}, 2, 'consecutive_failures 2');
like($st->{'public.moody'}{last_error} // '', qr/enum/, 'last_error says why');
is($st->{'public.moody'}{last_backup_id}, $pid2, 'last_backup_id the newest backup');
is($st->{'public.moody'}{last_ok_backup_id}, undef, 'no ok backup');
is($st->{'public.moody'}{rows}, undef, 'and so no rows');
is($st->{'public.good1'}{last_status}, 'ok', 'the healthy table: last_status ok');
is($st->{'public.good1'}{consecutive_failures}, 0, 'consecutive_failures 0');
is($st->{'public.good1'}{last_error}, undef, 'no error');
is($st->{'public.good1'}{last_ok_backup_id}, $pid2, 'last_ok_backup_id the newest backup');
{
	my $lt = $node->safe_psql('partial',
		"SELECT rows || '/' || raw_bytes || '/' || compressed_bytes FROM aibackup_list_tables("
		  . sql_quote($pid2) . ") WHERE table_name = 'good1'");
	is(join('/', @{ $st->{'public.good1'} }{qw(rows raw_bytes compressed_bytes)}), $lt,
		'rows, raw and compressed bytes as aibackup_list_tables reports them');
}

# fix the table: the row with the lost label goes
$node->safe_psql('partial', 'DELETE FROM moody WHERE id = 2');
($ret, $pid3, $err) = backup_now($node, 'partial');
is($ret, 0, 'after fixing the table, a backup succeeds') or diag($err);
$st = stat_tables('partial');
is($st->{'public.moody'}{last_status}, 'ok', 'the fixed table: last_status ok');
is($st->{'public.moody'}{consecutive_failures}, 0, 'consecutive_failures back to 0');
is($st->{'public.moody'}{last_ok_backup_id}, $pid3, 'last_ok_backup_id the new backup');
is($st->{'public.moody'}{last_error}, undef, 'no error');
is($st->{'public.moody'}{rows}, 1, 'its one row');
{
	my $sp = stat_db('partial', 'partial');
	is("$sp->{last_status}/" . ($sp->{last_error} // 'NULL'), 'ok/NULL',
		'pg_stat_aibackup: last_status ok, last_error NULL');
}

# ------------------------------------------------------------------ dropped databases
# a database dropped and created again under its name has one row
$node->safe_psql('postgres', 'CREATE DATABASE dup');
$node->safe_psql('dup', 'CREATE EXTENSION aibackup; CREATE TABLE t (id int)');
($ret, $out, $err) = backup_now($node, 'dup');
is($ret, 0, 'a backup of database dup') or diag($err);
$node->safe_psql('postgres', 'DROP DATABASE dup');
$node->safe_psql('postgres', 'CREATE DATABASE dup');
$node->safe_psql('dup', 'CREATE EXTENSION aibackup; CREATE TABLE t (id int)');
($ret, $out, $err) = backup_now($node, 'dup');
is($ret, 0, 'after DROP DATABASE and CREATE DATABASE dup, another backup of it') or diag($err);
is($node->safe_psql($db, "SELECT count(*) FROM pg_stat_aibackup WHERE datname = 'dup'"), '1',
	'pg_stat_aibackup has one row for dup (not one per database OID ever backed up)');
$node->safe_psql('postgres', 'DROP DATABASE dup');

# ------------------------------------------------------------------ postgres_exporter queries
my $qfile = "$FindBin::Bin/../scripts/postgres_exporter_queries.yaml";
ok(-f $qfile, 'scripts/postgres_exporter_queries.yaml exists');
my ($pyok, $pyjson, $pyerr) = (0, '', '');
{
	my @cmd = ('python3', '-c',
		'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', $qfile);
	$pyok = IPC::Run::run(\@cmd, '<', '/dev/null', '>', \$pyjson, '2>', \$pyerr);
}
SKIP:
{
	skip "python3 with yaml is not available: $pyerr", 1
	  if !$pyok && $pyerr =~ /No module named|not found|No such file/;
	ok($pyok, 'the queries file is valid YAML') or diag($pyerr);
	my $qs = $pyok ? decode_json($pyjson) : {};
	ok(keys %$qs >= 3, 'it defines ' . scalar(keys %$qs) . ' metric namespaces');
	for my $ns (sort keys %$qs)
	{
		my $q = $qs->{$ns};
		my @metrics = map { keys %$_ } @{ $q->{metrics} // [] };
		my %usage = map { %$_ } @{ $q->{metrics} // [] };
		is_deeply([ grep { ($usage{$_}{usage} // '') !~ /^(LABEL|GAUGE|COUNTER|DISCARD)$/
			  || !($usage{$_}{description} // '') } @metrics ], [],
			"$ns: every metric has a usage and a description");
		ok($q->{master}, "$ns: master: true");
		(my $sql = $q->{query} // '') =~ s/;\s*$//;
		# as the exporter runs it: a member of pg_monitor, in the database
		# with the extension
		($ret, $out, $err) = psql_err($node, $db, $sql, extra_params => [ '-U', 'monitor' ]);
		is($ret, 0, "$ns: the query runs as a member of pg_monitor") or diag($err);
		my $cols = $node->safe_psql($db,
			"CREATE TEMP VIEW q AS $sql; "
			  . "SELECT string_agg(attname, ',' ORDER BY attname) FROM pg_attribute "
			  . "WHERE attrelid = 'q'::regclass AND attnum > 0");
		is($cols, join(',', sort @metrics), "$ns: its columns are exactly the metrics listed");
	}
	if ($qs->{aibackup})
	{
		my $q = $qs->{aibackup}{query};
		my $r = $node->safe_psql($db,
			"SELECT backups_succeeded_total || '/' || (last_success_age_seconds < 3600) || '/' || running "
			  . "FROM ($q) x WHERE datname = 'partial'");
		is($r, '3/true/0', 'aibackup: the values for database partial make sense');
		is($node->safe_psql($db, "SELECT count(*) = count(DISTINCT datname) FROM ($q) x"), 't',
			'aibackup: one series per datname, even with two rows for dup');
	}
	if ($qs->{aibackup_tables})
	{
		my $q = $qs->{aibackup_tables}{query};
		is($node->safe_psql('partial', "SELECT consecutive_failures_max || '/' || known FROM ($q) x"),
			'0/2', 'aibackup_tables: the values for database partial make sense');
	}
}

# ------------------------------------------------------------------ scheduler rows
$node->safe_psql('postgres', 'CREATE DATABASE x');
$node->safe_psql('x', 'CREATE EXTENSION aibackup; CREATE TABLE t (id int); INSERT INTO t VALUES (1)');
set_conf($node, 'aibackup.enabled' => 'on', 'aibackup.interval' => '1h', 'aibackup.databases' => 'x');
ok(wait_until($node, $db,
	"SELECT EXISTS (SELECT 1 FROM pg_stat_aibackup WHERE datname = 'x' AND next_run_at IS NOT NULL)", 15),
	'with the scheduler on, pg_stat_aibackup gets a row for database x with next_run_at');
is($node->safe_psql($db,
	"SELECT next_run_at > now() AND next_run_at <= now() + interval '1 hour' "
	  . "AND extract(epoch FROM next_run_at)::numeric % 3600 = 0 "
	  . "FROM pg_stat_aibackup WHERE datname = 'x'"), 't',
	'next_run_at is the next full hour') or diag($node->safe_psql($db, 'SELECT datname, next_run_at, now() FROM pg_stat_aibackup'));
is($node->safe_psql($db, "SELECT count(*) FROM pg_stat_aibackup WHERE datname <> 'x' AND next_run_at IS NOT NULL"),
	'0', 'databases the scheduler does not serve have no next_run_at');
# x has never been backed up: the scheduler catches it up at once, and that
# scheduled backup is counted like a manual one
ok(wait_until($node, $db,
	"SELECT EXISTS (SELECT 1 FROM pg_stat_aibackup WHERE datname = 'x' AND last_status = 'ok' AND backups_succeeded = 1)", 60),
	'the scheduled catch-up backup of x shows in pg_stat_aibackup as ok');
my $sx = stat_db('x');
is($node->safe_psql('x', 'SELECT backup_id FROM aibackup_list_backups() LIMIT 1'), $sx->{last_backup_id},
	'with its backup id');

# ------------------------------------------------------------------ dropped databases go
# the launcher frees the row (and the table history) of a database dropped
# since: aibackup.max_databases counts live databases only
$node->safe_psql('postgres', 'CREATE DATABASE gone');
$node->safe_psql('gone', 'CREATE EXTENSION aibackup; CREATE TABLE t (id int)');
($ret, $out, $err) = backup_now($node, 'gone');
is($ret, 0, 'a backup of database gone') or diag($err);
my $gone_oid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'gone'");
my $gone_file = $node->data_dir . "/pg_stat/aibackup_tables.$gone_oid";
ok(-f $gone_file, 'its table history is kept on disk');
is($node->safe_psql('gone', 'SELECT count(*) FROM pg_stat_aibackup_tables'), '1',
	'pg_stat_aibackup_tables shows its one table');
$node->safe_psql('postgres', 'DROP DATABASE gone');
# a change of aibackup.databases makes the launcher read pg_database again
set_conf($node, 'aibackup.databases' => 'x, postgres');
ok(wait_until($node, $db,
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_aibackup WHERE datname = 'gone')", 60),
	'after DROP DATABASE the launcher frees its row in pg_stat_aibackup');
ok(!-e $gone_file, 'and removes its table history');
is($node->safe_psql($db, "SELECT count(*) FROM pg_stat_aibackup WHERE datname = 'x'"), '1',
	'the row of a live database stays');

$node->stop;
done_testing();
