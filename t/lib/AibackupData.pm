# t/lib/AibackupData.pm — helpers for the backup/restore suites: table
# checksums, settings changes, backups with distinct ids, S3 object keys and
# downloads (through the independent AWS CLI), manifests, and psql sessions
# running in the background.
package AibackupData;

use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use JSON::PP;
use Digest::SHA;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;

our @EXPORT = qw(checksum fast_checksum set_conf reset_conf backup_now
  pct_encode obj_key s3_get s3_put s3_rm s3_head manifest put_manifest
  bg_start bg_finish wait_until wait_no_backup col_types psql_err sql_quote
  restore_sql);

# A checksum of a relation's rows: "count:md5", the md5 taken over the rows'
# text output sorted, so it needs no key and works for any table.  $cols
# (optional) is a SQL list of expressions to compare instead of whole rows
# (used when the column order or set differs between two tables).
sub checksum
{
	my ($node, $db, $rel, $cols) = @_;
	my $row = defined $cols ? "ROW($cols)::text" : 't::text';
	return $node->safe_psql($db,
		"SELECT count(*) || ':' || coalesce(md5(string_agg(r, E'\\n' ORDER BY r COLLATE \"C\")), '-') "
		  . "FROM (SELECT $row AS r FROM $rel t) s");
}

# the same for big tables: md5 over each row's md5, ordered by a key
sub fast_checksum
{
	my ($node, $db, $rel, $key) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) || ':' || coalesce(md5(string_agg(md5(t::text), '' ORDER BY $key)), '-') "
		  . "FROM $rel t");
}

sub sql_quote
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# SQL for a restore call; undef arguments become NULL
sub restore_sql
{
	my ($src, $id, $target) = @_;
	return sprintf('SELECT aibackup_restore_table(%s, %s, %s)',
		sql_quote($src),
		defined $id ? sql_quote($id) : 'NULL',
		defined $target ? sql_quote($target) : 'NULL');
}

# set_conf($node, name => value, ...): ALTER SYSTEM, reload, and wait until a
# new session sees the values (secrets show as ******** and are not waited for)
# Secrets go through postgresql.conf instead (an ALTER SYSTEM statement
# would itself be logged, log_statement = all) and reset_conf puts the test
# server's keys back.
my %secret_env = (
	'aibackup.s3_secret_access_key' => 'S3_SECRET_KEY',
	'aibackup.s3_access_key_id' => 'S3_ACCESS_KEY');

sub set_conf
{
	my ($node, %kv) = @_;
	for my $k (sort keys %kv)
	{
		if ($secret_env{$k})
		{
			$node->append_conf('postgresql.conf', "$k = " . sql_quote($kv{$k}) . "\n");
			next;
		}
		$node->safe_psql('postgres',
			"ALTER SYSTEM SET $k = " . sql_quote($kv{$k}));
	}
	_reload_wait($node, %kv);
}

sub reset_conf
{
	my ($node, @names) = @_;
	for my $k (@names)
	{
		if ($secret_env{$k})
		{
			$node->append_conf('postgresql.conf',
				"$k = " . sql_quote($ENV{ $secret_env{$k} }) . "\n");
			next;
		}
		$node->safe_psql('postgres', "ALTER SYSTEM RESET $k");
	}
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	# the file values (or defaults) come back; give the postmaster a moment
	sleep 1.2;
}

sub _reload_wait
{
	my ($node, %kv) = @_;
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	my $deadline = time() + 20;
	for my $k (sort keys %kv)
	{
		next if $k =~ /key|secret|token/;
		while (time() < $deadline)
		{
			my $v = $node->safe_psql('postgres', "SHOW $k");
			last if $v eq $kv{$k};
			sleep 0.1;
		}
	}
	sleep 0.3;
}

# backup ids are UTC seconds: never start two backups within one second
my $last_backup_second = 0;

sub _next_second
{
	sleep 0.05 while int(time()) <= $last_backup_second;
	$last_backup_second = int(time());
}

