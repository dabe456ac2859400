# Credentials from AWS's chain, with no keys in the settings: environment,
# web identity (STS), the shared files, the container endpoint and IMDSv2,
# each alone and in their order; refresh before expiry and after S3 says
# ExpiredToken; a source that fails says which and shows no secret.  Then
# the S3 options: server-side encryption and storage class (headers present
# and signed, on single PUTs and multipart uploads; Swift refuses them with
# a clear error), a proxy (the setting, and the environment's http_proxy and
# no_proxy), and SHA-256 checks without MD5.
#
# AWS's services cannot be reached from here: t/lib/awsfake.py plays STS,
# the container endpoint, IMDSv2 and a forward proxy on 127.0.0.1, and
# hands out the test S3 server's own key with a session token (Swift
# accepts and ignores the token, so backups go through end to end).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use AibackupTest;

my $work = "$ENV{AIBACKUP_TEST_WORK}/t046-$$";
mkdir $work;
my $http = HTTP::Tiny->new(timeout => 30);

# --- the fakes, and a fault proxy of our own in front of S3 ---

sub start_server
{
	my ($name, @cmd) = @_;
	my $portfile = "$work/$name.port";
	unlink $portfile;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDOUT, '>', "$work/$name.log";
		open STDERR, '>&', \*STDOUT;
		exec @cmd, '--port-file', $portfile;
		exit 127;
	}
	for (1 .. 100)
	{
		last if -s $portfile;
		select(undef, undef, undef, 0.1);
	}
	my $port = slurp_file($portfile);
	chomp $port;
	die "$name did not start" unless $port =~ /^\d+$/;
	return ($pid, $port);
}

my @pids;
END { kill 'TERM', @pids if @pids; }

my $scripts = -d "$FindBin::Bin/../scripts" ? "$FindBin::Bin/../scripts" : "$ENV{AIBACKUP_TEST_WORK}/scripts";
my ($fake_pid, $fake_port) = start_server('awsfake', '/usr/bin/python3',
	"$FindBin::Bin/lib/awsfake.py", '--listen', '127.0.0.1:0',
	'--pidfile', "$work/awsfake.pid", '--access-key', $ENV{S3_ACCESS_KEY},
	'--secret-key', $ENV{S3_SECRET_KEY});
push @pids, $fake_pid;
my $fake = "http://127.0.0.1:$fake_port";
my $s3hostport = $ENV{S3_HTTP_ENDPOINT} =~ s{^http://}{}r;
my ($fault_pid, $fault_port) = start_server('faultproxy', '/usr/bin/python3',
	"$scripts/faultproxy.py", '--listen', '127.0.0.1:0', '--upstream', $s3hostport,
	'--pidfile', "$work/faultproxy.pid");
push @pids, $fault_pid;
my $fault = "http://127.0.0.1:$fault_port";

sub fake_config
{
	my ($cfg) = @_;
	my $r = $http->post("$fake/__fake__/config",
		{ content => encode_json($cfg), headers => { 'Content-Type' => 'application/json' } });
	die "fake config: $r->{status}" unless $r->{success};
}

sub fake_stats
{
	my $r = $http->get("$fake/__fake__/stats");
	die "fake stats: $r->{status}" unless $r->{success};
	return decode_json($r->{content});
}

sub fake_reset { $http->request('DELETE', "$fake/__fake__/stats"); }

sub fault_rule
{
	my ($rule) = @_;
	$http->request('DELETE', "$fault/__fault__");
	$http->post("$fault/__fault__", { content => encode_json($rule) }) if $rule;
}

sub write_file
{
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $text;
	close $fh;
}

# --- a server with no keys in its settings ---

my $home = "$work/home";
mkdir $home;
my $node = new_cluster('creds', no_keys => 1,
	conf => "aibackup.enabled = off\nlog_min_messages = debug1\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION aibackup;
	CREATE TABLE t1 (id int PRIMARY KEY, v text);
	INSERT INTO t1 SELECT i, md5(i::text) FROM generate_series(1, 1000) i;
	CREATE TABLE t2 (id int);
	INSERT INTO t2 SELECT generate_series(1, 50);
	CREATE ROLE plain LOGIN;
});

