#!/usr/bin/perl
# t/harness.pl [pattern] — runs every suite with TAP::Harness and ends with
# one line "N passed, N failed" (test counts over all suites).
use strict;
use warnings;
use TAP::Harness;

my $pattern = $ARGV[0] // '';
my $work = $ENV{AIBACKUP_TEST_WORK} or die "AIBACKUP_TEST_WORK not set\n";

my @tests = (
	[ "$work/bin/test_core",       'unit: sigv4, encoding, xml, digests' ],
	[ "$work/bin/test_streams",    'unit: gzip streams, manifest json' ],
	[ "$work/bin/test_s3_rules",   'unit: retry rules, part sizes, presign' ],
	[ "$work/bin/test_s3_client",  's3 client against Swift' ],
	map { [ $_, $_ ] } sort glob("$work/t/[0-9]*.pl"),
);
@tests = grep { $_->[0] =~ /\Q$pattern\E/ } @tests if $pattern ne '';

my $harness = TAP::Harness->new({
	verbosity => ($ENV{TEST_VERBOSE} ? 1 : 0),
	timer     => 1,
	failures  => 1,
	exec      => sub {
		my ($h, $file) = @_;
		return $file =~ /\.pl$/ ? [ 'perl', $file ] : [ $file ];
	},
});
my $agg = $harness->runtests(map { [ $_->[0], $_->[1] ] } @tests);
my $passed = scalar $agg->passed;
my $failed = scalar $agg->failed;
# a suite that died or planned wrongly counts as a failure too
for my $d ($agg->descriptions) {
	my ($p) = $agg->parsers($d);
	$failed++ if $p->has_problems && !$p->failed;
}
print "$passed passed, $failed failed\n";
exit($failed ? 1 : 0);
