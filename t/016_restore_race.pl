# Restore racing DDL while it waits for its lock.  A restore resolves its
# target by name and then waits for an ACCESS EXCLUSIVE lock; meanwhile the
# table can be renamed away, replaced or dropped.  As TRUNCATE does
# (RangeVarGetRelidExtended), the restore must act on what the name means
# once it holds the lock: the table renamed away is never touched, a
# replacement is restored into (or refused, with a clear error, when its
# columns or privileges do not fit), a dropped table is recreated or the
# restore fails cleanly, and nothing crashes.  Also: a source table renamed
# away and replaced by one the caller owns does not grant read rights on
# the old table's backup.
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

my $prefix = "t016-$$";
my $node = new_cluster('restore_race', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $db = 'postgres';
my ($ret, $out, $err);

$node->safe_psql($db, q{
	CREATE EXTENSION aibackup;
	CREATE ROLE r1 LOGIN;
	CREATE SCHEMA r AUTHORIZATION r1;
	GRANT EXECUTE ON FUNCTION aibackup_restore_table(text, text, text, boolean, boolean, boolean) TO r1;
});

# A fresh public.t (id int primary key, v text) with 100 rows, backed up,
# then changed so that the live rows differ from the backup's ($ddl: another
# CREATE TABLE t with the same columns).  Returns
# (backup id, checksum of the backup's rows, checksum of the live rows, oid).
sub setup_t
{
	my ($tag, $grants, $ddl) = @_;
	$ddl //= 'CREATE TABLE t (id int PRIMARY KEY, v text)';
	$node->safe_psql($db, qq{
		DROP TABLE IF EXISTS t, t_old;
		$ddl;
		INSERT INTO t SELECT g, 'backup ' || g FROM generate_series(1, 100) g;
	});
	$node->safe_psql($db, $grants) if $grants;
	my ($r, $id, $e) = backup_now($node, $db, "ARRAY['public.t']::regclass[]");
	is($r, 0, "$tag: a backup of public.t (setup)") or diag($e);
	my $cs_backup = checksum($node, $db, 't');
	$node->safe_psql($db, "UPDATE t SET v = 'live ' || id");
	my $cs_live = checksum($node, $db, 't');
	my $oid = $node->safe_psql($db, "SELECT 'public.t'::regclass::oid");
	return ($id, $cs_backup, $cs_live, $oid);
}

# a restore in the background, in its own session named $app; verbose
# errors, so that the SQLSTATE is in stderr
sub start_restore
{
	my ($app, $sql, @extra) = @_;
	return bg_start($node, $db,
		"\\set VERBOSITY verbose\nSET application_name = '$app';\n$sql;\n",
		timeout => 180, extra => [@extra]);
}

# until the session $app waits for a lock on relation $oid (not granted)
sub wait_for_lock_wait
{
	my ($app, $oid) = @_;
	return wait_until($node, $db, <<"SQL", 60);
SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE a.application_name = '$app' AND a.wait_event_type = 'Lock'
                  AND l.locktype = 'relation' AND l.relation = $oid AND NOT l.granted)
SQL
}

sub rows_of
{
	my ($rel, $cols) = @_;
	return $node->safe_psql($db, "SELECT string_agg($cols, ',' ORDER BY id) FROM $rel");
}

# ------------------------------------------------------------------ renamed away and replaced
{
	my ($id, $cs_backup, $cs_live, $oid) = setup_t('rename');
	my $a = $node->background_psql($db);
	$a->query_safe('BEGIN; LOCK TABLE t IN ACCESS SHARE MODE;');
	my $b = start_restore('race_rename', restore_sql('public.t', $id));
	ok(wait_for_lock_wait('race_rename', $oid), 'rename: the restore waits for its lock on public.t');
	$a->query_safe(q{
		ALTER TABLE t RENAME TO t_old;
		CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t VALUES (-1, 'new');
		COMMIT;
	});
	$a->quit;
	my ($r, $o, $e) = bg_finish($b);
	is($r, 0, 'a restore whose table was renamed away and replaced while it waited succeeds') or diag($e);
	is($o, '100', 'it reports the backup\'s 100 rows') or diag($e);
	is(checksum($node, $db, 't_old'), $cs_live,
		'the table renamed away keeps exactly its own 100 rows (neither appended to nor emptied)');
	is(checksum($node, $db, 't'), $cs_backup,
		'the table now named public.t holds exactly the backup\'s 100 rows (its own row is gone)');
	is($node->safe_psql($db, "SELECT 'public.t'::regclass::oid <> $oid"), 't',
		'and public.t is the replacement table, not the one renamed away');
}

# ------------------------------------------------------------------ the same without a key
# (without a primary key nothing stops rows being appended to the wrong table)
{
	my ($id, $cs_backup, $cs_live, $oid) = setup_t('rename, no key', undef, 'CREATE TABLE t (id int, v text)');
	my $a = $node->background_psql($db);
	$a->query_safe('BEGIN; LOCK TABLE t IN ACCESS SHARE MODE;');
	my $b = start_restore('race_rename_nokey', restore_sql('public.t', $id));
	ok(wait_for_lock_wait('race_rename_nokey', $oid), 'rename, no key: the restore waits for its lock on public.t');
	$a->query_safe(q{
		ALTER TABLE t RENAME TO t_old;
		CREATE TABLE t (id int, v text);
		INSERT INTO t VALUES (-1, 'new');
		COMMIT;
	});
	$a->quit;
	my ($r, $o, $e) = bg_finish($b);
	is($r, 0, 'rename, no key: the restore succeeds') or diag($e);
	is(checksum($node, $db, 't_old'), $cs_live,
		'rename, no key: the table renamed away keeps exactly its own 100 rows (neither appended to nor emptied)');
	is(checksum($node, $db, 't'), $cs_backup,
		'rename, no key: the table now named public.t holds exactly the backup\'s 100 rows');
}