# Restart with exactly these AWS_* variables (and proxies) in the
# postmaster's environment: a background worker sees only that one.
sub restart_with
{
	my (%env) = @_;
	$node->stop('fast');
	local %ENV = %ENV;
	delete $ENV{$_} for grep { /^AWS_|_proxy$|_PROXY$/ } keys %ENV;
	$ENV{HOME} = $home;
	$ENV{AWS_EC2_METADATA_DISABLED} = 'true';
	for my $k (keys %env)
	{
		if (defined $env{$k}) { $ENV{$k} = $env{$k}; }
		else { delete $ENV{$k}; }
	}
	$node->start;
}

sub set_conf
{
	my ($sql) = @_;
	$node->safe_psql('postgres', "$sql; SELECT pg_reload_conf();");
	# a reload reaches new backends at once, but give the postmaster a moment
	select(undef, undef, undef, 0.3);
}

# back up t1 and t2; (ok, stdout, stderr)
sub backup
{
	my (%o) = @_;
	my $tables = $o{tables} // "ARRAY['t1','t2']";
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT aibackup_backup_now(${tables}::regclass[])");
	return ($ret == 0, $out, $err);
}

sub restored_ok
{
	my ($name) = @_;
	$node->safe_psql('postgres', 'DELETE FROM t2');
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT aibackup_restore_table('public.t2')");
	is($ret == 0 && $node->safe_psql('postgres', 'SELECT count(*) FROM t2') eq '50' ? 1 : 0, 1,
		"$name: a table is restored") or diag($err);
}

my $leaky = qr/\Q$ENV{S3_SECRET_KEY}\E|FAKE-LEAK|FAKE-[a-z]+-\d|tok-secret|auth-secret/;

sub check_failure
{
	my ($name, $err, $pattern) = @_;
	like($err, $pattern, "$name: the error says why");
	unlike($err, $leaky, "$name: no secret in the error");
}

# --- none at all ---
restart_with();
my ($ok, $out, $err) = backup();
ok(!$ok, 'no keys anywhere: the backup fails');
check_failure('no keys', $err, qr/no S3 credentials were found.*HINT:.*aibackup.s3_credential_source/s);

# --- environment ---
restart_with(AWS_ACCESS_KEY_ID => $ENV{S3_ACCESS_KEY}, AWS_SECRET_ACCESS_KEY => $ENV{S3_SECRET_KEY},
	AWS_SESSION_TOKEN => 'env-token');
fake_reset();
($ok, $out, $err) = backup();
ok($ok, 'environment keys: the backup succeeds') or diag($err);
restored_ok('environment');
restart_with(AWS_ACCESS_KEY_ID => $ENV{S3_ACCESS_KEY});
($ok, $out, $err) = backup();
check_failure('a half-set environment', $err, qr/environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together/);
# a line break in a token would start a header of its own
restart_with(AWS_ACCESS_KEY_ID => $ENV{S3_ACCESS_KEY}, AWS_SECRET_ACCESS_KEY => $ENV{S3_SECRET_KEY},
	AWS_SESSION_TOKEN => "tok-secret\r\nX-Injected: 1");
($ok, $out, $err) = backup();
check_failure('a token with a line break', $err, qr/environment: the credentials hold characters no key or token has/);

# --- web identity ---
my $tokfile = "$work/webtoken";
write_file($tokfile, "tok-secret-1\n");
fake_config({ sts => { mode => 'ok', expected_token => 'tok-secret-1' } });
my %web = (AWS_WEB_IDENTITY_TOKEN_FILE => $tokfile,
	AWS_ROLE_ARN => 'arn:aws:iam::123456789012:role/backup',
	AWS_ROLE_SESSION_NAME => 'aibackup-t046', AWS_ENDPOINT_URL_STS => $fake);
