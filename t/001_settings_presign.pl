# Settings, secrets, extension install/uninstall, and presigned URLs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AibackupTest;

my $node = new_cluster('settings');
my ($ret, $out, $err);

# --- install / uninstall ---
$node->safe_psql('postgres', 'CREATE EXTENSION aibackup');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_proc WHERE proname LIKE 'aibackup%'") > 0, 1,
	'CREATE EXTENSION creates the functions');
$node->safe_psql('postgres', 'DROP EXTENSION aibackup');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_proc WHERE proname LIKE 'aibackup%'"), '0',
	'DROP EXTENSION leaves no function behind');
$node->safe_psql('postgres', 'CREATE EXTENSION aibackup');

# --- check hooks refuse bad values ---
($ret, $out, $err) = $node->psql('postgres',
	"ALTER SYSTEM SET aibackup.s3_uri_style = 'sideways'");
like($err, qr/invalid value for parameter "aibackup.s3_uri_style".*\n.*Available values: virtual, path/,
	'a bad URI style is refused and the choices named');
($ret, $out, $err) = $node->psql('postgres',
	"ALTER SYSTEM SET aibackup.s3_endpoint = 'ftp://example.com'");
like($err, qr/invalid value for parameter "aibackup.s3_endpoint".*\n.*DETAIL:.*http/,
	'an endpoint that is not http(s) is refused');
($ret, $out, $err) = $node->psql('postgres',
	"ALTER SYSTEM SET aibackup.compression_level = 10");
like($err, qr/10 is outside the valid range for parameter "aibackup.compression_level" \(0 \.\. 9\)/,
	'a compression level out of range is refused');
($ret, $out, $err) = $node->psql('postgres',
	"ALTER SYSTEM SET aibackup.s3_region = 'eu west'");
like($err, qr/invalid value for parameter "aibackup.s3_region"/, 'a bad region is refused');
is($node->safe_psql('postgres', 'SHOW aibackup.compression_level'), '6',
	'compression level defaults to 6');
is($node->safe_psql('postgres', 'SHOW aibackup.s3_verify_tls'), 'on',
	'TLS verification defaults to on');

# --- secrets are hidden ---
$node->safe_psql('postgres', 'CREATE ROLE alice LOGIN');
is($node->safe_psql('postgres', 'SHOW aibackup.s3_secret_access_key'), '********',
	'a superuser sees the secret masked');
($ret, $out, $err) = $node->psql('postgres', 'SHOW aibackup.s3_secret_access_key',
	extra_params => [ '-U', 'alice' ]);
like($err, qr/must be superuser|permission denied|privileges of pg_read_all_settings/,
	'a plain role cannot read the secret');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_settings WHERE name IN ('aibackup.s3_access_key_id', 'aibackup.s3_secret_access_key', 'aibackup.s3_session_token')",
	extra_params => [ '-U', 'alice' ]), '0',
	'secrets are not listed in pg_settings for a plain role');
unlike($node->safe_psql('postgres', 'SHOW ALL'), qr/s3_secret_access_key/,
	'SHOW ALL does not list the secret');

# a changed secret on reload is not written to the server log
my $log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf',
	"aibackup.s3_secret_access_key = 'Rotated-Secret-XYZ123'\n");
$node->reload;
sleep 1;
$node->append_conf('postgresql.conf',
	"aibackup.s3_secret_access_key = '$ENV{S3_SECRET_KEY}'\n");
$node->reload;
sleep 1;
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/parameter "aibackup.s3_secret_access_key" changed/,
	'the reload of a secret is still logged');
unlike($log, qr/Rotated-Secret-XYZ123|\Q$ENV{S3_SECRET_KEY}\E'/,
	'but the secret itself is not');

# --- presign: AWS's published example ---
$node->append_conf('postgresql.conf', <<'CONF');
aibackup.s3_endpoint = 'https://s3.amazonaws.com'
aibackup.s3_uri_style = 'virtual'
aibackup.s3_bucket = 'examplebucket'
aibackup.s3_region = 'us-east-1'
aibackup.s3_access_key_id = 'AKIAIOSFODNN7EXAMPLE'
aibackup.s3_secret_access_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
CONF
$node->reload;
sleep 1;
is($node->safe_psql('postgres',
	"SELECT aibackup_presign_url('test.txt', '24 hours', '2013-05-24 00:00:00+00')"),
	'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256'
	. '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request'
	. '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host'
	. '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
	'aibackup_presign_url reproduces the AWS documentation example');
