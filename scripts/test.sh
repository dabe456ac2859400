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
#   17         Debian 13's (trixie) own postgresql-17 binary package, in a
#              trixie chroot (scripts/chroot-pg.sh: the mirror serves no
#              source package for it); the extension is built in there too;
#   18         sid's source package built into /opt (Debian 12 ships only
#              15; scripts/build-pg.sh says why).
# PGVERSION picks the majors: "15" (15 and 15-assert), "17", "18", or a list;
# the default, and CI's, is "15 18".  AIBACKUP_NO_ASSERT=1 skips 15-assert for
# a quick local run; CI never sets it.  A flavour whose server or extension
# fails to build counts as a failure, never a silent skip.
#
# The unit, fuzz, S3 client and layout suites run on the host.  With 17 in
# PGVERSION, the host run (the other majors) and the chroot run each end
# with their own count ("host: ..." and "chroot 17: ..."), and the last line
# adds them up.  AIBACKUP_CHROOT_ONLY=1 skips the host run.
#
# Usage: [PGVERSION="15 17 18"] scripts/test.sh [test-file-pattern]
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/test.sh must run as root (it installs packages and the extension)" >&2
	exit 2
fi
# The last line is the count whatever happens: a step that fails before the
# suites (packages, builds) still ends the run with one.
COUNTED=
trap '[ -n "$COUNTED" ] || echo "0 passed, 1 failed"' EXIT
PGVERSION=${PGVERSION:-15 18}
for v in $PGVERSION; do
	case "$v" in 15 | 17 | 18) ;; *)
		echo "PGVERSION: $v is not a supported major (15, 17, 18)" >&2
		exit 2
		;;
	esac
done
if [ -z "${PGVERSION// /}" ] && [ -z "${AIBACKUP_HOST_PART:-}" ]; then
	echo "PGVERSION names no major" >&2
	exit 2
fi

# 17: this script again for the other majors (none: only the host-only
# suites), then scripts/chroot-pg.sh; each run's "N passed, N failed" gets
# its name and the last line adds them up.  A run that printed no count
# counts as one failure.
HOST_PGVERSION=
CHROOT_17=
for v in $PGVERSION; do
	if [ "$v" = 17 ]; then CHROOT_17=1; else HOST_PGVERSION="$HOST_PGVERSION $v"; fi
done
if [ -n "${AIBACKUP_CHROOT_ONLY:-}" ] && [ -z "$CHROOT_17" ]; then
	echo "AIBACKUP_CHROOT_ONLY is set but PGVERSION ($PGVERSION) does not name 17" >&2
	exit 2
fi
if [ -n "$CHROOT_17" ]; then
	COUNTS=$(mktemp /tmp/aibackup-counts.XXXXXX)
	trap 'rm -f "$COUNTS"; [ -n "$COUNTED" ] || echo "0 passed, 1 failed"' EXIT
	RC=0
	run_part() {
		local label=$1 rc
		shift
		set +e
		"$@" | sed -u "s/^\([0-9][0-9]* passed, [0-9][0-9]* failed\)\$/$label: \1/" | tee -a "$COUNTS"
		rc=${PIPESTATUS[0]}
		set -e
		if ! grep -q "^$label: [0-9]* passed, [0-9]* failed\$" "$COUNTS"; then
			echo "$label: 0 passed, 1 failed" | tee -a "$COUNTS"
			rc=1
		fi
		[ "$rc" -eq 0 ] || RC=1
	}
	if [ -z "${AIBACKUP_CHROOT_ONLY:-}" ]; then
		# (" ", not "": an empty PGVERSION means the default majors)
		run_part host env PGVERSION="${HOST_PGVERSION:- }" AIBACKUP_HOST_PART=1 AIBACKUP_PART=1 \
			bash "$REPO/scripts/test.sh" "$@"
	else
		echo "AIBACKUP_CHROOT_ONLY set: no host run (unit, fuzz, layout and host flavours skipped)"
	fi
	t0=$SECONDS
	run_part "chroot 17" bash scripts/chroot-pg.sh 17 test "${1:-}"
	echo "chroot 17: $((SECONDS - t0)) s"
	# each part's last count (a run prints its count twice), added up; a
	# pattern neither part matched is not a pass
	TOTAL=$(for l in host "chroot 17"; do grep -E "^$l: [0-9]+ passed, [0-9]+ failed\$" "$COUNTS" | tail -n 1; done |
		awk '{ p += $(NF-3); f += $(NF-1) } END { if (p + f == 0) f = 1; print p " passed, " f " failed" }')
	case "$TOTAL" in *" 0 failed") ;; *) RC=1 ;; esac
	COUNTED=1
	echo "$TOTAL"
	exit $RC