restart_with(%web);
fake_reset();
($ok, $out, $err) = backup();
ok($ok, 'web identity: the backup succeeds') or diag($err);
my $st = fake_stats();
cmp_ok($st->{sts}{calls}, '>=', 1, 'web identity: STS was asked');
is($st->{sts}{last_role_arn}, 'arn:aws:iam::123456789012:role/backup', 'web identity: the role ARN is sent');
is($st->{sts}{last_session_name}, 'aibackup-t046', 'web identity: AWS_ROLE_SESSION_NAME is sent');
is($st->{sts}{last_token}, 'tok-secret-1', 'web identity: the token file is sent, without its line break');
restored_ok('web identity');

# the token file rotates: the next run reads the new token
write_file($tokfile, "tok-secret-2");
fake_config({ sts => { expected_token => 'tok-secret-2' } });
($ok, $out, $err) = backup();
ok($ok, 'web identity: a rotated token file works') or diag($err);
is(fake_stats()->{sts}{last_token}, 'tok-secret-2', 'web identity: the new token is read');

fake_config({ sts => { expected_token => 'tok-secret-3' } });
($ok, $out, $err) = backup();
check_failure('web identity refused', $err,
	qr/could not get S3 credentials: web identity: STS answered HTTP 400, InvalidIdentityToken/);
fake_config({ sts => { mode => 'garbage', expected_token => '' } });
($ok, $out, $err) = backup();
check_failure('web identity garbage', $err, qr/web identity: STS answered without Credentials/);
fake_config({ sts => { mode => 'ok' } });

# --- the shared credentials and config files ---
my $credfile = "$work/credentials";
my $cfgfile = "$work/config";
write_file($credfile, <<"EOF");
# comment
[default]
aws_access_key_id = wrong
aws_secret_access_key = wrong

[backup]
aws_access_key_id=$ENV{S3_ACCESS_KEY}
aws_secret_access_key = $ENV{S3_SECRET_KEY}
aws_session_token = profile-token

[halfset]
aws_access_key_id = $ENV{S3_ACCESS_KEY}
EOF
write_file($cfgfile, <<"EOF");
[default]
region = us-east-1

[profile fromconfig]
aws_access_key_id = $ENV{S3_ACCESS_KEY}
aws_secret_access_key = $ENV{S3_SECRET_KEY}

