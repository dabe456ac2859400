# Many databases: the scheduler backs up every one of 150 databases, and
# pg_stat_aibackup keeps a row for each up to aibackup.max_databases; one
# beyond it is still backed up, with a WARNING naming the setting.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use AibackupTest;

my $prefix = "t021-$$";
my $ndb = 150;
my $keep = 140;    # aibackup.max_databases: fewer rows than databases

my $node = new_cluster('many', prefix => $prefix, conf => <<"CONF");
aibackup.enabled = off
aibackup.interval = '10s'
aibackup.max_workers = 2
aibackup.max_databases = $keep
CONF
plan skip_all => '150 databases: run on 15-assert, 17 and 18 (AibackupTest::heavy_here)'
  unless heavy_here($node);
is($node->safe_psql('postgres', 'SHOW aibackup.max_databases'), $keep,
	'aibackup.max_databases is set at server start');
($_) = $node->psql('postgres', 'SET aibackup.max_databases = 500');
isnt($_, 0, 'and cannot be changed in a session');

my $t0 = time;
for my $i (1 .. $ndb)
{
	my $db = sprintf('many%03d', $i);
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE TABLE t (id int); INSERT INTO t VALUES ($i)");
}
note(sprintf('created %d databases in %.1f s', $ndb, time - $t0));

# database folders in the bucket that hold a manifest
sub backed_up
{
	my ($r, $out) = aws_cli('s3', 'ls', '--recursive', "s3://$ENV{S3_BUCKET}/$prefix/");
	my %db;
	$db{$1} = 1 while $out =~ m{\Q$prefix\E/([^/]+)/\d{8}T\d{6}Z/manifest\.json}g;
	return scalar grep { /^many\d{3}$/ } keys %db;
}

$t0 = time;
$node->append_conf('postgresql.conf', "aibackup.enabled = on\n");
$node->reload;
my $end = time + 600;
sleep 2 while backed_up() < $ndb && time < $end;
is(backed_up(), $ndb, "the scheduler backs up all $ndb databases");
note(sprintf('first scheduled pass over %d databases: %.1f s', $ndb, time - $t0));
$node->append_conf('postgresql.conf', "aibackup.enabled = off\n");
$node->reload;

is($node->safe_psql('postgres', 'CREATE EXTENSION aibackup; SELECT count(*) FROM pg_stat_aibackup'),
	$keep, "pg_stat_aibackup keeps a row for each of aibackup.max_databases ($keep) databases");
like(slurp_file($node->logfile),
	qr/database "many\d{3}" has no row in pg_stat_aibackup: aibackup\.max_databases \($keep\) are already kept/,
	'a database beyond it is backed up with a WARNING naming the setting');
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');

$node->stop;
done_testing();
