#!/bin/bash
# scripts/test.sh — the whole test suite, from a fresh Debian 12 machine.
#
# As root: installs the Debian packages it needs (scripts/deps.sh), builds
# and installs the extension, then runs every suite as the unprivileged
# "postgres" user (initdb and the TAP framework refuse root) in a scratch
# directory: the pure-C unit tests, the S3 client against a real S3 server
# (Swift's s3api on 127.0.0.1, HTTP and HTTPS) and through a fault proxy, and
# the SQL/TAP suites against a real PostgreSQL with the extension preloaded.
# Servers it starts it stops, by PID.  The last line is "N passed, N failed".
#
# The TAP suites (t/0*.pl) and the pg_regress suite (make installcheck) run
# once per server flavour:
#   15         Debian 12's own PostgreSQL 15 (/usr/lib/postgresql/15);
#   15-assert  an assert-enabled build of the same source package, which
#              catches use-after-free and broken invariants at once;
#   17, 18     Debian 13's and sid's source packages built into /opt
#              (Debian 12 ships only 15; scripts/build-pg.sh says why).
# PGVERSION picks the majors: "15" (15 and 15-assert), "17", "18", or a list;
# the default, and CI's, is "15 18".  AIBACKUP_NO_ASSERT=1 skips 15-assert for
# a quick local run; CI never sets it.  A flavour whose server or extension
# fails to build counts as a failure, never a silent skip.
#
# Usage: [PGVERSION="15 17 18"] scripts/test.sh [test-file-pattern]
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test.sh must run as root (it installs packages and the extension)" >&2
	exit 2
fi
PGVERSION=${PGVERSION:-15 18}
for v in $PGVERSION; do
	case "$v" in 15 | 17 | 18) ;; *)
		echo "PGVERSION: $v is not a supported major (15, 17, 18)" >&2
		exit 2
		;;
	esac
done

bash scripts/deps.sh
# pgindent and PostgreSQL's typedefs for the layout check (a suite below)
bash scripts/indent.sh --prepare

export PATH=/usr/lib/postgresql/15/bin:$PATH
make -s PG_CONFIG=/usr/bin/pg_config all >/dev/null
make -s PG_CONFIG=/usr/bin/pg_config testbin sanbin fuzzbin >/dev/null

# Flavours: name, then the prefix holding bin/pg_config ("system" for
# Debian's 15) and "ok" or "failed".
FLAVOURS=
add_flavour() { FLAVOURS="$FLAVOURS $1:$2:$3"; }

# The extension built out of tree against PREFIX's server (a copy of the
# sources without the repo's objects, which were compiled against the system
# headers) and installed into that prefix.
build_ext_into() {
	local prefix=$1 build log
	build=$(mktemp -d /var/tmp/aibackup-ext.XXXXXX)
	log=$build.log
	cp -a Makefile aibackup.control src sql "$build/"
	find "$build/src" \( -name '*.o' -o -name '*.so' -o -name '*.bc' \) -delete
	if make -s -C "$build" PG_CONFIG="$prefix/bin/pg_config" all >"$log" 2>&1 &&
		make -s -C "$build" PG_CONFIG="$prefix/bin/pg_config" install >>"$log" 2>&1; then
		rm -rf "$build" "$log"
		return 0
	fi
	tail -n 40 "$log" >&2
	echo "building aibackup against $prefix failed (log: $log)" >&2
	rm -rf "$build"
	return 1
}

# one source-built server and the extension in it
source_flavour() {
	local name=$1 major=$2 kind=${3:-} prefix t0=$SECONDS
	prefix=/opt/aibackup-pg$major${kind:+-$kind}
	if AIBACKUP_PG_PREFIX=$prefix bash scripts/build-pg.sh "$major" $kind && build_ext_into "$prefix"; then
		add_flavour "$name" "$prefix" ok
	else
		echo "flavour $name: server or extension did not build: it counts as a failure" >&2
		add_flavour "$name" "$prefix" failed
	fi
	echo "flavour $name: $((SECONDS - t0)) s"
}

for v in $PGVERSION; do
	if [ "$v" = 15 ]; then
		# Debian's 15 gets the extension as users get it: the package
		# built from this tree (scripts/build-deb.sh), installed with apt.
		t0=$SECONDS
		DEBS=$(mktemp -d /var/tmp/aibackup-deb.XXXXXX)
		if bash scripts/build-deb.sh "$DEBS" >"$DEBS.log" 2>&1 &&
			apt-get install -y -qq --reinstall "$DEBS"/postgresql-15-aibackup_*.deb >>"$DEBS.log" 2>&1; then
			add_flavour 15 system ok
			rm -f "$DEBS.log"
		else
			tail -n 40 "$DEBS.log" >&2
			echo "flavour 15: the package did not build or install (log: $DEBS.log): it counts as a failure" >&2
			add_flavour 15 system failed
		fi
		rm -rf "$DEBS"
		echo "flavour 15: package built and installed in $((SECONDS - t0)) s"
		if [ -n "${AIBACKUP_NO_ASSERT:-}" ]; then
			echo "AIBACKUP_NO_ASSERT set: the 15-assert flavour is skipped"
		else
			source_flavour 15-assert 15 assert
		fi
	else
		source_flavour "$v" "$v"
	fi
done

# a scratch copy the postgres user can read and write
WORK=$(mktemp -d /tmp/aibackup-test.XXXXXX)
# (the C sources and tests for the layout check; Makefile, control file, sql/,
# expected/ and test/regress/ for the pg_regress suite)
cp -a scripts t src Makefile aibackup.control sql expected "$WORK"/
mkdir -p "$WORK/test"
cp -a test/regress test/unit test/s3 test/fuzz "$WORK/test/"
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
	AIBACKUP_FLAVOURS="${FLAVOURS# }" \
	bash "$WORK/scripts/run-suites.sh" "$WORK" "${1:-}"
rc=$?
set -e
if [ $rc -eq 0 ] && [ -z "${KEEP_TEST_DIR:-}" ]; then
	rm -rf "$WORK"
else
	echo "test work directory kept: $WORK"
fi
exit $rc