[profile assumed]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = default
EOF
my %files = (AWS_SHARED_CREDENTIALS_FILE => $credfile, AWS_CONFIG_FILE => $cfgfile);
restart_with(%files, AWS_PROFILE => 'backup');
($ok, $out, $err) = backup();
ok($ok, 'profile in the credentials file: the backup succeeds') or diag($err);
restored_ok('profile');
restart_with(%files, AWS_PROFILE => 'fromconfig');
($ok, $out, $err) = backup();
ok($ok, 'profile in the config file: the backup succeeds') or diag($err);
restart_with(%files);
($ok, $out, $err) = backup();
ok(!$ok, 'the default profile, with wrong keys, is used when AWS_PROFILE is unset');
like($err, qr/InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied/, 'the wrong keys reach S3');
restart_with(%files, AWS_PROFILE => 'halfset');
($ok, $out, $err) = backup();
check_failure('a profile without a secret', $err, qr/profile "halfset" has aws_access_key_id but no aws_secret_access_key/);
restart_with(%files, AWS_PROFILE => 'assumed');
($ok, $out, $err) = backup();
check_failure('a role profile', $err, qr/profile "assumed" uses role_arn, which aibackup does not support/);
restart_with(%files, AWS_PROFILE => 'nosuch');
($ok, $out, $err) = backup();
check_failure('a missing profile', $err, qr/profile "nosuch" \(AWS_PROFILE\) is in neither the shared credentials nor the config file/);
# a profile with only a region passes to the next source, as in the SDKs
write_file($cfgfile, slurp_file($cfgfile) . "\n[profile regiononly]\nregion = eu-west-1\n");
restart_with(%files, AWS_PROFILE => 'regiononly',
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$fake/container/creds");
fake_config({ container => { mode => 'ok', auth_token => '' } });
fake_reset();
($ok, $out, $err) = backup();
ok($ok && fake_stats()->{issued}{container} >= 1, 'a profile without keys passes to the container endpoint') or diag($err);
# a role profile in the credentials file is refused too, not passed over
write_file("$work/credentials-role", "[default]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = base\n");
restart_with(AWS_SHARED_CREDENTIALS_FILE => "$work/credentials-role",
	AWS_CONTAINER_CREDENTIALS_FULL_URI => "$fake/container/creds");
($ok, $out, $err) = backup();
check_failure('a role profile in the credentials file', $err, qr/profile "default" uses role_arn/);
# keys beside a role: the CLI would assume the role, so aibackup refuses
write_file("$work/config-role", "[default]\nrole_arn = arn:aws:iam::1:role/x\n");
write_file("$work/credentials-keys", "[default]\naws_access_key_id = $ENV{S3_ACCESS_KEY}\n"
	. "aws_secret_access_key = $ENV{S3_SECRET_KEY}\n");
restart_with(AWS_SHARED_CREDENTIALS_FILE => "$work/credentials-keys", AWS_CONFIG_FILE => "$work/config-role");
($ok, $out, $err) = backup();
check_failure('keys beside a role in the config file', $err, qr/profile "default" uses role_arn/);
# a file too big to read whole is an error, never read in part
write_file("$work/credentials-big", "[default]\n" . ("# padding\n" x 110000)
	. "aws_access_key_id = $ENV{S3_ACCESS_KEY}\naws_secret_access_key = $ENV{S3_SECRET_KEY}\n");
restart_with(AWS_SHARED_CREDENTIALS_FILE => "$work/credentials-big");
($ok, $out, $err) = backup();
check_failure('a credentials file over 1 MB', $err, qr/AWS_SHARED_CREDENTIALS_FILE ".*" is larger than 1 MB/);
# a value longer than any line buffer is read whole (Swift ignores the token)
write_file("$work/credentials-long", "[default]\naws_access_key_id = $ENV{S3_ACCESS_KEY}\n"
	. "aws_secret_access_key = $ENV{S3_SECRET_KEY}\naws_session_token = " . ('T' x 6000) . "\n");
restart_with(AWS_SHARED_CREDENTIALS_FILE => "$work/credentials-long");
($ok, $out, $err) = backup();
ok($ok, 'a 6,000-byte session token in the credentials file works') or diag($err);
# ~/.aws of the server's user is found without variables
mkdir "$home/.aws";
write_file("$home/.aws/credentials", "[default]\naws_access_key_id = $ENV{S3_ACCESS_KEY}\naws_secret_access_key = $ENV{S3_SECRET_KEY}\n");
restart_with();
($ok, $out, $err) = backup();
ok($ok, '~/.aws/credentials of the server\'s user is used') or diag($err);
unlink "$home/.aws/credentials";

# --- the container endpoint ---
my $authfile = "$work/container-auth";
write_file($authfile, "auth-secret-1\n");
fake_config({ container => { mode => 'ok', auth_token => 'auth-secret-1' } });
my %container = (AWS_CONTAINER_CREDENTIALS_FULL_URI => "$fake/container/creds",
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE => $authfile);
restart_with(%container);
fake_reset();
($ok, $out, $err) = backup();
ok($ok, 'container endpoint: the backup succeeds') or diag($err);
$st = fake_stats();
cmp_ok($st->{issued}{container}, '>=', 1, 'container endpoint: credentials were issued');
is($st->{container}{last_authorization}, 'auth-secret-1', 'container endpoint: the token file is sent as Authorization');
restored_ok('container endpoint');
write_file($authfile, "auth-secret-2");
fake_config({ container => { auth_token => 'auth-secret-2' } });
($ok, $out, $err) = backup();
ok($ok, 'container endpoint: a rotated token file works') or diag($err);
restart_with(AWS_CONTAINER_CREDENTIALS_FULL_URI => "$fake/container/creds",
	AWS_CONTAINER_AUTHORIZATION_TOKEN => 'auth-secret-2', http_proxy => $fake);
fake_reset();
($ok, $out, $err) = backup();
ok($ok, 'container endpoint: AWS_CONTAINER_AUTHORIZATION_TOKEN works') or diag($err);
$st = fake_stats();
ok($st->{container}{gets} >= 1 && !grep({ $_->{path} =~ m{/container/} } @{ $st->{proxy}{recent} }),
	'container endpoint: reached directly, never through the environment\'s proxy (its token stays on the host)');
for my $case ([ '401', qr/container endpoint: the container endpoint answered HTTP 401/ ],
	[ '500', qr/container endpoint: the container endpoint answered HTTP 500/ ],
	[ 'garbage', qr/container endpoint: the container endpoint did not answer with a JSON object/ ],
	[ 'expired', qr/container endpoint: the credentials it gave had expired already/ ])
{
	fake_config({ container => { mode => $case->[0] } });
	($ok, $out, $err) = backup();
	ok(!$ok, "container endpoint answering $case->[0]: the backup fails");
	check_failure("container endpoint answering $case->[0]", $err, $case->[1]);
}
fake_config({ container => { mode => 'ok' } });
for my $uri ('http://192.0.2.1/creds', 'http://127.0.0.1@192.0.2.1/creds',
	'http://localhost:80@192.0.2.1/creds', 'http://127.0.0.1.192.0.2.1.invalid/creds')
{
	restart_with(AWS_CONTAINER_CREDENTIALS_FULL_URI => $uri);
	($ok, $out, $err) = backup();
	check_failure("a container URI off loopback over http ($uri)", $err,
		qr/AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address/);
}

# --- IMDSv2 ---
my %imds = (AWS_EC2_METADATA_DISABLED => undef, AWS_EC2_METADATA_SERVICE_ENDPOINT => $fake);
fake_config({ imds => { mode => 'ok' } });
restart_with(%imds);
fake_reset();
($ok, $out, $err) = backup();
ok($ok, 'IMDSv2: the backup succeeds') or diag($err);
$st = fake_stats();
cmp_ok($st->{imds}{token_puts}, '>=', 1, 'IMDSv2: a session token was asked for first');
ok($st->{imds}{list_gets} >= 1 && $st->{imds}{cred_gets} >= 1, 'IMDSv2: the role, then its credentials');
is($st->{imds}{unauthorized}, 0, 'IMDSv2: every request carried the token');
restored_ok('IMDSv2');
fake_config({ imds => { mode => 'v1only' } });
($ok, $out, $err) = backup();
check_failure('IMDS without v2', $err, qr/instance metadata: .*offers no IMDSv2 token.*aibackup.s3_imds_v1/);
set_conf("ALTER SYSTEM SET aibackup.s3_imds_v1 = on");
($ok, $out, $err) = backup();
ok($ok, 'IMDSv1, once allowed: the backup succeeds') or diag($err);
set_conf("ALTER SYSTEM RESET aibackup.s3_imds_v1");
fake_config({ imds => { mode => 'ok' } });
restart_with(AWS_EC2_METADATA_SERVICE_ENDPOINT => $fake);
set_conf("ALTER SYSTEM SET aibackup.s3_credential_source = 'imds'");
($ok, $out, $err) = backup();
check_failure('IMDS pinned but disabled', $err, qr/instance metadata: disabled by AWS_EC2_METADATA_DISABLED/);
set_conf("ALTER SYSTEM RESET aibackup.s3_credential_source");

# --- the order, and a pinned source ---
restart_with(%imds, %container, AWS_ACCESS_KEY_ID => $ENV{S3_ACCESS_KEY},
	AWS_SECRET_ACCESS_KEY => $ENV{S3_SECRET_KEY});
fake_reset();
($ok, $out, $err) = backup();
$st = fake_stats();
ok($ok && $st->{issued}{container} == 0 && $st->{imds}{token_puts} == 0,
	'environment keys come before the container endpoint and IMDS') or diag($err);
restart_with(%imds, %container, %web);
fake_config({ sts => { mode => 'ok', expected_token => '' } });
fake_reset();
($ok, $out, $err) = backup();
$st = fake_stats();
ok($ok && $st->{sts}{calls} >= 1 && $st->{issued}{container} == 0,
	'web identity comes before the container endpoint') or diag($err);
restart_with(%imds, %container);
fake_reset();
($ok, $out, $err) = backup();
$st = fake_stats();
ok($ok && $st->{issued}{container} >= 1 && $st->{imds}{token_puts} == 0,
	'the container endpoint comes before IMDS') or diag($err);
set_conf("ALTER SYSTEM SET aibackup.s3_credential_source = 'imds'");
fake_reset();
($ok, $out, $err) = backup();
$st = fake_stats();
ok($ok && $st->{imds}{token_puts} >= 1 && $st->{issued}{container} == 0,
	'a pinned source is the one used') or diag($err);
set_conf("ALTER SYSTEM SET aibackup.s3_credential_source = 'settings'");
($ok, $out, $err) = backup();
check_failure('settings pinned, none set', $err, qr/settings: the access key id and the secret access key must both be set/);
set_conf("ALTER SYSTEM RESET aibackup.s3_credential_source");

# --- refresh: credentials that expire during the backup ---
# Credentials that live 2 seconds are always inside the refresh window: a
# new set before every request.  A table of more than one 16 MB part takes
# a multipart upload.
$node->safe_psql('postgres', q{
	CREATE TABLE big AS SELECT i, md5(i::text) || md5((i * 7)::text) AS v
	FROM generate_series(1, 600000) i});
restart_with(%container);
fake_config({ container => { mode => 'ok', ttl => 2 } });
fake_reset();
($ok, $out, $err) = backup(tables => "ARRAY['big','t1','t2']");
$st = fake_stats();
ok($ok, 'short-lived credentials: the backup completes') or diag($err);
cmp_ok($st->{issued}{container}, '>=', 4, 'short-lived credentials: refreshed during the backup');
fake_config({ container => { ttl => 3600 } });

# S3 says ExpiredToken once: new credentials, and the request is retried
$node->safe_psql('postgres', "ALTER SYSTEM SET aibackup.s3_endpoint = '$fault'");
$node->reload;
fault_rule({ match => 'PUT', action => 'status', status => 400, code => 'ExpiredToken',
	message => 'The provided token has expired.', count => 1 });
fake_reset();
($ok, $out, $err) = backup();
$st = fake_stats();
ok($ok, 'ExpiredToken from S3: the backup completes') or diag($err);
cmp_ok($st->{issued}{container}, '>=', 2, 'ExpiredToken from S3: new credentials were fetched');
fault_rule({ match => 'PUT', action => 'status', status => 400, code => 'ExpiredToken',
	message => 'The provided token has expired.', count => -1 });
($ok, $out, $err) = backup();
ok(!$ok, 'ExpiredToken on every try: the backup fails');
like($err, qr/ExpiredToken/, 'ExpiredToken on every try: the error says so');
fault_rule(undef);
$node->safe_psql('postgres', "ALTER SYSTEM SET aibackup.s3_endpoint = '$ENV{S3_HTTP_ENDPOINT}'");
$node->reload;

# presigned URLs carry the session token, and say when they stop working
my ($r2, $o2, $e2) = $node->psql('postgres',
	"SELECT aibackup_presign_url('x/y.csv.gz', interval '2 days')");
like($o2, qr/X-Amz-Security-Token=FAKE-container-\d+/, 'a presigned URL carries the session token');
like($e2, qr/WARNING:  presigned URLs stop working at .*, before they expire/,
	'a presigned URL outliving its credentials is flagged');

# --- the S3 options, seen through the forward proxy ---
restart_with(AWS_ACCESS_KEY_ID => $ENV{S3_ACCESS_KEY}, AWS_SECRET_ACCESS_KEY => $ENV{S3_SECRET_KEY});
set_conf("ALTER SYSTEM SET aibackup.s3_proxy = 'http://user:pw-secret\@127.0.0.1:$fake_port'");
fake_reset();
($ok, $out, $err) = backup();
$st = fake_stats();
ok($ok, 'through aibackup.s3_proxy: the backup succeeds') or diag($err);
cmp_ok($st->{proxy}{requests}, '>=', 3, 'through aibackup.s3_proxy: S3 requests went through the proxy');
is($node->safe_psql('postgres', 'SHOW aibackup.s3_proxy'), "http://********\@127.0.0.1:$fake_port",
	'SHOW masks the proxy password');
($r2, $o2, $e2) = $node->psql('postgres', 'SHOW aibackup.s3_proxy', extra_params => [ '-U', 'plain' ]);
like($e2, qr/permission denied|must be superuser|pg_read_all_settings/, 'a plain role cannot see the proxy');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_settings WHERE name = 'aibackup.s3_proxy'"), '0',
	'pg_settings does not list the proxy (its reset_val would show the password)');
