#!/usr/bin/perl
# t/harness.pl [pattern] — runs every suite with TAP::Harness and ends with
# one line "N passed, N failed" (test counts over all suites).
use strict;
use warnings;
use TAP::Harness;
use TAP::Parser::Aggregator;

my $pattern = $ARGV[0] // '';
my $work = $ENV{AIBACKUP_TEST_WORK} or die "AIBACKUP_TEST_WORK not set\n";

my @tests = (
	[ "$work/bin/test_core",       'unit: sigv4, encoding, xml, digests' ],
	[ "$work/bin/test_streams",    'unit: gzip streams, manifest json' ],
	[ "$work/bin/test_s3_rules",   'unit: retry rules, part sizes, presign' ],
	[ "$work/bin/test_core.san",     'unit under ASan+UBSan: sigv4, xml, digests' ],
	[ "$work/bin/test_streams.san",  'unit under ASan+UBSan: gzip, manifest json' ],
	[ "$work/bin/test_streams.tsan", 'unit under TSan: the gzip tests (the deflater\'s thread)' ],
	[ "$work/bin/test_s3_rules.san", 'unit under ASan+UBSan: retry rules, presign' ],
	[ "$work/scripts/fuzz.sh",       'fuzz: manifest, index, json, xml readers (libFuzzer)' ],
	[ "$work/bin/test_s3_client",  's3 client against Swift' ],
	[ "$work/bin/test_s3_client.tsan", 's3 client under TSan: the reader (its prefetch thread)' ],
	[ "$work/bin/test_s3_limits",  's3 limits against Swift: key length, parts, per-object errors' ],
	[ "$work/scripts/indent-check.tap", 'layout: the C sources are pgindent-clean' ],
	# the TAP suites: once per server flavour, below
);
# AIBACKUP_HOST_SUITES=0: only the per-flavour suites (scripts/chroot-pg.sh
# runs 17's in a chroot; the suites above ran on the host already)
@tests = () if ($ENV{AIBACKUP_HOST_SUITES} // '1') eq '0';
# The TAP suites once per server flavour (scripts/test.sh and
# scripts/run-suites.sh set AIBACKUP_FLAVOURS and each flavour's environment,
# AIBACKUP_FL_<name>_*); "<name>:" marks them for exec below, and the
# pg_regress suite (scripts/installcheck.sh) runs in each flavour too.
my @flavours = split ' ', ($ENV{AIBACKUP_FLAVOURS} // '');
my @suites = sort glob("$work/t/[0-9]*.pl");
for my $f (@flavours)
{
	my ($name, undef, $status) = split /:/, $f;
	if ($status eq 'failed')
	{
		# a flavour that did not build is a failure whatever the pattern
		push @tests, [ "$name:build-failed", "$name: build of the server or the extension" ];
		next;
	}
	push @tests, map { [ "$name:$_", "$name: t/" . (split m{/}, $_)[-1] ] } @suites;
	push @tests, [ "$name:$work/scripts/installcheck.sh", "$name: make installcheck (pg_regress)" ]
	  if -e "$work/scripts/installcheck.sh";
}
# the pattern is matched against the file's name (flavour kept), not the
# work folder's, whose random name could match anything
@tests = grep {
	$_->[0] =~ /build-failed$/
	  || ($_->[0] =~ s{^([\w-]+:)?.*/}{$1 // ''}er) =~ /\Q$pattern\E/
} @tests
  if $pattern ne '';

# A flavour's status: ok or failed, waiting for a pending one's build (in
# the background, scripts/test.sh) to write its status file.
my %status = map { my ($n, undef, $st) = split /:/; ($n => $st) } @flavours;
sub flavour_status
{
	my ($name) = @_;
	my $file = "$ENV{AIBACKUP_BUILDS}/$name";
	my $waited = 0;
	while ($status{$name} eq 'pending')
	{
		if (open my $fh, '<', $file)
		{
			chomp($status{$name} = <$fh> // 'failed');
			print "# $name: server and extension built ($waited s waited)\n";
			last;
		}
		print "# waiting for the $name server and extension to build\n" if $waited == 0;
		# a builder that is gone wrote its files, or never will (killed);
		# and an hour is far beyond any build: something hangs
		my $pid = $ENV{AIBACKUP_BUILDER} // '';
		my $gone = $pid =~ /^\d+$/ && !kill(0, $pid) && $!{ESRCH};
		if (($gone && !-e $file) || $waited >= 3600)
		{
			print "# the $name build ended without a status: counted as failed\n";
			$status{$name} = 'failed';
			last;
		}
		next if $gone;			# read the file it left at once
		sleep 5;
		$waited += 5;
	}
	return $status{$name};
}

my $harness = TAP::Harness->new({
	verbosity => ($ENV{TEST_VERBOSE} ? 1 : 0),
	timer     => 1,
	failures  => 1,
	exec      => sub {
		my ($h, $file) = @_;
		if ($file =~ /^([\w-]+):build-failed$/)
		{
			return [ 'perl', '-e',
				"print qq(1..1\\nnot ok 1 - the $1 server or aibackup built against it (see scripts/test.sh output)\\n)" ];
		}
		if ($file =~ s/^([\w-]+)://)
		{
			my $name = $1;
			my $v = 'AIBACKUP_FL_' . ($name =~ tr/-/_/r);
			if (flavour_status($name) ne 'ok')
			{
				return [ 'perl', '-e',
					"print qq(1..1\\nnot ok 1 - the $name server or aibackup built against it (see scripts/test.sh output)\\n)" ];
			}
			my @env = map { "$_=" . $ENV{"${v}_$_"} } qw(PATH PERL5LIB PG_REGRESS PG_CONFIG);
			push @env, "TESTDIR=$ENV{\"${v}_WORK\"}/tap", "AIBACKUP_TEST_WORK=$ENV{\"${v}_WORK\"}";
			return [ '/usr/bin/env', @env, 'perl', $file ] if $file =~ /\.pl$/;
			# scripts/installcheck.sh PREFIX WORKDIR (PREFIX/bin/pg_config)
			my $prefix = $ENV{"${v}_PG_CONFIG"} =~ s{/bin/pg_config$}{}r;
			return [ '/usr/bin/env', @env, 'bash', $file, $prefix, "$ENV{\"${v}_WORK\"}/regress" ];
		}
		return [ 'perl', $file ] if $file =~ /\.pl$/;
		return [ 'bash', $file ] if $file =~ /\.(tap|sh)$/;
		return [ $file ];
	},
});
# One suite at a time into one aggregator, not runtests(): a suite that bails
# out (PostgreSQL::Test::Cluster does when a crashed server cannot be stopped,
# the very thing the assert flavour is there to catch) makes TAP::Harness die
# and skip every later suite and the last line.  Its counts are already in
# $agg when it dies; its missing plan counts it as failed below.
my $agg = TAP::Parser::Aggregator->new;
$agg->start;
for my $t (@tests)
{
	eval { $harness->aggregate_tests($agg, [ $t->[0], $t->[1] ]); 1 }
	  or print "# $t->[1]: $@# continuing with the other suites\n";
}
$agg->stop;
# nothing selected is not a pass, except in one part of a run that has
# another (AIBACKUP_PART, scripts/test.sh with 17: the total decides)
if (!@tests)
{
	print "# no suite matches \"$pattern\"\n";
	print $ENV{AIBACKUP_PART} ? "0 passed, 0 failed\n" : "0 passed, 1 failed\n";
	exit($ENV{AIBACKUP_PART} ? 0 : 1);
}
# each aggregate_tests() sized the name column for its one suite; the
# summary's table needs the longest name of all
$harness->formatter->prepare(map { $_->[1] } @tests);
$harness->summary($agg);
my $passed = scalar $agg->passed;
my $failed = scalar $agg->failed;
# a suite that died or planned wrongly counts as a failure too
for my $d ($agg->descriptions) {
	my ($p) = $agg->parsers($d);
	$failed++ if $p->has_problems && !$p->failed;
}
print "$passed passed, $failed failed\n";
exit($failed ? 1 : 0);