($ret, $out, $err) = $node->psql('postgres',
	"SELECT aibackup_presign_url('test.txt', '8 days')");
like($err, qr/expiry must be between 1 second and 7 days/, 'more than 7 days is refused');

# --- presign against the real server ---
$node->append_conf('postgresql.conf', s3_settings(prefix => "presign$$"));
$node->reload;
sleep 1;
my $srcfile = "$ENV{AIBACKUP_TEST_WORK}/presign-src.txt";
open my $fh, '>', $srcfile or die;
print $fh "hello from aibackup\n" x 100;
close $fh;
my $key = "presign$$/a dir/obj+1.txt";
($ret) = aws_cli('s3', 'cp', '--quiet', $srcfile, "s3://$ENV{S3_BUCKET}/$key");
is($ret, 0, 'aws s3 cp uploads a test object');

my $url = $node->safe_psql('postgres', "SELECT aibackup_presign_url('$key')");
my $dl = "$ENV{AIBACKUP_TEST_WORK}/presign-dl.txt";
my $code = `curl -s -o '$dl' -w '%{http_code}' '$url'`;
is($code, '200', 'curl downloads the presigned URL');
is(slurp_file($dl), slurp_file($srcfile), 'and gets the object\'s bytes');

$url = $node->safe_psql('postgres',
	"SELECT aibackup_presign_url('$key', '1 minute', now() - interval '2 minutes')");
$code = `curl -s -o '$dl' -w '%{http_code}' '$url'`;
is($code, '403', 'an expired presigned URL is refused');

# --- privileges ---
($ret, $out, $err) = $node->psql('postgres', "SELECT aibackup_presign_url('x')",
	extra_params => [ '-U', 'alice' ]);
like($err, qr/permission denied for function aibackup_presign_url/,
	'presign is superuser-only by default');
$node->safe_psql('postgres',
	'GRANT EXECUTE ON FUNCTION aibackup_presign_url(text, interval, timestamptz) TO alice');
like($node->safe_psql('postgres', "SELECT aibackup_presign_url('presign$$/postgres/x')",
	extra_params => [ '-U', 'alice' ]), qr/^http:/,
	'and works once granted, for keys of this database');
($ret, $out, $err) = $node->psql('postgres', "SELECT aibackup_presign_url('x')",
	extra_params => [ '-U', 'alice' ]);
like($err, qr/permission denied to sign object key "x"/,
	'a granted role cannot sign keys outside its database\'s folder');

# --- HTTPS: an untrusted certificate is refused unless s3_ca_file names its CA ---
$node->append_conf('postgresql.conf',
	s3_settings(prefix => "tls$$", endpoint => $ENV{S3_HTTPS_ENDPOINT}));
$node->reload;
sleep 1;
($ret, $out, $err) = $node->psql('postgres', 'SELECT aibackup_backup_now()');
like($err, qr/TLS verification failed.*\n(.*\n)*HINT:.*aibackup.s3_ca_file/,
	'HTTPS to a server whose CA is not trusted is refused, with a hint naming s3_ca_file');
$node->append_conf('postgresql.conf', "aibackup.s3_ca_file = '$ENV{S3_OTHER_CA_FILE}'\n");
$node->reload;
sleep 1;
($ret, $out, $err) = $node->psql('postgres', 'SELECT aibackup_backup_now()');
like($err, qr/TLS verification failed/, 'a CA file of another CA is refused too');
$node->append_conf('postgresql.conf', "aibackup.s3_ca_file = '$ENV{S3_CA_FILE}'\n");
$node->reload;
sleep 1;
($ret, $out, $err) = $node->psql('postgres', 'SELECT aibackup_backup_now()');
is($ret, 0, 'with aibackup.s3_ca_file naming the CA, a backup over HTTPS works') or diag($err);
like($node->safe_psql('postgres', 'SELECT backup_id FROM aibackup_list_backups()'),
	qr/^\d{8}T\d{6}Z$/, 'and it is listed');

$node->stop;

# --- S3 functions work when the library is merely loaded ---
my $plain = new_cluster('plain', preload => 0, prefix => "presign$$");
$plain->safe_psql('postgres', 'CREATE EXTENSION aibackup');
$url = $plain->safe_psql('postgres', "SELECT aibackup_presign_url('$key')");
$code = `curl -s -o /dev/null -w '%{http_code}' '$url'`;
is($code, '200', 'presign works without shared_preload_libraries');
$plain->stop;

done_testing();