# (a CopyObject of an unchanged table is a PUT without a body: no checksum)
my @puts = grep { $_->{method} eq 'PUT' && !exists $_->{headers}{'x-amz-copy-source'} }
  @{ $st->{proxy}{recent} };
ok(@puts && !grep({ !exists $_->{headers}{'content-md5'} } @puts), 'by default, PUTs carry Content-MD5');

set_conf("ALTER SYSTEM SET aibackup.s3_checksum = 'sha256'");
fake_reset();
($ok, $out, $err) = backup();
$st = fake_stats();
ok($ok, 'checksum sha256: the backup succeeds') or diag($err);
@puts = grep { $_->{method} eq 'PUT' && !exists $_->{headers}{'x-amz-copy-source'} }
  @{ $st->{proxy}{recent} };
ok(@puts && !grep({ exists $_->{headers}{'content-md5'} } @puts), 'checksum sha256: no Content-MD5 is sent');
set_conf("ALTER SYSTEM RESET aibackup.s3_checksum");

set_conf("ALTER SYSTEM SET aibackup.s3_sse = 'AES256'");
fake_reset();
($ok, $out, $err) = backup(tables => "ARRAY['t2']");
check_failure('SSE on a store without it', $err, qr/NotImplemented.*HINT:.*aibackup.s3_sse/s);
$st = fake_stats();
my ($put) = grep { $_->{method} eq 'PUT' && $_->{path} =~ /t2\.csv\.gz/ } @{ $st->{proxy}{recent} };
is($put && $put->{headers}{'x-amz-server-side-encryption'}, 'AES256', 'SSE: a single PUT carries the header');
like($put && $put->{headers}{authorization}, qr/x-amz-server-side-encryption/, 'SSE: the header is signed');
fake_reset();
($ok, $out, $err) = backup(tables => "ARRAY['big']");
$st = fake_stats();
my ($create) = grep { $_->{method} eq 'POST' && $_->{path} =~ /big\.csv\.gz\?uploads/ } @{ $st->{proxy}{recent} };
is($create && $create->{headers}{'x-amz-server-side-encryption'}, 'AES256',
	'SSE: CreateMultipartUpload carries the header');