fi

bash scripts/deps.sh
# pgindent and PostgreSQL's typedefs for the layout check (a suite below)
bash scripts/indent.sh --prepare

export PATH=/usr/lib/postgresql/15/bin:$PATH
make -s PG_CONFIG=/usr/bin/pg_config all >/dev/null
make -s PG_CONFIG=/usr/bin/pg_config testbin sanbin fuzzbin >/dev/null

# Flavours: "name:prefix:status", prefix "system" for Debian's 15 and
# status ok, failed, or pending: a source-built server and the extension in
# it are built in the background while the suites that need neither run
# (the unit tests, Debian's 15); the harness waits for a pending flavour's
# status file in $BUILDS before that flavour's first suite.
FLAVOURS=
add_flavour() { FLAVOURS="$FLAVOURS $1:$2:$3"; }
BUILDS=$(mktemp -d /var/tmp/aibackup-builds.XXXXXX)
chmod 755 "$BUILDS"
SOURCE_FLAVOURS=

# The extension built out of tree against PREFIX's server (a copy of the
# sources without the repo's objects, which were compiled against the system
# headers) and installed into that prefix.
build_ext_into() {
	local prefix=$1 build
	build=$(mktemp -d /var/tmp/aibackup-ext.XXXXXX)
	cp -a Makefile aibackup.control src sql "$build/"
	find "$build/src" \( -name '*.o' -o -name '*.so' -o -name '*.bc' \) -delete
	if make -s -C "$build" PG_CONFIG="$prefix/bin/pg_config" all &&
		make -s -C "$build" PG_CONFIG="$prefix/bin/pg_config" install; then
		rm -rf "$build"
		return 0
	fi
	echo "building aibackup against $prefix failed"
	rm -rf "$build"
	return 1
}

# one source-built server and the extension in it; the status file last
build_source_flavour() {
	local name=$1 major=$2 kind=$3 prefix=$4 t0=$SECONDS status=failed
	if AIBACKUP_PG_PREFIX=$prefix bash scripts/build-pg.sh "$major" $kind &&
		build_ext_into "$prefix"; then
		status=ok
	fi
	echo "flavour $name: $status in $((SECONDS - t0)) s"
	echo "$status" >"$BUILDS/$name.tmp"
	mv "$BUILDS/$name.tmp" "$BUILDS/$name"
}

for v in $PGVERSION; do
	if [ "$v" = 15 ]; then
		add_flavour 15 system ok
		if [ -n "${AIBACKUP_NO_ASSERT:-}" ]; then
			echo "AIBACKUP_NO_ASSERT set: the 15-assert flavour is skipped"
		else
			add_flavour 15-assert /opt/aibackup-pg15-assert pending
			SOURCE_FLAVOURS="$SOURCE_FLAVOURS 15-assert:15:assert"
		fi
	else
		add_flavour "$v" "/opt/aibackup-pg$v" pending
		SOURCE_FLAVOURS="$SOURCE_FLAVOURS $v:$v:"
	fi
done

# the source builds, one after the other, at low priority: the suites that
# run meanwhile keep the CPU they need
# (in a process group of its own, so that it can be stopped whole)
set -m
(
	renice -n 15 -p "$BASHPID" >/dev/null 2>&1 || true
	# whatever ends this builder, no flavour is left pending
	trap 'for f in $SOURCE_FLAVOURS; do n=${f%%:*}; [ -e "$BUILDS/$n" ] || echo failed >"$BUILDS/$n"; done' EXIT
	for f in $SOURCE_FLAVOURS; do
		IFS=: read -r name major kind <<<"$f"
		build_source_flavour "$name" "$major" "$kind" "/opt/aibackup-pg$major${kind:+-$kind}"
	done
) </dev/null >"$BUILDS/build.log" 2>&1 &
BUILDER=$!
set +m
echo "building the source flavours in the background (pid $BUILDER, log $BUILDS/build.log):$SOURCE_FLAVOURS"

