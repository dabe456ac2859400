# t/lib/AibackupTest.pm — shared helpers for the TAP suites: a PostgreSQL 15
# cluster with aibackup preloaded and pointed at the test S3 server, and
# small S3 helpers that use the independent AWS CLI (/usr/bin/aws).
package AibackupTest;

use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempfile);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(new_cluster s3_settings aws_cli heavy_here);

# Servers started by the tests look for credentials in AWS's chain when
# their settings name no keys, and the chain ends at the EC2 instance
# metadata service, 169.254.169.254: tests talk to 127.0.0.1 only.
$ENV{AWS_EC2_METADATA_DISABLED} = 'true';

# settings that point aibackup at the test server (path style, HTTP)
sub s3_settings
{
	my (%o) = @_;
	my $endpoint = $o{endpoint} // $ENV{S3_HTTP_ENDPOINT};
	my $prefix = $o{prefix} // "t$$";
	my $conf = <<"CONF";
aibackup.s3_endpoint = '$endpoint'
aibackup.s3_region = '$ENV{S3_REGION}'
aibackup.s3_bucket = '$ENV{S3_BUCKET}'
aibackup.s3_prefix = '$prefix'
aibackup.s3_uri_style = 'path'
CONF
	# no_keys: credentials from the server's environment (t/046)
	$conf .= <<"CONF" unless $o{no_keys};
aibackup.s3_access_key_id = '$ENV{S3_ACCESS_KEY}'
aibackup.s3_secret_access_key = '$ENV{S3_SECRET_KEY}'
CONF
	return $conf;
}

# new_cluster(name, preload => 1, conf => '...', initdb => [options])
sub new_cluster
{
	my ($name, %o) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => $o{initdb} // []);
	my $conf = '';
	$conf .= "shared_preload_libraries = 'aibackup'\n"
	  unless defined $o{preload} && !$o{preload};
	$conf .= s3_settings(%o) unless $o{no_s3};
	$conf .= $o{conf} if $o{conf};
	$node->append_conf('postgresql.conf', $conf);
	$node->start;
	return $node;
}

# The heaviest scenarios run once per major version, for CI's time budget:
# on 15-assert (the same major and code as Debian's 15, with assertions and
# freed memory clobbered), 17 and 18, not again on Debian's own 15.
sub heavy_here
{
	my ($node) = @_;
	return $node->pg_version >= 16
	  || $node->safe_psql('postgres', 'SHOW debug_assertions') eq 'on';
}

# run /usr/bin/aws against the test server; returns (exit code, stdout, stderr)
sub aws_cli
{
	my (@args) = @_;
	my $dir = $ENV{AIBACKUP_TEST_WORK} . "/awscfg";
	mkdir $dir unless -d $dir;
	open my $fh, '>', "$dir/config" or die;
	# checksums only where S3 requires them: awscli 2.23 and later (Debian
	# 13's, scripts/chroot-pg.sh) otherwise send x-amz-checksum-crc64nvme,
	# which Swift's s3api refuses (NotImplemented); older ones ignore these
	print $fh "[default]\nregion = $ENV{S3_REGION}\n"
	  . "request_checksum_calculation = when_required\n"
	  . "response_checksum_validation = when_required\n"
	  . "s3 =\n  addressing_style = path\n";
	close $fh;
	local $ENV{AWS_CONFIG_FILE} = "$dir/config";
	local $ENV{AWS_SHARED_CREDENTIALS_FILE} = "$dir/none";
	local $ENV{AWS_ACCESS_KEY_ID} = $ENV{S3_ACCESS_KEY};
	local $ENV{AWS_SECRET_ACCESS_KEY} = $ENV{S3_SECRET_KEY};
	local $ENV{HOME} = $dir;
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run([ '/usr/bin/aws', '--endpoint-url', $ENV{S3_HTTP_ENDPOINT}, @args ],
		'>', \$stdout, '2>', \$stderr);
	return ($ok ? 0 : ($? >> 8 || 1), $stdout, $stderr);
}

1;