like($create && $create->{headers}{authorization}, qr/x-amz-server-side-encryption/, 'SSE: signed there too');
set_conf("ALTER SYSTEM SET aibackup.s3_sse = 'aws:kms'; ALTER SYSTEM SET aibackup.s3_sse_kms_key_id = 'alias/backups'");
fake_reset();
($ok, $out, $err) = backup(tables => "ARRAY['t2']");
$st = fake_stats();
($put) = grep { $_->{method} eq 'PUT' && $_->{path} =~ /t2\.csv\.gz/ } @{ $st->{proxy}{recent} };
is($put && $put->{headers}{'x-amz-server-side-encryption-aws-kms-key-id'}, 'alias/backups',
	'SSE-KMS: the key id is sent');
set_conf("ALTER SYSTEM RESET aibackup.s3_sse");
($ok, $out, $err) = backup(tables => "ARRAY['t2']");
check_failure('a KMS key without aws:kms', $err,
	qr/aibackup.s3_sse_kms_key_id is set but aibackup.s3_sse is not "aws:kms"/);
set_conf("ALTER SYSTEM RESET aibackup.s3_sse_kms_key_id");
($r2, $o2, $e2) = $node->psql('postgres', "ALTER SYSTEM SET aibackup.s3_sse = 'aes256'");
like($e2, qr/invalid value for parameter "aibackup.s3_sse"/, 'a misspelt SSE mode is refused');