# ------------------------------------------------------------------ replaced by different columns
{
	my ($id, $cs_backup, $cs_live, $oid) = setup_t('columns');
	my $a = $node->background_psql($db);
	$a->query_safe('BEGIN; LOCK TABLE t IN ACCESS SHARE MODE;');
	my $b = start_restore('race_columns', restore_sql('public.t', $id));
	ok(wait_for_lock_wait('race_columns', $oid), 'columns: the restore waits for its lock on public.t');
	$a->query_safe(q{
		ALTER TABLE t RENAME TO t_old;
		CREATE TABLE t (id int PRIMARY KEY, w int);
		INSERT INTO t VALUES (-1, 7);
		COMMIT;
	});
	$a->quit;
	my ($r, $o, $e) = bg_finish($b);
	isnt($r, 0, 'a restore whose table was replaced by one with other columns while it waited fails');
	like($e, qr/column "?[vw]"?/, 'with an error naming the column that does not match') or diag($e);
	is(checksum($node, $db, 't_old'), $cs_live, 'the table renamed away is unchanged');
	is(rows_of('t', "id || ':' || w"), '-1:7', 'the replacement table is unchanged');
}

# ------------------------------------------------------------------ dropped
{
	my ($id, $cs_backup, $cs_live, $oid) = setup_t('drop');
	my $a = $node->background_psql($db);
	$a->query_safe('BEGIN; LOCK TABLE t IN ACCESS SHARE MODE;');
	my $b = start_restore('race_drop', restore_sql('public.t', $id));
	ok(wait_for_lock_wait('race_drop', $oid), 'drop: the restore waits for its lock on public.t');
	$a->query_safe('DROP TABLE t; COMMIT;');
	$a->quit;
	my ($r, $o, $e) = bg_finish($b);
	my ($up_ret, $up_out) = $node->psql($db, 'SELECT 1');
	is($up_out, '1', 'the server is still up after a restore whose table was dropped while it waited');
	if ($r == 0)
	{
		is(checksum($node, $db, 't'), $cs_backup,
			'a restore whose table was dropped while it waited creates public.t afresh with the backup\'s 100 rows');
	}
	else
	{
		unlike($e, qr/XX000|cache lookup failed|could not open relation|terminat|server closed/,
			'a restore whose table was dropped while it waited fails with a clean error (no internal error)')
		  or diag($e);
		is($node->safe_psql($db, "SELECT to_regclass('public.t') IS NULL"), 't',
			'and leaves no table named public.t');
	}
	unlike(slurp_file($node->logfile), qr/was terminated by signal/,
		'no backend crashed in the restore whose table was dropped');
}

# ------------------------------------------------------------------ privileges on the locked table
{
	my ($id, $cs_backup, $cs_live, $oid) = setup_t('privileges',
		'GRANT SELECT, INSERT, TRUNCATE ON t TO r1');
	my $a = $node->background_psql($db);
	$a->query_safe('BEGIN; LOCK TABLE t IN ACCESS SHARE MODE;');
	my $b = start_restore('race_priv', restore_sql('public.t', $id), '-U', 'r1');
	ok(wait_for_lock_wait('race_priv', $oid), 'privileges: r1\'s restore waits for its lock on public.t');
	$a->query_safe(q{
		ALTER TABLE t RENAME TO t_old;
		CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t VALUES (-1, 'new');
		COMMIT;
	});
	$a->quit;
	my ($r, $o, $e) = bg_finish($b);
	isnt($r, 0, 'a restore by a role without rights on the table that took the name while it waited fails');
	like($e, qr/permission denied/, 'with "permission denied"') or diag($e);
	is(checksum($node, $db, 't_old'), $cs_live, 'the table renamed away (where r1 has rights) is unchanged');
	is(rows_of('t', "id || ':' || v"), '-1:new', 'the table that took the name is unchanged');
}

# ------------------------------------------------------------------ a source renamed away
{
	$node->safe_psql($db, q{
		CREATE TABLE s (id int, payload text);
		INSERT INTO s SELECT g, 'secret ' || g FROM generate_series(1, 100) g;
	});
	my ($r, $id, $e) = backup_now($node, $db, "ARRAY['public.s']::regclass[]");
	is($r, 0, 'source: a backup of public.s, which r1 may not read (setup)') or diag($e);
	$node->safe_psql($db, q{
		ALTER TABLE s RENAME TO s_old;
		CREATE TABLE s (id int, payload text);
		ALTER TABLE s OWNER TO r1;
	});
	($ret, $out, $err) = $node->psql($db, restore_sql('public.s', $id, 'r.s_copy'),
		extra_params => [ '-U', 'r1' ]);
	isnt($ret, 0,
		'r1 cannot restore the backup of a table renamed away by owning the new table of that name');
	like($err, qr/permission denied/, 'with "permission denied"') or diag($err);
	is($node->safe_psql($db, "SELECT to_regclass('r.s_copy') IS NULL"), 't', 'and no table was created');
}

# ------------------------------------------------------------------ no crash
unlike(slurp_file($node->logfile), qr/was terminated by signal/, 'no server process crashed during the suite');

$node->stop;
done_testing();
