# Scale and limits: a database with 3,000 tables backed up whole, then 100 of
# them by name (not on Debian's 15: heavy_here); a table with the maximum 1,600 columns, and names at the 63-byte limit (multibyte
# UTF-8, identifier truncation at a character boundary, quotes, spaces and
# dots) in a database whose own name is 63 bytes: backup, listing, object
# keys and contents, restores in place and into other names.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use AibackupTest;
use AibackupData;

# all names are byte strings (UTF-8), as psql reads and writes them
my $prefix = "t017-$$";
my $node = new_cluster('scale', prefix => $prefix, conf => "aibackup.enabled = off\n");
my $work = "$ENV{AIBACKUP_TEST_WORK}/t017-$$";
mkdir $work;
my ($ret, $out, $err);
my $t_start = time();

# a quoted SQL identifier (always quoted, inner double quotes doubled)
sub qi
{
	my ($s) = @_;
	$s =~ s/"/""/g;
	return qq("$s");
}

sub qname { return qi($_[0]) . '.' . qi($_[1]); }

# no server process crashed so far
sub no_crash
{
	my ($what) = @_;
	unlike(slurp_file($node->logfile), qr/was terminated by signal/, "no server process crashed ($what)");
}

# ================================================================== 3,000 tables
SKIP:
{
	skip('3,000 tables: run on 15-assert, 17 and 18 (AibackupTest::heavy_here)', 1)
	  unless heavy_here($node);
	my $db = 'many';
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION aibackup');
	my $t0 = time();
	$node->safe_psql($db, <<'SQL');
DO $$
BEGIN
  FOR i IN 1..3000 LOOP
    EXECUTE format('CREATE TABLE %I (a int)', 't' || lpad(i::text, 4, '0'));
    IF i % 100 = 0 THEN
      EXECUTE format('INSERT INTO %I SELECT generate_series(1, %s)', 't' || lpad(i::text, 4, '0'), i / 100);
    END IF;
    IF i % 500 = 0 THEN COMMIT; END IF;
  END LOOP;
END $$;
SQL
	diag(sprintf('3,000 tables created in %.1f s', time() - $t0));
	is($node->safe_psql($db, "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"),
		'3000', 'a database with 3,000 tables (setup)');
	my $total_rows = 0;
	$total_rows += $_ for 1 .. 30;

	# The first backup takes all 3,000 tables; the second, a hundred of
	# them named in the call (the newest backup then holds fewer tables than
	# the one before, and listing, counting and restoring must keep them
	# apart).  A second full run would prove the scale again at 100 s a
	# flavour.
	my @ids;
	my %wanted = (1 => [ 3000, $total_rows ], 2 => [ 100, 30 ]);
	for my $n (1, 2)
	{
		my $t1 = time();
		my ($r, $id, $e) = $n == 1 ? backup_now($node, $db)
		  : backup_now($node, $db, "(SELECT array_agg(c.oid::regclass) FROM pg_class c WHERE c.relname BETWEEN 't2901' AND 't3000' AND c.relnamespace = 'public'::regnamespace)");
		my ($ntables, $nrows) = @{ $wanted{$n} };
		diag(sprintf('backup %d (%d tables of 3,000) took %.1f s', $n, $ntables, time() - $t1));
		is($r, 0, "backup $n ($ntables tables of a database of 3,000) succeeds") or diag($e);
		$id //= '';
		push @ids, $id;
		is($node->safe_psql($db, "SELECT status FROM aibackup_list_backups() WHERE backup_id = '$id'"), 'ok',
			"backup $n has status ok");
		is($node->safe_psql($db, "SELECT count(*) || ' tables, ' || coalesce(sum(rows), 0) || ' rows' FROM aibackup_list_tables('$id')"),
			"$ntables tables, $nrows rows", "aibackup_list_tables() lists backup $n\'s $ntables tables and their rows");
		my $range = $n == 1 ? '' : "AND c.relname BETWEEN 't2901' AND 't3000'";
		is($node->safe_psql($db, <<"SQL"), '0', "backup $n lists exactly the names in pg_class");
SELECT count(*) FROM (SELECT schema_name, table_name FROM aibackup_list_tables('$id')) l
  FULL JOIN (SELECT n.nspname::text AS s, c.relname::text AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r' AND n.nspname = 'public' $range) p ON p.s = l.schema_name AND p.r = l.table_name
 WHERE l.table_name IS NULL OR p.r IS NULL
SQL
	}
	is($node->safe_psql($db, 'SELECT string_agg(backup_id, \',\' ORDER BY backup_id DESC) FROM aibackup_list_backups()'),
		"$ids[1],$ids[0]", 'aibackup_list_backups() shows both backups');
	is($node->safe_psql($db, "SELECT string_agg(tables::text, ',' ORDER BY backup_id) FROM aibackup_list_backups()"), '3000,100',
		'and counts 3,000 tables in the first, 100 in the newest');

	my $cs = checksum($node, $db, 't2500');
	$node->safe_psql($db, 'DELETE FROM t2500 WHERE a > 5; INSERT INTO t2500 VALUES (-1)');
	($ret, $out, $err) = psql_err($node, $db, restore_sql('public.t2500', $ids[0]));
	is($out, '25', 'a table of the 3,000 is restored in place') or diag($err);
	is(checksum($node, $db, 't2500'), $cs, 'with its rows as backed up');
	($ret, $out, $err) = psql_err($node, $db, restore_sql('t3000', $ids[1], 'public.t3000_copy'));
	is($out, '30', 'a table of the 3,000 is restored into a new table') or diag($err);
	is(checksum($node, $db, 't3000_copy'), checksum($node, $db, 't3000'), 'with the same rows');
	no_crash('3,000 tables');
	diag(sprintf('3,000 tables: %.1f s', time() - $t0));
}

# ================================================================== 1,600 columns
{
	my $db = 'wide';
	my $t0 = time();
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION aibackup');
	# odd columns int, even columns text; row 1 all set, row 2 all NULL,
	# rows 3-6 a mix of values, NULLs and empty strings
	$node->safe_psql($db, <<'SQL');
DO $$
DECLARE
  cols text;
  vals text;
BEGIN
  SELECT string_agg(format('c%s %s', i, CASE WHEN i % 2 = 1 THEN 'int' ELSE 'text' END), ', ' ORDER BY i)
    INTO cols FROM generate_series(1, 1600) i;
  EXECUTE 'CREATE TABLE wide (' || cols || ')';
  FOR k IN 1..6 LOOP
    SELECT string_agg(CASE
             WHEN k = 2 OR (k > 2 AND (i + k) % 7 = 0) THEN 'NULL'
             WHEN i % 2 = 1 THEN (i * k)::text
             WHEN k > 2 AND (i + k) % 5 = 0 THEN quote_literal('')
             ELSE quote_literal(chr(97 + (i + k) % 26) || k) END, ', ' ORDER BY i)
      INTO vals FROM generate_series(1, 1600) i;
    EXECUTE 'INSERT INTO wide VALUES (' || vals || ')';
  END LOOP;
END $$;
SQL
	is($node->safe_psql($db, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'wide'::regclass AND attnum > 0"),
		'1600', 'a table with 1,600 columns (setup)');
	my ($r, $id, $e) = backup_now($node, $db);
	is($r, 0, 'a backup of a table with 1,600 columns succeeds') or diag($e);
	($ret, $out, $err) = psql_err($node, $db, restore_sql('public.wide', $id, 'public.wide_copy'));
	is($out, '6', 'the 1,600-column table is restored into a new table') or diag($err);
	is(col_types($node, $db, 'wide_copy'), col_types($node, $db, 'wide'),
		'the new table has the same 1,600 column names and types');
	is($node->safe_psql($db, 'SELECT count(*) FROM (SELECT * FROM wide EXCEPT ALL SELECT * FROM wide_copy) d'), '0',
		'every row of the 1,600-column table is in the restored one');
	is($node->safe_psql($db, 'SELECT count(*) FROM (SELECT * FROM wide_copy EXCEPT ALL SELECT * FROM wide) d'), '0',
		'the restored 1,600-column table has no other rows');
	is($node->safe_psql($db, 'SELECT count(*) FILTER (WHERE c1600 IS NULL) || \'/\' || count(*) FILTER (WHERE c1600 = \'\') FROM wide_copy'),
		$node->safe_psql($db, 'SELECT count(*) FILTER (WHERE c1600 IS NULL) || \'/\' || count(*) FILTER (WHERE c1600 = \'\') FROM wide'),
		'NULLs and empty strings stay apart in the 1,600th column');
	$node->safe_psql($db, 'UPDATE wide SET c1 = NULL, c1600 = \'x\'');
	($ret, $out, $err) = psql_err($node, $db, restore_sql('public.wide', $id));
	is($out, '6', 'the 1,600-column table is restored in place') or diag($err);
	is($node->safe_psql($db, 'SELECT count(*) FROM ((SELECT * FROM wide EXCEPT ALL SELECT * FROM wide_copy) '
		  . 'UNION ALL (SELECT * FROM wide_copy EXCEPT ALL SELECT * FROM wide)) d'), '0',
		'and holds the backed-up rows again');
	no_crash('1,600 columns');
	diag(sprintf('1,600 columns: %.1f s', time() - $t0));
}

# ================================================================== names at the 63-byte limit
{
	my $t0 = time();
	my $euro = "\xe2\x82\xac";         # U+20AC, 3 bytes
	my $eacute = "\xc3\xa9";           # U+00E9, 2 bytes
	my $ouml = "\xc3\xb6";             # U+00F6, 2 bytes
	my $grin = "\xf0\x9f\x98\x80";     # U+1F600, 4 bytes
	my $shu = "\xe6\x95\xb0";          # U+6570, 3 bytes

	my $db = $shu x 21;
	my %n = (
		s_euro => $euro x 21,                                   # 63 bytes of 3-byte characters
		t_odd => 'a' . ($eacute x 31),                          # 63 bytes: 1 + 31 × 2
		c_euro => $euro x 21,
		c_ascii => 'x' x 63,
		c_mix => ($ouml x 30) . 'zzz',
		s_quoted => 'my "schema". with spaces' . ('.' x 39),  # 63 bytes: quotes, dots, spaces
		t_quoted => 'a "table". name ' . ($eacute x 21) . '..."x',
		c_quoted => 'col "q". 1, and ' . ($euro x 14) . 'end."',
		c_plain => 'plain',
		t_grin => ($grin x 15) . 'abc',                          # 63 bytes of 4-byte characters and 3 ASCII
		c_grin => 'x' . ($grin x 15) . 'yz',
		# targets of the restores into another name, also 63 bytes
		r_odd => 'b' . ($eacute x 31),
		r_quoted => 'another "table". name ' . ($eacute x 19) . '."x',
		r_grin => ($grin x 15) . 'xyz',
	);
	for my $k (sort keys %n)
	{
		die "name $k is " . length($n{$k}) . " bytes, not 63" unless length($n{$k}) == 63 || $k eq 'c_plain';
	}
	$node->safe_psql('postgres', 'CREATE DATABASE ' . qi($db));
	is($node->safe_psql($db, 'SELECT current_database() = ' . sql_quote($db) . ' AND octet_length(current_database()) = 63 '
		  . "AND current_setting('server_encoding') = 'UTF8'"), 't',
		'a UTF8 database whose name is 63 bytes of multibyte characters (setup)');
	$node->safe_psql($db, 'CREATE EXTENSION aibackup');

	# a name of 2-byte characters longer than 63 bytes: 63 would split a character
	my $long_t = $eacute x 40;    # 80 bytes
	my $long_c = $ouml x 40;
	($ret, $out, $err) = $node->psql($db,
		'CREATE TABLE public.' . qi($long_t) . ' (id int, ' . qi($long_c) . ' text)');
	my $trunc_t = $eacute x 31;    # what PostgreSQL makes of it: 62 bytes, whole characters
	my $trunc_c = $ouml x 31;
	like($err, qr/NOTICE:  identifier "\Q$long_t\E" will be truncated to "\Q$trunc_t\E"/,
		'PostgreSQL truncates an 80-byte name of 2-byte characters to 62 bytes, at a character boundary');
	is($node->safe_psql($db, "SELECT octet_length(relname) FROM pg_class WHERE relname = " . sql_quote($trunc_t)), '62',
		'the table is named with the 62-byte truncated name');
	is($node->safe_psql($db, 'SELECT octet_length(attname) FROM pg_attribute WHERE attrelid = '
		  . sql_quote('public.' . qi($trunc_t)) . '::regclass AND attnum = 2'), '62',
		'and its column with the 62-byte truncated name (setup)');

	$node->safe_psql($db, join(";\n",
		'CREATE SCHEMA ' . qi($n{s_euro}),
		'CREATE TABLE ' . qname($n{s_euro}, $n{t_odd}) . ' (' . qi($n{c_euro}) . ' int, '
		  . qi($n{c_ascii}) . ' text, ' . qi($n{c_mix}) . ' numeric)',
		'INSERT INTO ' . qname($n{s_euro}, $n{t_odd}) . " VALUES (1, 'one', 1.5), (2, NULL, NULL), (3, '', -3)",
		'CREATE SCHEMA ' . qi($n{s_quoted}),
		'CREATE TABLE ' . qname($n{s_quoted}, $n{t_quoted}) . ' (' . qi($n{c_quoted}) . ' text, '
		  . qi($n{c_plain}) . ' int)',
		'INSERT INTO ' . qname($n{s_quoted}, $n{t_quoted}) . " VALUES ('a \"quoted\", value', 1), (NULL, 2), ('', NULL)",
		'CREATE TABLE public.' . qi($n{t_grin}) . ' (' . qi($n{c_grin}) . " text)",
		'INSERT INTO public.' . qi($n{t_grin}) . " VALUES ('$grin'), ('" . ($euro x 3) . "'), (NULL)",
		'INSERT INTO public.' . qi($trunc_t) . " VALUES (1, '$ouml'), (2, NULL)",
	));
	my $q_trunc = sql_quote($trunc_t);
	is($node->safe_psql($db, <<"SQL"), 't', 'every schema, table and column name is 63 bytes (setup)');
SELECT bool_and(octet_length(n) = 63) FROM (
  SELECT nspname::text AS n FROM pg_namespace
   WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('public', 'information_schema')
  UNION ALL
  SELECT relname FROM pg_class
   WHERE relkind = 'r' AND relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
     AND relname <> $q_trunc
  UNION ALL
  SELECT attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
   WHERE c.relkind = 'r' AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
     AND c.relname <> $q_trunc AND a.attnum > 0 AND a.attname <> 'plain') x
SQL

	# the tables: [schema, table, target name for the copy]
	my @tables = (
		[ $n{s_euro}, $n{t_odd}, $n{r_odd} ],
		[ $n{s_quoted}, $n{t_quoted}, $n{r_quoted} ],
		[ 'public', $n{t_grin}, $n{r_grin} ],
		[ 'public', $trunc_t, 'copy ' . ($eacute x 29) ],
	);
	my %cs = map { (qname(@$_[0, 1]) => checksum($node, $db, qname(@$_[0, 1]))) } @tables;

	my ($r, $id, $e) = backup_now($node, $db);
	is($r, 0, 'a backup of the database with a 63-byte name succeeds') or diag($e);
	$id //= '';
	is($node->safe_psql($db, "SELECT status FROM aibackup_list_backups() WHERE backup_id = '$id'"), 'ok',
		'aibackup_list_backups() in that database shows it with status ok');
	is($node->safe_psql($db, <<"SQL"), '4|0', 'aibackup_list_tables() gives back every name exactly as in pg_class');
SELECT count(l.*) || '|' || count(*) FILTER (WHERE l.table_name IS NULL OR p.r IS NULL)
  FROM (SELECT schema_name, table_name FROM aibackup_list_tables('$id')) l
  FULL JOIN (SELECT n.nspname::text AS s, c.relname::text AS r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_%') p
    ON p.s = l.schema_name AND p.r = l.table_name
SQL

	my $mkey = "$prefix/" . pct_encode($db) . "/$id/manifest.json";
	my $mfile = "$work/manifest.json";
	is(s3_get($mkey, $mfile), 0, 'the manifest is under the percent-encoded 63-byte database name');
	my $m = eval { JSON::PP->new->utf8->decode(slurp_file($mfile)) } // {};
	my $mdb = $m->{database} // '';
	utf8::encode($mdb);
	is($mdb, $db, 'the manifest records the database name exactly');

	my ($lr, $listing, $le) = aws_cli('s3', 'ls', "s3://$ENV{S3_BUCKET}/$prefix/" . pct_encode($db) . "/$id/");
	is($lr, 0, 'aws s3 ls lists the backup\'s folder') or diag($le);

	my $i = 0;
	for my $tb (@tables)
	{
		my ($s, $t, $target) = @$tb;
		my $src = qname($s, $t);
		my $label = "table " . ++$i;
		my $fname = pct_encode($s) . '.' . pct_encode($t) . '.csv.gz';
		like($listing, qr/ \Q$fname\E$/m, "$label: its object key is <schema>.<table>.csv.gz, percent-encoded");

		my $gz = "$work/$i.csv.gz";
		is(s3_get(obj_key($prefix, pct_encode($db), $id, $s, $t), $gz), 0, "$label: aws s3 cp downloads its object");
		my $csv = '';
		IPC::Run::run([ 'gunzip', '-c', $gz ], '>', \$csv);
		my @cols = split /\n/, $node->safe_psql($db,
			'SELECT attname FROM pg_attribute WHERE attrelid = ' . sql_quote($src)
			  . '::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum');
		my $header = join(',', map { /[",\r\n]/ ? '"' . s/"/""/gr . '"' : $_ } @cols) . "\n";
		is((split /^/, $csv)[0] // '', $header, "$label: it gunzips to CSV whose header is the exact column names");

		# in place
		$node->safe_psql($db, "DELETE FROM $src; INSERT INTO $src DEFAULT VALUES");
		($ret, $out, $err) = psql_err($node, $db, restore_sql($src, $id));
		is($ret, 0, "$label: restore in place by its quoted name succeeds") or diag($err);
		is(checksum($node, $db, $src), $cs{$src}, "$label: restored in place with its rows");

		# into another name in the same schema
		my $dst = qname($s, $target);
		($ret, $out, $err) = psql_err($node, $db, restore_sql($src, $id, $dst));
		is($ret, 0, "$label: restore into another quoted name succeeds") or diag($err);
		is($node->safe_psql($db, 'SELECT to_regclass(' . sql_quote($dst) . ') IS NOT NULL'), 't',
			"$label: the new table has exactly the name given");
		is(col_types($node, $db, $dst), col_types($node, $db, $src),
			"$label: the new table has the exact column names and types");
		is(checksum($node, $db, $dst), $cs{$src}, "$label: the new table has the rows");
	}

	# names longer than 63 bytes are truncated as SQL truncates them
	($ret, $out, $err) = psql_err($node, $db,
		restore_sql('public.' . qi($long_t), $id, 'public.' . qi($ouml x 40)));
	is($ret, 0, 'restore with 80-byte source and target names succeeds (they are truncated as in SQL)') or diag($err);
	is($node->safe_psql($db, 'SELECT octet_length(relname) FROM pg_class WHERE relname = ' . sql_quote($ouml x 31)), '62',
		'the target is created under the name SQL truncates to, whole characters only');
	is(checksum($node, $db, 'public.' . qi($ouml x 31)), $cs{ qname('public', $trunc_t) },
		'and has the truncated-name table\'s rows');
	no_crash('63-byte names');
	diag(sprintf('63-byte names: %.1f s', time() - $t0));
}

diag(sprintf('suite: %.1f s', time() - $t_start));
$node->stop;
done_testing();