set_conf("ALTER SYSTEM SET aibackup.s3_storage_class = 'STANDARD_IA'");
($ok, $out, $err) = backup(tables => "ARRAY['t2']");
check_failure('a storage class the store lacks', $err, qr/InvalidStorageClass.*HINT:.*aibackup.s3_storage_class/s);
set_conf("ALTER SYSTEM SET aibackup.s3_storage_class = 'STANDARD'");
fake_reset();
($ok, $out, $err) = backup(tables => "ARRAY['t2']");
$st = fake_stats();
($put) = grep { $_->{method} eq 'PUT' && $_->{path} =~ /t2\.csv\.gz/ } @{ $st->{proxy}{recent} };
ok($ok && $put && $put->{headers}{'x-amz-storage-class'} eq 'STANDARD', 'storage class STANDARD: sent and accepted') or diag($err);
set_conf("ALTER SYSTEM RESET aibackup.s3_storage_class");
($r2, $o2, $e2) = $node->psql('postgres', "ALTER SYSTEM SET aibackup.s3_storage_class = 'GLACIER'");
like($e2, qr/invalid value for parameter "aibackup.s3_storage_class".*cannot be read until they are restored/s,
	'GLACIER is refused: aibackup could not restore from it');

set_conf("ALTER SYSTEM SET aibackup.s3_proxy = 'ftp://user:pw-secret\@127.0.0.1:1'");
($ok, $out, $err) = backup();
check_failure('a proxy that is not a URL', $err, qr/aibackup.s3_proxy is not a proxy URL/);
unlike($err, qr/pw-secret/, 'a bad proxy URL is not quoted');
set_conf("ALTER SYSTEM RESET aibackup.s3_proxy");

# the environment's proxy variables, as libcurl reads them
restart_with(AWS_ACCESS_KEY_ID => $ENV{S3_ACCESS_KEY}, AWS_SECRET_ACCESS_KEY => $ENV{S3_SECRET_KEY},
	http_proxy => $fake);
fake_reset();
($ok, $out, $err) = backup();
ok($ok && fake_stats()->{proxy}{requests} >= 3, 'http_proxy in the environment is honoured') or diag($err);
restart_with(AWS_ACCESS_KEY_ID => $ENV{S3_ACCESS_KEY}, AWS_SECRET_ACCESS_KEY => $ENV{S3_SECRET_KEY},
	http_proxy => $fake, no_proxy => '127.0.0.1');
fake_reset();
($ok, $out, $err) = backup();
ok($ok && fake_stats()->{proxy}{requests} == 0, 'no_proxy in the environment is honoured') or diag($err);

# nothing secret reached the server log
my $log = slurp_file($node->logfile);
unlike($log, $leaky, 'no key, token or secret in the server log');
unlike($log, qr/pw-secret/, 'no proxy password in the server log');

$node->stop;
done_testing();
