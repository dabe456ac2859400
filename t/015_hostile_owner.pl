# A hostile database owner, a hostile CONNECT-only role, a granted presigner
# and translated log messages must not get what they are after:
#   1. the owner of a database plants functions and operators that shadow
#      pg_catalog's (CVE-2018-1058 class) and points the database's
#      search_path at them: nothing aibackup runs as superuser (manual
#      backup, list, restore, views, the scheduled worker, the install
#      script) may call them;
#   2. a role with only CONNECT cannot take the per-database backup lock
#      from SQL, and two backups of one database still never overlap;
#   3. a role granted aibackup_presign_url signs only keys in its own
#      database's folder;
#   4. the secret stays out of the server log with lc_messages in German,
#      and out of a logged ALTER SYSTEM.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use JSON::PP;
use AibackupTest;

my $prefix = "t015-$$";
my $pwndir = "$ENV{AIBACKUP_TEST_WORK}/t015-pwned-$$";
mkdir $pwndir or die "mkdir $pwndir: $!";

my $node = new_cluster('hostile', prefix => $prefix, conf => <<'CONF');
aibackup.enabled = off
aibackup.interval = '10s'
aibackup.databases = 'shop'
CONF
my ($ret, $out, $err);

# queries that check results run with a safe search_path; the calls under
# test run with whatever the database gives the session
my $PIN = "SET search_path = pg_catalog, pg_temp;\n";

sub wait_for
{
	my ($secs, $cond) = @_;
	my $end = time + $secs;
	while (time < $end)
	{
		return 1 if $cond->();
		sleep 0.5;
	}
	return $cond->();
}

sub pwned_files
{
	return map { s{.*/}{}r } glob("$pwndir/pwned_*");
}

# =====================================================================
# 1. A hostile database owner
# =====================================================================

$node->safe_psql('postgres', q{
	CREATE ROLE tenant LOGIN;
	CREATE DATABASE shop OWNER tenant;
});
$node->safe_psql('shop', 'CREATE EXTENSION aibackup');

# the tenant's data: a serial, a partitioned table with a leaf, an
# inheritance child, a schema of his own
$node->safe_psql('shop', q{
	CREATE TABLE public.orders (id serial PRIMARY KEY, note text);
	INSERT INTO public.orders (note) SELECT 'order ' || g FROM generate_series(1, 1000) g;
	CREATE TABLE public.measures (at int, v text) PARTITION BY RANGE (at);
	CREATE TABLE public.measures_1 PARTITION OF public.measures FOR VALUES FROM (0) TO (1000);
	INSERT INTO public.measures SELECT g, 'm' || g FROM generate_series(0, 299) g;
	CREATE TABLE public.animals (id int, name text);
	CREATE TABLE public.dogs (breed text) INHERITS (public.animals);
	INSERT INTO public.animals SELECT g, 'animal ' || g FROM generate_series(1, 5) g;
	INSERT INTO public.dogs SELECT g, 'dog ' || g, 'mutt' FROM generate_series(1, 7) g;
	CREATE SCHEMA shop_data;
	CREATE TABLE shop_data.items (id int, label text);
	INSERT INTO shop_data.items SELECT g, 'item ' || g FROM generate_series(1, 50) g;
}, extra_params => [ '-U', 'tenant' ]);

# The payload: once per backend and tag, a WARNING naming the role, and a
# server-side COPY TO a file, which only a superuser (or
# pg_write_server_files) can do.  Then every plant returns the real result.
my $plant_sql = q{
CREATE FUNCTION public.pwn_proof(tag text) RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	IF coalesce(current_setting('pwn.' || tag, true), '') <> '' THEN
		RETURN;
	END IF;
	PERFORM set_config('pwn.' || tag, 'fired', false);
	RAISE WARNING 'PWNED % as %', tag, current_user;
	BEGIN
		EXECUTE format('COPY (SELECT %L) TO %L', tag, '@DIR@/pwned_' || tag);
	EXCEPTION WHEN OTHERS THEN
		NULL;
	END;
END $f$;
};
$plant_sql =~ s/\@DIR\@/$pwndir/g;