# backup_now($node, $db, [$tables_sql]) -> (ret, backup_id, stderr)
# $tables_sql: SQL of a regclass[] (e.g. "ARRAY['a','b']::regclass[]")
sub backup_now
{
	my ($node, $db, $tables, %o) = @_;
	_next_second();
	my $sql = defined $tables
	  ? "SELECT aibackup_backup_now($tables)"
	  : 'SELECT aibackup_backup_now()';
	$sql = "$o{pre}; $sql" if $o{pre};
	my $timed_out;
	my ($ret, $out, $err) = $node->psql($db, $sql,
		timeout => $o{timeout} // 600, timed_out => \$timed_out,
		$o{extra_params} ? (extra_params => $o{extra_params}) : ());
	if ($timed_out)
	{
		$ret = -1;
		$err = "(psql timed out after " . ($o{timeout} // 600) . " s) " . ($err // '');
	}
	$last_backup_second = int(time()) if $ret != 0;
	return ($ret, $out, $err);
}

# $node->psql with a timeout that does not die: (ret, stdout, stderr), ret
# -1 and stderr saying so on a timeout
sub psql_err
{
	my ($node, $db, $sql, %o) = @_;
	my $timed_out;
	my $t = delete $o{timeout} // 300;
	my ($ret, $out, $err) = $node->psql($db, $sql, %o, timeout => $t, timed_out => \$timed_out);
	if ($timed_out)
	{
		$ret = -1;
		$err = "(psql timed out after $t s) " . ($err // '');
	}
	return ($ret, $out // '', $err // '');
}

# no backup running in the cluster's database $db (a backup whose client
# went away may still run in its backend)
sub wait_no_backup
{
	my ($node, $db, $secs) = @_;
	return wait_until($node, $db,
		"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE '%aibackup_backup_now(%' "
		  . "AND query NOT LIKE '%pg_stat_activity%' AND state = 'active' AND pid <> pg_backend_pid())",
		$secs // 120);
}

# every byte outside [A-Za-z0-9_-] becomes %XX
sub pct_encode
{
	my ($s) = @_;
	utf8::encode($s) if utf8::is_utf8($s);
	$s =~ s/([^A-Za-z0-9_\-])/sprintf('%%%02X', ord($1))/ge;
	return $s;
}

# the object key of a table in a backup (design §3)
sub obj_key
{
	my ($prefix, $db, $id, $schema, $table) = @_;
	return "$prefix/$db/$id/" . pct_encode($schema) . '.' . pct_encode($table) . '.csv.gz';
}

# download s3://bucket/key to $file; returns aws exit code
sub s3_get
{
	my ($key, $file) = @_;
	unlink $file;
	my ($ret, $out, $err) = aws_cli('s3', 'cp', '--quiet', "s3://$ENV{S3_BUCKET}/$key", $file);
	diag("aws s3 cp $key: $err") if $ret;
	return $ret;
}

sub s3_put
{
	my ($file, $key) = @_;
	my ($ret, $out, $err) = aws_cli('s3', 'cp', '--quiet', $file, "s3://$ENV{S3_BUCKET}/$key");
	diag("aws s3 cp to $key: $err") if $ret;
	return $ret;
}

sub s3_rm
{
	my ($key) = @_;
	my ($ret, $out, $err) = aws_cli('s3', 'rm', '--quiet', "s3://$ENV{S3_BUCKET}/$key");
	diag("aws s3 rm $key: $err") if $ret;
	return $ret;
}

# head-object: returns the decoded JSON or undef when the object is absent
sub s3_head
{
	my ($key) = @_;
	my ($ret, $out, $err) = aws_cli('s3api', 'head-object',
		'--bucket', $ENV{S3_BUCKET}, '--key', $key);
	return undef if $ret;
	return decode_json($out);
}

# manifest($prefix, $db, $id) -> (decoded manifest or undef, local file)
sub manifest
{
	my ($prefix, $db, $id) = @_;
	my $file = "$ENV{AIBACKUP_TEST_WORK}/manifest-$$-$db-$id.json";
	return (undef, $file) if s3_get("$prefix/$db/$id/manifest.json", $file);
	my $json = slurp_file($file);
	my $m = eval { JSON::PP->new->allow_bignum->decode($json) };
	diag("manifest.json does not parse: $@") unless $m;
	return ($m, $file);
}

sub put_manifest
{
	my ($prefix, $db, $id, $m) = @_;
	my $file = "$ENV{AIBACKUP_TEST_WORK}/manifest-put-$$.json";
	open my $fh, '>', $file or die "$file: $!";
	print $fh JSON::PP->new->canonical->encode($m);
	close $fh;
	return s3_put($file, "$prefix/$db/$id/manifest.json");
}

# a psql running $sql in the background; returns a handle.  The SQL is
# read from a file and the output goes to files, so the child runs on its
# own without this process pumping its pipes.
my $bg_count = 0;

sub bg_start
{
	my ($node, $db, $sql, %o) = @_;
	my $base = "$ENV{AIBACKUP_TEST_WORK}/bg-$$-" . $bg_count++;
	open my $fh, '>', "$base.sql" or die "$base.sql: $!";
	print $fh $sql;
	close $fh;
	my $h = { base => $base };
	my @cmd = ('psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d',
		$node->connstr($db), @{ $o{extra} // [] }, '-f', "$base.sql");
	$h->{run} = IPC::Run::start(\@cmd, '<', '/dev/null', '>', "$base.out",
		'2>', "$base.err", IPC::Run::timeout($o{timeout} // 600));
	return $h;
}

# waits for the background psql; returns (exit code, stdout, stderr)
sub bg_finish
{
	my ($h) = @_;
	eval { $h->{run}->finish; };
	my $rc = $@ ? -1 : ($h->{run}->result(0) // -1);
	diag("background psql: $@") if $@;
	my $out = -e "$h->{base}.out" ? slurp_file("$h->{base}.out") : '';
	my $err = -e "$h->{base}.err" ? slurp_file("$h->{base}.err") : '';
	chomp $out;
	return ($rc, $out, $err);
}

# wait_until($node, $db, $sql, $seconds): polls until $sql returns 't'
sub wait_until
{
	my ($node, $db, $sql, $secs) = @_;
	my $deadline = time() + ($secs // 30);
	while (time() < $deadline)
	{
		return 1 if $node->safe_psql($db, $sql) eq 't';
		sleep 0.1;
	}
	return 0;
}

# "name type, name type" of a relation's live columns in order
# (col_types($node, $db, $rel, 1) adds "not null")
sub col_types
{
	my ($node, $db, $rel) = @_;
	return $node->safe_psql($db,
		"SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) "
		  . ($_[3] ? "|| CASE WHEN attnotnull THEN ' not null' ELSE '' END" : '')
		  . ", ', ' ORDER BY attnum) "
		  . "FROM pg_attribute WHERE attrelid = " . sql_quote($rel) . "::regclass "
		  . "AND attnum > 0 AND NOT attisdropped");
}

1;
