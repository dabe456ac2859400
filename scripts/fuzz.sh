#!/bin/bash
# scripts/fuzz.sh [seconds] — run the libFuzzer targets of test/fuzz/ (the
# manifest, JSON and XML readers) for a fixed time each and print TAP: one
# line per target, "not ok" with the saved input when one crashed, leaked,
# hung or broke an invariant.
#
#   scripts/fuzz.sh                       20 s per target (the test suite's run)
#   scripts/fuzz.sh 600                   a longer hunt
#   FUZZ_TARGETS=xml scripts/fuzz.sh 60   one target
#   FUZZ_OUT=/tmp/fz scripts/fuzz.sh 600  keep (and reuse) corpus and logs
#
# From a checkout it builds the targets first (make fuzzbin: clang-14 and
# libclang-rt-14-dev) and seeds them from test/fuzz/corpus/<target>/.  Under
# the test harness (AIBACKUP_TEST_WORK set) it uses what scripts/test.sh
# copied into the work directory: binaries in bin/, seeds and dictionaries
# in fuzz/.  New corpus entries and crash inputs go to a scratch directory,
# never into the checked-in seeds.  The seed of the mutations is fixed
# (FUZZ_SEED, default 1), so a run is repeatable as far as timing allows.
#
# Reproduce a failure with the binary and the input it names:
#	test/fuzz/fuzz_xml /path/to/crash-<sha1>
set -uo pipefail

SECS=${1:-20}
SEED=${FUZZ_SEED:-1}
TARGETS=${FUZZ_TARGETS:-manifest json xml index}

if [ -n "${AIBACKUP_TEST_WORK:-}" ]; then
	BIN=$AIBACKUP_TEST_WORK/bin
	DATA=$AIBACKUP_TEST_WORK/fuzz
	OUT=${FUZZ_OUT:-$AIBACKUP_TEST_WORK/fuzz/out}
else
	REPO=$(cd "$(dirname "$0")/.." && pwd)
	BIN=$REPO/test/fuzz
	DATA=$REPO/test/fuzz
	if ! make -s -C "$REPO" PG_CONFIG="${PG_CONFIG:-pg_config}" fuzzbin >&2; then
		echo "1..1"
		echo "not ok 1 - building the fuzz targets (make fuzzbin) failed"
		exit 1
	fi
	OUT=${FUZZ_OUT:-$(mktemp -d /tmp/aibackup-fuzz.XXXXXX)}
fi
mkdir -p "$OUT"

# symbolized reports; the first sanitizer finding stops the run
if [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
	export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

set -- $TARGETS
echo "1..$#"
n=0
failed=0
for t in "$@"; do
	n=$((n + 1))
	exe=$BIN/fuzz_$t
	dir=$OUT/$t
	log=$dir/fuzz.log
	mkdir -p "$dir/corpus"
	if [ ! -x "$exe" ]; then
		echo "not ok $n - fuzz_$t: no binary $exe (make fuzzbin)"
		failed=$((failed + 1))
		continue
	fi

	# the manifest target gets the JSON tokens too
	dict=$dir/dict
	cat "$DATA/$t.dict" >"$dict" 2>/dev/null
	[ "$t" = manifest ] || [ "$t" = index ] && cat "$DATA/json.dict" >>"$dict" 2>/dev/null

	start=$(date +%s)
	"$exe" -seed="$SEED" -max_total_time="$SECS" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -dict="$dict" \
		-artifact_prefix="$dir/" "$dir/corpus" "$DATA/corpus/$t" \
		>"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))

	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	if [ $rc -eq 0 ] && [ -z "$artifact" ]; then
		size=$(find "$dir/corpus" -type f | wc -l)
		echo "ok $n - fuzz_$t: ${runs:-?} runs in $took s (${rate:-?} exec/s), corpus $size"
	else
		failed=$((failed + 1))
		what=$(grep -m 1 -E 'invariant failed|runtime error|ERROR:' "$log")
		echo "not ok $n - fuzz_$t: exit $rc after $took s: ${what:-see the log}"
		echo "#   crash file: ${artifact:-(none written)}"
		echo "#   log: $log"
		echo "#   reproduce: $exe ${artifact:-<input>}"
		# the report itself: from the first error line to its SUMMARY
		awk '/invariant failed|runtime error|ERROR:/ { p = 1 }
			 p { print }
			 /^SUMMARY:/ { exit }' "$log" | head -n 40 | sed 's/^/#   /'
	fi
done

if [ $failed -gt 0 ] || [ -n "${FUZZ_OUT:-}" ]; then
	echo "# fuzz output kept in $OUT"
elif [ -z "${AIBACKUP_TEST_WORK:-}" ]; then
	rm -rf "$OUT"
fi
[ $failed -eq 0 ]
