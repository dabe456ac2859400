#!/bin/bash
# scripts/test.sh — the whole test suite, from a fresh Debian 12 machine.
#
# As root: installs the Debian packages it needs (scripts/deps.sh), builds
# and installs the extension, then runs every suite as the unprivileged
# "postgres" user (initdb and the TAP framework refuse root) in a scratch
# directory: the pure-C unit tests, the S3 client against a real S3 server
# (Swift's s3api on 127.0.0.1, HTTP and HTTPS) and through a fault proxy, and
# the SQL/TAP suites against a real PostgreSQL 15 with the extension
# preloaded.  Servers it starts it stops, by PID.  The last line is
# "N passed, N failed".
#
# The TAP suites (t/0*.pl) run twice: against Debian's PostgreSQL 15, and
# against an assert-enabled build of the same source package
# (scripts/assert-pg.sh, cached under /opt/aibackup-pg15-assert), which
# catches use-after-free and broken invariants at once.  AIBACKUP_NO_ASSERT=1
# skips that second flavour for a quick local run; CI never sets it.  If the
# assert build fails, the run counts a failure rather than skipping it.
#
# Usage: scripts/test.sh [test-file-pattern]
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test.sh must run as root (it installs packages and the extension)" >&2
	exit 2
fi

bash scripts/deps.sh

export PATH=/usr/lib/postgresql/15/bin:$PATH
make -s PG_CONFIG=/usr/bin/pg_config all >/dev/null
make -s PG_CONFIG=/usr/bin/pg_config install >/dev/null
make -s PG_CONFIG=/usr/bin/pg_config testbin sanbin fuzzbin >/dev/null

# The assert-enabled server, and the extension built against it out of tree
# (a copy of the sources without the repo's objects, which were compiled
# against the system headers), so the build in the repo stays as it is.
ASSERT_PREFIX=${AIBACKUP_ASSERT_PREFIX:-/opt/aibackup-pg15-assert}
export AIBACKUP_ASSERT_PREFIX=$ASSERT_PREFIX
ASSERT=off
if [ -n "${AIBACKUP_NO_ASSERT:-}" ]; then
	echo "AIBACKUP_NO_ASSERT set: the assert-enabled flavour of the TAP suites is skipped"
else
	ASSERT=failed
	t0=$SECONDS
	if bash scripts/assert-pg.sh; then
		EXT_BUILD=$(mktemp -d /var/tmp/aibackup-assert-ext.XXXXXX)
		cp -a Makefile aibackup.control src sql "$EXT_BUILD/"
		find "$EXT_BUILD/src" \( -name '*.o' -o -name '*.so' -o -name '*.bc' \) -delete
		if make -s -C "$EXT_BUILD" PG_CONFIG="$ASSERT_PREFIX/bin/pg_config" all >"$EXT_BUILD.log" 2>&1 &&
			make -s -C "$EXT_BUILD" PG_CONFIG="$ASSERT_PREFIX/bin/pg_config" install >>"$EXT_BUILD.log" 2>&1; then
			ASSERT=ok
			rm -f "$EXT_BUILD.log"
		else
			tail -n 40 "$EXT_BUILD.log" >&2
			echo "building aibackup against $ASSERT_PREFIX failed (log: $EXT_BUILD.log)" >&2
		fi
		rm -rf "$EXT_BUILD"
	else
		echo "scripts/assert-pg.sh failed: the assert-enabled flavour will count as a failure" >&2
	fi
	echo "assert-enabled server and extension: $ASSERT ($((SECONDS - t0)) s)"
fi

# a scratch copy the postgres user can read and write
WORK=$(mktemp -d /tmp/aibackup-test.XXXXXX)
cp -a scripts t "$WORK"/
mkdir -p "$WORK/bin"
cp test/unit/test_core test/unit/test_streams test/unit/test_s3_rules \
	test/s3/test_s3_client test/s3/test_s3_limits test/unit/test_core.san test/unit/test_streams.san \
	test/unit/test_s3_rules.san test/fuzz/fuzz_manifest test/fuzz/fuzz_json \
	test/fuzz/fuzz_xml test/fuzz/fuzz_index "$WORK/bin/"
mkdir -p "$WORK/fuzz"
cp -a test/fuzz/corpus test/fuzz/*.dict "$WORK/fuzz/"
chown -R postgres:postgres "$WORK"

set +e
runuser -u postgres -- env -i PATH="$PATH" HOME="$WORK" LANG=C.UTF-8 \
	AIBACKUP_ASSERT="$ASSERT" AIBACKUP_ASSERT_PREFIX="$ASSERT_PREFIX" \
	bash "$WORK/scripts/run-suites.sh" "$WORK" "${1:-}"
rc=$?
set -e
if [ $rc -eq 0 ] && [ -z "${KEEP_TEST_DIR:-}" ]; then
	rm -rf "$WORK"
else
	echo "test work directory kept: $WORK"
fi
exit $rc