if [[ " $PGVERSION " == *" 15 "* ]]; then
	# Debian's 15 gets the extension as users get it: the package built
	# from this tree (scripts/build-deb.sh), installed with apt.
	t0=$SECONDS
	DEBS=$(mktemp -d /var/tmp/aibackup-deb.XXXXXX)
	if bash scripts/build-deb.sh "$DEBS" >"$DEBS.log" 2>&1 &&
		apt-get install -y -qq --reinstall "$DEBS"/postgresql-15-aibackup_*.deb >>"$DEBS.log" 2>&1; then
		rm -f "$DEBS.log"
		echo "flavour 15: package built and installed in $((SECONDS - t0)) s"
	else
		tail -n 40 "$DEBS.log" >&2
		echo "flavour 15: the package did not build or install (log: $DEBS.log): it counts as a failure" >&2
		FLAVOURS=${FLAVOURS/ 15:system:ok/ 15:system:failed}
	fi
	rm -rf "$DEBS"
fi

# a scratch copy the postgres user can read and write
WORK=$(mktemp -d /tmp/aibackup-test.XXXXXX)
# (the C sources and tests for the layout check; Makefile, control file, sql/,
# expected/ and test/regress/ for the pg_regress suite)
cp -a scripts t src Makefile aibackup.control sql expected README.md "$WORK"/
mkdir -p "$WORK/test"
cp -a test/regress test/unit test/s3 test/fuzz "$WORK/test/"
mkdir -p "$WORK/bin"
cp test/unit/test_core test/unit/test_streams test/unit/test_s3_rules \
	test/s3/test_s3_client test/s3/test_s3_limits test/unit/test_core.san test/unit/test_streams.san \
	test/unit/test_streams.tsan test/s3/test_s3_client.tsan test/unit/test_s3_rules.san test/fuzz/fuzz_manifest test/fuzz/fuzz_json \
	test/fuzz/fuzz_xml test/fuzz/fuzz_index "$WORK/bin/"
mkdir -p "$WORK/fuzz"
cp -a test/fuzz/corpus test/fuzz/*.dict "$WORK/fuzz/"
chown -R postgres:postgres "$WORK"

set +e
runuser -u postgres -- env -i PATH="$PATH" HOME="$WORK" LANG=C.UTF-8 \
	AIBACKUP_FLAVOURS="${FLAVOURS# }" AIBACKUP_BUILDS="$BUILDS" AIBACKUP_BUILDER="$BUILDER" \
	AIBACKUP_PART="${AIBACKUP_PART:-}" \
	bash "$WORK/scripts/run-suites.sh" "$WORK" "${1:-}" | tee "$WORK/harness.out"
rc=${PIPESTATUS[0]}
set -e
# the builder is done unless the harness ended early; never leave it behind
kill -TERM -- "-$BUILDER" 2>/dev/null || true
wait "$BUILDER" 2>/dev/null || true
echo "---- source flavour builds ($BUILDS/build.log) ----"
grep -E '^(flavour |build-pg\.sh: (ready|ERROR)|building aibackup)' "$BUILDS/build.log" || true
if grep -q '^flavour .*: failed' "$BUILDS/build.log"; then
	tail -n 40 "$BUILDS/build.log"
fi
LAST=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/harness.out" | tail -n 1 || true)
if [ $rc -eq 0 ] && [ -z "${KEEP_TEST_DIR:-}" ]; then
	rm -rf "$WORK" "$BUILDS"
else
	echo "test work directory kept: $WORK"
fi
# the last line, again after the notes above
COUNTED=1
echo "${LAST:-0 passed, 1 failed}"
[ -n "$LAST" ] || rc=1
exit $rc