my $nplant = 0;
sub tag_of { my $s = join '_', @_; $s =~ s/"//g; $s =~ s/[^a-z0-9]+/_/gi; return lc $s; }

# functions of pg_catalog, same signature (win with public first in the
# search_path) or a better match (name where pg_catalog takes text: wins always)
my @functions = (
	[ 'quote_ident', [qw(name)], 'text', 'pg_catalog.quote_ident($1::text)' ],
	[ 'quote_ident', [qw(text)], 'text' ],
	[ 'quote_literal', [qw(text)], 'text' ],
	[ 'quote_nullable', [qw(text)], 'text' ],
	[ 'current_setting', [qw(text)], 'text' ],
	[ 'current_setting', [qw(name)], 'text', 'pg_catalog.current_setting($1::text)' ],
	[ 'current_setting', [qw(text boolean)], 'text' ],
	[ 'set_config', [qw(text text boolean)], 'text' ],
	[ 'has_sequence_privilege', [qw(oid text)], 'boolean' ],
	[ 'has_sequence_privilege', [qw(oid name)], 'boolean', 'pg_catalog.has_sequence_privilege($1, $2::text)' ],
	[ 'has_sequence_privilege', [qw(text text)], 'boolean' ],
	[ 'has_table_privilege', [qw(oid text)], 'boolean' ],
	[ 'has_table_privilege', [qw(text text)], 'boolean' ],
	[ 'has_schema_privilege', [qw(oid text)], 'boolean' ],
	[ 'has_column_privilege', [qw(oid smallint text)], 'boolean' ],
	[ 'format_type', [qw(oid integer)], 'text' ],
	[ 'pg_get_expr', [qw(pg_node_tree oid)], 'text' ],
	[ 'pg_get_expr', [qw(pg_node_tree oid boolean)], 'text' ],
	[ 'pg_get_constraintdef', [qw(oid)], 'text' ],
	[ 'pg_get_indexdef', [qw(oid)], 'text' ],
	[ 'pg_get_partkeydef', [qw(oid)], 'text' ],
	[ 'pg_get_userbyid', [qw(oid)], 'name' ],
	[ 'pg_get_serial_sequence', [qw(text text)], 'text' ],
	[ 'pg_relation_size', [qw(regclass)], 'bigint' ],
	[ 'pg_table_size', [qw(regclass)], 'bigint' ],
	[ 'pg_total_relation_size', [qw(regclass)], 'bigint' ],
	[ 'pg_table_is_visible', [qw(oid)], 'boolean' ],
	[ 'to_regclass', [qw(text)], 'regclass' ],
	[ 'nextval', [qw(regclass)], 'bigint' ],
	[ 'setval', [qw(regclass bigint)], 'bigint' ],
	[ 'setval', [qw(regclass bigint boolean)], 'bigint' ],
	[ 'format', [qw(text)], 'text' ],
	[ 'lower', [qw(text)], 'text' ],
	[ 'length', [qw(text)], 'integer' ],
	[ 'replace', [qw(text text text)], 'text' ],
	[ 'substr', [qw(text integer integer)], 'text' ],
	[ 'left', [qw(text integer)], 'text' ],
	[ 'regexp_replace', [qw(text text text)], 'text' ],
	[ 'array_to_string', [qw(anyarray text)], 'text' ],
	[ 'now', [], 'timestamp with time zone' ],
	[ 'pg_try_advisory_xact_lock', [qw(bigint)], 'boolean' ],
	[ 'pg_try_advisory_xact_lock', [qw(integer integer)], 'boolean' ],
);
for my $f (@functions)
{
	my ($name, $args, $rettype, $real) = @$f;
	my $tag = tag_of('fn', $name, @$args);
	$real //= "pg_catalog.$name(" . join(', ', map { '$' . $_ } 1 .. @$args) . ')';
	my $argl = join ', ', @$args;
	$plant_sql .= qq{
CREATE FUNCTION public.$name($argl) RETURNS $rettype LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS \$f\$
BEGIN
	PERFORM public.pwn_proof('$tag');
	RETURN $real;
END \$f\$;
};
	$nplant++;
}

# operators: same signature as pg_catalog's, or an exact match where
# pg_catalog needs a cast (name ~~ name, oid = integer, oid = regclass)
my @eq_types = ([qw(name name)], [qw(name text)], [qw(text name)], [qw(text text)],
	[qw("char" "char")], [qw(oid oid)], [qw(oid regclass)], [qw(oid integer)],
	[qw(regclass regclass)], [qw(integer integer)], [qw(smallint smallint)],
	[qw(smallint integer)], [qw(bigint bigint)]);
my @ord_types = ([qw(smallint integer)], [qw(integer integer)], [qw(bigint bigint)],
	[qw(oid oid)], [qw(oid integer)]);
my @like_types = ([qw(name name)], [qw(name text)], [qw(text text)]);
my @operators;
push @operators, map { my $t = $_; map { [ $_, @$t, 'boolean' ] } qw(= <>) } @eq_types;
push @operators, map { my $t = $_; map { [ $_, @$t, 'boolean' ] } qw(< > <= >=) } @ord_types;
push @operators, map { my $t = $_; map { [ $_, @$t, 'boolean' ] } qw(~~ !~~ ~~* !~~* ~ !~) } @like_types;
push @operators, [ '||', qw(text text text) ], [ '||', qw(name text text) ], [ '||', qw(name name text) ];
push @operators, map { [ $_, qw(bigint bigint bigint) ], [ $_, qw(integer integer integer) ] } qw(* + -);
my %opname = ('=' => 'eq', '<>' => 'ne', '<' => 'lt', '>' => 'gt', '<=' => 'le', '>=' => 'ge',
	'~~' => 'like', '!~~' => 'notlike', '~~*' => 'ilike', '!~~*' => 'notilike',
	'~' => 're', '!~' => 'notre', '||' => 'cat', '*' => 'mul', '+' => 'add', '-' => 'sub');
for my $o (@operators)
{
	my ($op, $l, $r, $rettype) = @$o;
	my $tag = tag_of('op', $opname{$op}, $l, $r);
	# pg_catalog has no name ~~ name or name || name: compare as text
	my ($lx, $rx) = ('$1', '$2');
	($lx, $rx) = ('$1::text', '$2::text') if $op =~ /~|\|\|/ && ($l eq 'name' || $r eq 'name');
	$plant_sql .= qq{
CREATE FUNCTION public.pwn_$tag($l, $r) RETURNS $rettype LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS \$f\$
BEGIN
	PERFORM public.pwn_proof('$tag');
	RETURN $lx OPERATOR(pg_catalog.$op) $rx;
END \$f\$;
CREATE OPERATOR public.$op (LEFTARG = $l, RIGHTARG = $r, FUNCTION = public.pwn_$tag);
};
	$nplant++;
}

# aggregates
$plant_sql .= q{
CREATE FUNCTION public.pwn_count_sfunc(bigint) RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM public.pwn_proof('agg_count');
	RETURN $1 OPERATOR(pg_catalog.+) 1;
END $f$;
CREATE AGGREGATE public.count(*) (SFUNC = public.pwn_count_sfunc, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION public.pwn_string_agg_sfunc(text, text, text) RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM public.pwn_proof('agg_string_agg');
	RETURN CASE WHEN $1 IS NULL THEN $2 ELSE $1 OPERATOR(pg_catalog.||) $3 OPERATOR(pg_catalog.||) $2 END;
END $f$;
CREATE AGGREGATE public.string_agg(text, text) (SFUNC = public.pwn_string_agg_sfunc, STYPE = text);
-- a domain that shadows a built-in type name: a restore that parsed the
-- manifest's "text" under this search_path would create its column with it
CREATE FUNCTION public.pwn_domain_check(pg_catalog.text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
	PERFORM public.pwn_proof('domain_text');
	RETURN true;
END $f$;
CREATE DOMAIN public.text AS pg_catalog.text CHECK (public.pwn_domain_check(VALUE));
};
$nplant += 3;

($ret, $out, $err) = $node->psql('shop', $plant_sql, extra_params => [ '-U', 'tenant' ]);
is($ret, 0, "the tenant plants $nplant shadowing functions, operators and aggregates in public")
  or diag($err);
$node->safe_psql('shop', q{
	ALTER DATABASE shop SET search_path = public, pg_catalog;
	ALTER ROLE tenant SET search_path = public, pg_catalog;
}, extra_params => [ '-U', 'tenant' ]);

# --- controls: the plants work, so their silence below means something ---
($ret, $out, $err) = $node->psql('shop', q{SELECT 'x'::text},
	extra_params => [ '-U', 'tenant' ]);
like($err, qr/PWNED domain_text as tenant/,
	'control: with the tenant\'s search_path "text" names the planted domain');
is($node->safe_psql('shop', 'SHOW search_path'), 'public, pg_catalog',
	'a superuser session in shop gets the search_path the tenant set');

($ret, $out, $err) = $node->psql('shop', q{SELECT quote_ident('x'::name)},
	extra_params => [ '-U', 'tenant' ]);
like($err, qr/WARNING:  PWNED fn_quote_ident_name as tenant/,
	'control: the tenant calling quote_ident(name) runs the plant (better match than pg_catalog)');
is($out, 'x', 'control: and the plant returns the real result');

($ret, $out, $err) = $node->psql('shop', q{SELECT current_setting('block_size')},
	extra_params => [ '-U', 'tenant' ]);
like($err, qr/PWNED fn_current_setting_text as tenant/,
	'control: a same-signature function wins through the search_path');

($ret, $out, $err) = $node->psql('shop', q{
	SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND n.nspname NOT LIKE 'pg\_%' AND c.relname = 'orders'},
	extra_params => [ '-U', 'tenant' ]);
like($err, qr/PWNED op_eq_oid_oid/, 'control: a planted oid = oid runs in a catalog join');
like($err, qr/PWNED op_eq_char_char/, 'control: a planted "char" = "char" runs');
like($err, qr/PWNED op_notlike_name_name/, 'control: a planted name !~~ name runs');
is($out, 'orders', 'control: and the query still gives the right answer');
is(join(',', pwned_files()), '', 'control: the tenant cannot write a server file himself');

($ret, $out, $err) = $node->psql('shop', q{SELECT current_setting('block_size')});
like($err, qr/PWNED fn_current_setting_text as /,
	'control: a superuser calling a shadowed function runs the plant');
is(join(',', pwned_files()), 'pwned_fn_current_setting_text',
	'control: and the plant, run as superuser, writes its proof file');
unlink glob("$pwndir/pwned_*");

my $log_offset = -s $node->logfile;
my @client_pwned;

# run as superuser in shop with the tenant's search_path; one test that the
# call ran none of the tenant's code (client warnings and proof files)
sub hostile_psql
{
	my ($label, $sql) = @_;
	my ($r, $o, $e) = $node->psql('shop', $sql);
	my @files = pwned_files();
	my @w = ($e =~ /PWNED (\S+)/g);
	push @client_pwned, @w;
	ok(!@w && !@files, "$label runs none of the tenant's code")
	  or diag("warnings: @w; proof files: @files; stderr: " . substr($e, 0, 2000));
	unlink glob("$pwndir/pwned_*");
	return ($r, $o, $e);
}

# --- the install script, after the plants ---
($ret, $out, $err) = hostile_psql('DROP and CREATE EXTENSION after the plants',
	'DROP EXTENSION aibackup; CREATE EXTENSION aibackup;');
is($ret, 0, 'the extension installs in the tenant\'s database after the plants') or diag($err);
is($node->safe_psql('shop', $PIN . q{
	SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
	WHERE e.extname = 'aibackup'}), 'public', 'it is installed in public');

# --- manual backup ---
($ret, $out, $err) = hostile_psql('aibackup_backup_now()', 'SELECT aibackup_backup_now()');
my $shop_id = $out;
like($shop_id, qr/^\d{8}T\d{6}Z$/, 'a superuser backs up the tenant\'s database') or diag($err);

($ret, $out, $err) = hostile_psql('aibackup_list_tables()',
	'SELECT schema_name, table_name, rows FROM aibackup_list_tables()');
is(join(' ', sort split /\n/, $out),
	join(' ', sort qw(public|animals|5 public|dogs|7 public|measures_1|300 public|orders|1000 shop_data|items|50)),
	'the backup holds every tenant table with its row count (leaf, inheritance parent and child, own schema)');

($ret, $out, $err) = hostile_psql('aibackup_list_backups()',
	'SELECT backup_id, status, tables, rows FROM aibackup_list_backups()');
is($out, "$shop_id|ok|5|1362", 'aibackup_list_backups() lists it as ok with 5 tables and 1362 rows');

# the manifest, read with the AWS CLI
my $mfile = "$ENV{AIBACKUP_TEST_WORK}/t015-manifest.json";
aws_cli('s3', 'cp', '--quiet', "s3://$ENV{S3_BUCKET}/$prefix/shop/$shop_id/manifest.json", $mfile);
my $manifest = eval { decode_json(slurp_file($mfile)) } // {};
my ($seq) = grep { $_->{name} eq 'orders_id_seq' } @{ $manifest->{sequences} // [] };
is($seq ? "$seq->{schema}.$seq->{name}=$seq->{last_value}" : 'none', 'public.orders_id_seq=1000',
	'the manifest records the tenant\'s sequence at its last value');
my ($leaf) = grep { $_->{name} eq 'measures_1' } @{ $manifest->{tables} // [] };
is($leaf ? $leaf->{parent} : 'none', 'public.measures', 'the manifest names the partition\'s parent');

# --- restores ---
$node->safe_psql('shop', $PIN . 'DELETE FROM public.orders WHERE id > 500; UPDATE public.orders SET note = NULL WHERE id < 10');
($ret, $out, $err) = hostile_psql('aibackup_restore_table() in place',
	q{SELECT aibackup_restore_table('public.orders')});
is($out, '1000', 'restoring the tenant\'s table in place returns 1000 rows') or diag($err);
is($node->safe_psql('shop', $PIN . q{
	SELECT count(*), sum(id), count(*) FILTER (WHERE note = 'order ' || id) FROM public.orders}),
	'1000|500500|1000', 'and the table holds exactly the backed-up rows');

# the tenant's triggers and constraint functions fire during an in-place
# restore, but as the tenant (the table's owner), never as the superuser
$node->safe_psql('shop', $PIN . qq{
	CREATE TABLE public.trigger_log (who text, what text);
	CREATE FUNCTION public.log_who() RETURNS trigger LANGUAGE plpgsql AS \$f\$
	BEGIN
		BEGIN
			EXECUTE pg_catalog.format('COPY (SELECT 1) TO %L', pg_catalog.concat('$pwndir/pwned_trigger_', TG_LEVEL));
		EXCEPTION WHEN OTHERS THEN NULL;
		END;
		INSERT INTO public.trigger_log VALUES (current_user, pg_catalog.concat(TG_OP, ' ', TG_LEVEL));
		PERFORM pg_catalog.set_config('work_mem', '77MB', false);
		RETURN NEW;
	END \$f\$;
	CREATE FUNCTION public.check_who(int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS \$f\$
	BEGIN
		BEGIN
			EXECUTE pg_catalog.format('COPY (SELECT 1) TO %L', '$pwndir/pwned_check');
		EXCEPTION WHEN OTHERS THEN NULL;
		END;
		RETURN true;
	END \$f\$;
	CREATE TRIGGER orders_row BEFORE INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.log_who();
	CREATE TRIGGER orders_truncate BEFORE TRUNCATE ON public.orders FOR EACH STATEMENT EXECUTE FUNCTION public.log_who();
	ALTER TABLE public.orders ADD CONSTRAINT orders_check CHECK (public.check_who(id));
	REVOKE TRUNCATE ON public.orders FROM tenant;
}, extra_params => [ '-U', 'tenant' ]);
($ret, $out, $err) = hostile_psql('aibackup_restore_table() in place into a table with the tenant\'s triggers',
	q{SELECT aibackup_restore_table('public.orders'); SHOW work_mem;});
is($out, "1000\n4MB",
	'restoring into a table with triggers and a CHECK returns 1000 rows (though its owner revoked TRUNCATE from itself), and the settings the triggers changed are undone')
  or diag($err);
is($node->safe_psql('shop', $PIN . q{
	SELECT who, what, count(*) FROM public.trigger_log GROUP BY 1, 2 ORDER BY 1, 2}),
	"tenant|INSERT ROW|1000\ntenant|TRUNCATE STATEMENT|1",
	'the tenant\'s triggers ran for every row and the TRUNCATE, as the tenant, never as the superuser');
$node->safe_psql('shop', $PIN . q{
	DROP TRIGGER orders_row ON public.orders; DROP TRIGGER orders_truncate ON public.orders;
	ALTER TABLE public.orders DROP CONSTRAINT orders_check; DROP TABLE public.trigger_log;
}, extra_params => [ '-U', 'tenant' ]);

($ret, $out, $err) = hostile_psql('aibackup_restore_table() into a new table',
	qq{SELECT aibackup_restore_table('public.orders', '$shop_id', 'public.orders_copy')});
is($out, '1000', 'restoring into a new table returns 1000 rows') or diag($err);
is($node->safe_psql('shop', $PIN . q{
	SELECT count(*) FROM public.orders o FULL JOIN public.orders_copy c USING (id, note)
	WHERE o.id IS NULL OR c.id IS NULL}), '0', 'and the copy equals the original');

($ret, $out, $err) = hostile_psql('aibackup_restore_table() of a partition',
	q{SELECT aibackup_restore_table('public.measures_1')});
is($out, '300', 'restoring the leaf partition in place returns 300 rows') or diag($err);

($ret, $out, $err) = hostile_psql('aibackup_restore_table() of an inheritance child',
	q{SELECT aibackup_restore_table('public.dogs')});
is($out, '7', 'restoring the inheritance child in place returns 7 rows') or diag($err);
is($node->safe_psql('shop', $PIN . 'SELECT count(*) FROM public.animals'), '12',
	'parent and child together still hold 12 rows');

$node->safe_psql('shop', $PIN . 'DROP TABLE shop_data.items');
($ret, $out, $err) = hostile_psql('aibackup_restore_table() of a dropped table',
	q{SELECT aibackup_restore_table('shop_data.items')});
is($out, '50', 'restoring a dropped table recreates it with 50 rows') or diag($err);
is($node->safe_psql('shop', $PIN . q{SELECT count(*), sum(id), min(label) FROM shop_data.items}),
	'50|1275|item 1', 'and the recreated table holds the backed-up rows');

# a dropped table whose column type is the tenant's domain comes back owned
# by the tenant and is loaded as the tenant; with its owner gone, a
# superuser's restore refuses to run the domain's check with its rights
$node->safe_psql('shop', $PIN . qq{
	CREATE FUNCTION public.dom_check(pg_catalog.int4) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS \$f\$
	BEGIN
		BEGIN
			EXECUTE pg_catalog.format('COPY (SELECT 1) TO %L', '$pwndir/pwned_domain_check');
		EXCEPTION WHEN OTHERS THEN NULL;
		END;
		RETURN true;
	END \$f\$;
	CREATE DOMAIN public.guarded AS pg_catalog.int4 CHECK (public.dom_check(VALUE));
	CREATE TABLE public.dom_t (a public.guarded);
	INSERT INTO public.dom_t SELECT g FROM pg_catalog.generate_series(1, 20) g;
}, extra_params => [ '-U', 'tenant' ]);
$node->safe_psql('shop', $PIN . q{
	CREATE ROLE gone;
	GRANT USAGE ON TYPE public.guarded TO gone;
	CREATE TABLE public.gone_t (a public.guarded);
	INSERT INTO public.gone_t SELECT g FROM pg_catalog.generate_series(1, 5) g;
	ALTER TABLE public.gone_t OWNER TO gone;
});
unlink glob("$pwndir/pwned_*");
my $dom_id = $node->safe_psql('shop', 'SELECT aibackup_backup_now()');
$node->safe_psql('shop', $PIN . 'DROP TABLE public.dom_t', extra_params => [ '-U', 'tenant' ]);
$node->safe_psql('shop', $PIN . 'DROP TABLE public.gone_t; DROP OWNED BY gone; DROP ROLE gone');
($ret, $out, $err) = hostile_psql('aibackup_restore_table() of a dropped table typed with the tenant\'s domain',
	q{SELECT aibackup_restore_table('public.dom_t')});
is($out, '20', 'it is restored with its 20 rows') or diag($err);
is($node->safe_psql('shop', $PIN . q{SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'public.dom_t'::regclass}),
	'tenant', 'and belongs to the tenant again, as at backup time');
($ret, $out, $err) = hostile_psql('aibackup_restore_table() of a table whose owner is gone, typed with the tenant\'s domain',
	q{SELECT aibackup_restore_table('public.gone_t')});
like($err, qr/cannot restore into new table public\.gone_t as a superuser: column "a" has type public\.guarded, whose checks are code of role "tenant"/,
	'a superuser restore of it is refused, naming the type and its owner');
is($node->safe_psql('shop', $PIN . q{SELECT count(*) FROM pg_class WHERE relname = 'gone_t'}), '0',
	'and leaves no table behind');
$node->safe_psql('shop', $PIN . 'DROP TABLE public.dom_t', extra_params => [ '-U', 'tenant' ]);

# --- the views ---
($ret, $out, $err) = hostile_psql('SELECT FROM pg_stat_aibackup',
	'SELECT datname, last_backup_id, last_status FROM pg_stat_aibackup');
like($out, qr/^shop\|\Q$dom_id\E\|ok$/m, 'pg_stat_aibackup shows the last backup') or diag($err);
($ret, $out, $err) = hostile_psql('SELECT FROM pg_stat_progress_aibackup',
	'SELECT * FROM pg_stat_progress_aibackup');
is($ret, 0, 'pg_stat_progress_aibackup can be read') or diag($err);
($ret, $out, $err) = hostile_psql('SELECT FROM pg_stat_aibackup_tables',
	'SELECT schema_name, table_name, last_status, rows FROM pg_stat_aibackup_tables');
like($out, qr/^public\|orders\|ok\|1000$/m, 'pg_stat_aibackup_tables shows the tenant\'s table')
  or diag($err);

# --- the scheduled worker ---
my %before = map { $_ => 1 } split /\n/,
  $node->safe_psql('shop', $PIN . 'SELECT backup_id FROM public.aibackup_list_backups()');
my $sched_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "aibackup.enabled = on\n");
$node->reload;
my $sched_id;
ok(wait_for(45, sub {
	($sched_id) = grep { !$before{$_} } split /\n/,
	  $node->safe_psql('shop', $PIN . 'SELECT backup_id FROM public.aibackup_list_backups()');
	return defined $sched_id;
}), 'the launcher backs up the tenant\'s database on schedule');
$node->append_conf('postgresql.conf', "aibackup.enabled = off\n");
$node->reload;
$sched_id //= 'none';
is(join(' ', sort split /\n/, $node->safe_psql('shop', $PIN .
	"SELECT schema_name, table_name, rows FROM public.aibackup_list_tables('$sched_id')")),
	join(' ', sort qw(public|animals|5 public|dogs|7 public|measures_1|300 public|orders|1000
		public|orders_copy|1000 shop_data|items|50)),
	'the scheduled backup holds every table with its row count');
# let a run that had started end before the log is read
wait_for(20, sub {
	$node->safe_psql('postgres', $PIN .
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'aibackup worker'") eq '0' });

my @sched_pwned = (slurp_file($node->logfile, $sched_offset) =~ /PWNED (\S+ as \S+)/g);
is(scalar(@sched_pwned), 0, 'the scheduled worker runs none of the tenant\'s code (server log)')
  or diag('PWNED in log: ' . join(', ', @sched_pwned));

# --- overall: nothing ran as superuser ---
my @files = pwned_files();
is(join(',', @files), '', 'no planted function wrote a server file (nothing ran as superuser)');
my $shop_log = slurp_file($node->logfile, $log_offset);
my @log_pwned = ($shop_log =~ /PWNED (\S+ as \S+)/g);
is(scalar(@log_pwned), 0, 'the server log has no PWNED line from the superuser calls or the worker')
  or diag('PWNED in log: ' . join(', ', @log_pwned));

# =====================================================================
# 2. The per-database backup lock cannot be taken from SQL
# =====================================================================

$node->safe_psql('postgres', q{
	CREATE DATABASE app;
	CREATE ROLE blocker LOGIN;
	CREATE ROLE reader LOGIN;
	REVOKE CONNECT ON DATABASE app FROM PUBLIC;
	GRANT CONNECT ON DATABASE app TO blocker, reader;
});
$node->safe_psql('app', q{
	CREATE EXTENSION aibackup;
	CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g;
	CREATE TABLE lockme (id int);
	INSERT INTO lockme SELECT generate_series(1, 10);
});
my $dboid = $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = 'app'");
my $key = 0x61696262;	# "aibb"

my $blk = $node->background_psql('app', extra_params => [ '-U', 'blocker' ]);
my $blk_pid = $blk->query_safe('SELECT pg_backend_pid()');
my @int_pairs;
for my $a ($dboid, $key, 0, 1, 2)
{
	for my $b ($dboid, $key, 0, 1, 2)
	{
		push @int_pairs, [ $a, $b ] if grep { $_ == $dboid || $_ == $key } $a, $b;
	}
}
my @bigints;
for my $hi ($dboid, $key, 0, 2)
{
	for my $lo ($dboid, $key, 0, 2)
	{
		push @bigints, ($hi << 32) | $lo if grep { $_ == $dboid || $_ == $key } $hi, $lo;
	}
}
my $locks = join "\n",
  (map { "SELECT pg_advisory_lock($_->[0], $_->[1]);" } @int_pairs),
  (map { "SELECT pg_advisory_lock(${_}::bigint);" } @bigints),
  'BEGIN;',
  (map { "SELECT pg_advisory_xact_lock($_->[0], $_->[1]);" } @int_pairs),
  (map { "SELECT pg_advisory_xact_lock(${_}::bigint);" } @bigints);
$blk->query_safe($locks);
my $nlocks = @int_pairs + @bigints;
is($node->safe_psql('app', "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $blk_pid"),
	$nlocks, "a CONNECT-only role holds $nlocks advisory locks built from the database oid and the key");

my $t0 = time;
($ret, $out, $err) = $node->psql('app', "SET statement_timeout = '20s'; SELECT aibackup_backup_now()");
my $secs = time - $t0;
like($out, qr/^\d{8}T\d{6}Z$/,
	sprintf('a superuser backup succeeds while that role holds them (%.1f s)', $secs))
  or diag($err);
$blk->quit;

# two backups of one database still never overlap
my $holder = $node->background_psql('app');
$holder->query_safe('BEGIN; LOCK TABLE lockme IN ACCESS EXCLUSIVE MODE;');
my $first = $node->background_psql('app', on_error_stop => 0);
$first->query_until(qr/started/, "\\echo started\nSELECT aibackup_backup_now();\n\\echo done\n");
ok(wait_for(20, sub {
	$node->safe_psql('app', "SELECT count(*) FROM pg_locks WHERE relation = 'lockme'::regclass AND NOT granted") eq '1' }),
	'a first backup waits for its lock on a locked table');
($ret, $out, $err) = $node->psql('app', "SET statement_timeout = '20s'; SELECT aibackup_backup_now()");
like($err, qr/another backup of database "app" is running/,
	'a second backup of the same database meanwhile is refused');
$holder->query_safe('COMMIT');
$holder->quit;
my $first_out = $first->query_until(qr/done/, '');
my $app_id = ($first_out =~ /^(\d{8}T\d{6}Z)$/m)[0];
ok(defined $app_id, 'the first backup completes once the lock is released')
  or diag("stdout: $first_out; stderr: $first->{stderr}");
$first->quit;
$app_id //= $node->safe_psql('app', 'SELECT backup_id FROM aibackup_list_backups() LIMIT 1');

# =====================================================================
# 3. aibackup_presign_url for a granted non-superuser
# =====================================================================

$node->safe_psql('app',
	'GRANT EXECUTE ON FUNCTION aibackup_presign_url(text, interval, timestamptz) TO reader');

sub presign_as
{
	my ($role, $k) = @_;
	return $node->psql('app', "\\set VERBOSITY verbose\nSELECT aibackup_presign_url('$k')",
		$role ? (extra_params => [ '-U', $role ]) : ());
}

my $own = "$prefix/app/$app_id/manifest.json";
my $other = "$prefix/shop/$shop_id/manifest.json";
my $ref = "$ENV{AIBACKUP_TEST_WORK}/t015-own.json";
aws_cli('s3', 'cp', '--quiet', "s3://$ENV{S3_BUCKET}/$own", $ref);
my $dl = "$ENV{AIBACKUP_TEST_WORK}/t015-dl.json";

($ret, $out, $err) = presign_as('reader', $own);
like($out, qr/^http:/, 'a granted role signs a key in its own database\'s folder') or diag($err);
my $code = `curl -s -o '$dl' -w '%{http_code}' '$out'`;
is($code, '200', 'and the URL downloads the object');
is(-e $dl ? slurp_file($dl) : '', slurp_file($ref), 'with the object\'s bytes');

for my $case (
	[ 'a key in another database\'s folder', $other ],
	[ 'the bare prefix', $prefix ],
	[ 'the bare prefix with a slash', "$prefix/" ],
	[ 'the database folder\'s name without its slash', "$prefix/app" ],
	[ 'a sibling database whose name starts with this one\'s', "$prefix/appx/$app_id/manifest.json" ],
	[ 'a look-alike prefix', "${prefix}x/app/$app_id/manifest.json" ],
	[ 'a leading slash', "/$own" ],
	[ 'a ".." segment into another database', "$prefix/app/../shop/$shop_id/manifest.json" ],
	[ 'a trailing ".." segment', "$prefix/app/$app_id/.." ],
	[ 'a "." segment', "$prefix/app/./$app_id/manifest.json" ],
	[ 'an empty segment ("//")', "$prefix/app//$app_id/manifest.json" ],
	[ 'a key outside the prefix', "elsewhere/app/x" ])
{
	($ret, $out, $err) = presign_as('reader', $case->[1]);
	like($err, qr/ERROR:  42501:/, "a granted role may not sign $case->[0] ($case->[1])")
	  or diag("out: $out; err: $err");
}
($ret, $out, $err) = presign_as('reader', '');
like($err, qr/ERROR:  (42501|22023):/, 'a granted role gets an error for an empty key')
  or diag("out: $out; err: $err");

($ret, $out, $err) = presign_as(undef, $other);
like($out, qr/^http:/, 'a superuser signs a key of another database') or diag($err);
$code = `curl -s -o /dev/null -w '%{http_code}' '$out'`;
is($code, '200', 'and that URL downloads the object');

# =====================================================================
# 4. Secrets and translated log messages
# =====================================================================

$node->append_conf('postgresql.conf', "lc_messages = 'de_DE.UTF-8'\nlog_statement = 'ddl'\n");
$node->reload;
sleep 1;
($ret, $out, $err) = $node->psql('postgres', 'SELECT 1/0');
like($err, qr/Division durch Null/, 'server messages are in German (lc_messages = de_DE.UTF-8)');

my $rotated = "Rotated-Secret-DE-$$";
$log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "aibackup.s3_secret_access_key = '$rotated'\n");
$node->reload;
sleep 1;
$node->append_conf('postgresql.conf', "aibackup.s3_secret_access_key = '$ENV{S3_SECRET_KEY}'\n");
$node->reload;
sleep 1;
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/[Pp]arameter \S*aibackup\.s3_secret_access_key/,
	'a reload changing the secret is logged with German messages');
unlike($log, qr/\Q$rotated\E/, 'the new secret is not in the log');
unlike($log, qr/\b\Q$ENV{S3_SECRET_KEY}\E\b/, 'nor the old one');

my $altered = "AlterSystem-Secret-$$";
$log_offset = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE TABLE t015_ddl_probe ()');
($ret, $out, $err) = $node->psql('postgres',
	"ALTER SYSTEM SET aibackup.s3_secret_access_key = '$altered'");
is($ret, 0, 'ALTER SYSTEM SET of the secret works') or diag($err);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
sleep 1;
$node->safe_psql('postgres', 'ALTER SYSTEM RESET aibackup.s3_secret_access_key; SELECT pg_reload_conf()');
sleep 1;
# other spellings SQL accepts for the same setting
my $quoted = "Quoted-Secret-$$";
($ret, $out, $err) = $node->psql('postgres',
	qq{ALTER SYSTEM SET "aibackup"."s3_secret_access_key" = '$quoted'});
is($ret, 0, 'ALTER SYSTEM SET of the secret with quoted identifiers works') or diag($err);
my $spaced = "Spaced-Secret-$$";
($ret, $out, $err) = $node->psql('postgres',
	qq{ALTER SYSTEM SET aibackup . /* c */ S3_SECRET_ACCESS_KEY = '$spaced'});
is($ret, 0, 'and with spaces, a comment and upper case') or diag($err);
$node->safe_psql('postgres', 'ALTER SYSTEM RESET aibackup.s3_secret_access_key');
$log = slurp_file($node->logfile, $log_offset);
like($log, qr/CREATE TABLE t015_ddl_probe/, 'DDL statements are logged (log_statement = ddl)');
unlike($log, qr/\Q$altered\E/, 'ALTER SYSTEM SET of the secret does not put it in the log');
unlike($log, qr/\Q$quoted\E|\Q$spaced\E/,
	'nor do the quoted and spaced spellings of the same setting');

$node->stop;
done_testing();
