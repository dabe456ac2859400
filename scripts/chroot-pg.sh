#!/bin/bash
# scripts/chroot-pg.sh 17 [test [pattern]] — PostgreSQL 17 as Debian 13
# (trixie) ships it, in a trixie chroot built with mmdebstrap.
#
#   scripts/chroot-pg.sh 17            build the chroot (cached), nothing else
#   scripts/chroot-pg.sh 17 test [pat] also build aibackup in it and run the
#                                      per-flavour suites (t/0*.pl and
#                                      scripts/installcheck.sh) there
#   (as root; scripts/test.sh calls "17 test" when PGVERSION names 17)
#
# Why a chroot: the Debian mirror this machine uses serves trixie's binary
# packages of postgresql-17 but not its source package, so scripts/build-pg.sh
# cannot build 17 from source the way it builds 15-assert and 18.  trixie's
# binaries need trixie's C library, so the server runs in a trixie root
# together with everything the suites use: Swift and memcached for the S3
# server, awscli, Perl with IPC::Run, Python, openssl, curl and locales.
#
# The chroot: /var/tmp/aibackup-trixie (AIBACKUP_CHROOT overrides), from the
# mirror the machine's own apt sources name.  Idempotent: a chroot whose stamp
# names the same recipe and packages is left alone; otherwise it is built in
# a sibling directory and swapped in, the stamp written last.  Services never
# start in it: mmdebstrap blocks them while installing, and a policy-rc.d
# that forbids them stays in the chroot for any later apt run.
#
# "test": runs in a mount namespace of its own (unshare), mounts /proc and
# binds /dev, /dev/pts and /dev/shm into the chroot, and unmounts them on any
# exit (trap); the namespace makes sure no mount outlives the run even if
# the unmount fails.  The network (loopback) is the host's: the S3 server in
# the chroot picks free ports among the ones the host's may use.  The
# extension is built from a copy of this tree and installed into the
# chroot's /usr/lib/postgresql/17; the suites run as the chroot's postgres
# user, and the last line printed is the harness's "N passed, N failed".
set -euo pipefail

MAJOR=${1:-}
MODE=${2:-build}
PATTERN=${3:-}
case "$MAJOR" in 17) ;; *)
	echo "usage: scripts/chroot-pg.sh 17 [test [pattern]]" >&2
	exit 2
	;;
esac
case "$MODE" in build | test | _inside) ;; *)
	echo "usage: scripts/chroot-pg.sh 17 [test [pattern]]" >&2
	exit 2
	;;
esac

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${AIBACKUP_CHROOT:-/var/tmp/aibackup-trixie}
SUITE=trixie
STAMP=$ROOT/.aibackup-chroot-stamp
LOCK=$ROOT.lock
# Bump when the build steps change in a way the stamp cannot see.
RECIPE=1
PG=/usr/lib/postgresql/$MAJOR
PKGS="postgresql-$MAJOR postgresql-server-dev-$MAJOR
libcurl4-openssl-dev libdeflate-dev zlib1g-dev libssl-dev libkrb5-dev make gcc libc6-dev
libipc-run-perl perl python3 python3-yaml openssl curl ca-certificates locales
gzip awscli swift swift-proxy swift-account swift-container swift-object memcached
util-linux procps"
LOCALES="de_DE.UTF-8 en_US.UTF-8"

say() { echo "chroot-pg.sh: $*"; }
die() {
	echo "chroot-pg.sh: ERROR: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run me as root (builds and enters a chroot)"

STAMP_KEY="recipe=$RECIPE
suite=$SUITE
packages=${PKGS//$'\n'/ }
locales=$LOCALES"

# A complete chroot: stamp matches and the pieces the suites use are there.
complete() {
	[ -f "$STAMP" ] || return 1
	[ "$(grep -v '^built=' "$STAMP")" = "$STAMP_KEY" ] || return 1
	local f
	for f in "$PG/bin/postgres" "$PG/bin/initdb" "$PG/bin/pg_ctl" "$PG/bin/pg_config" \
		"$PG/lib/pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm" \
		"$PG/lib/pgxs/src/test/regress/pg_regress" \
		/usr/bin/aws /usr/bin/swift-proxy-server /usr/bin/memcached /usr/bin/make; do
		[ -e "$ROOT$f" ] || return 1
	done
}

# The URI of the machine's own Debian main archive (as scripts/build-pg.sh).
debian_uri() {
	# shellcheck disable=SC2016  # apt's format, not a shell expansion
	apt-get indextargets --format '$(TARGET_OF) $(ORIGIN) $(REPO_URI) $(RELEASE)' |
		awk '$1 == "deb" && $2 == "Debian" && $4 !~ /security/ { print $3; exit }'
}

# A policy-rc.d that starts no service, for any later apt run in the chroot
# (mmdebstrap removes the one it had while installing).
no_services() {
	printf '#!/bin/sh\n# aibackup scripts/chroot-pg.sh: start no services\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
	chmod 755 "$1/usr/sbin/policy-rc.d"
}

# Nothing may be mounted under a directory that is about to be removed (a
# bound /dev would lose the host's device nodes).
remove_tree() {
	[ -e "$1" ] || return 0
	if awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		die "something is mounted under $1: refusing to remove it (see /proc/self/mountinfo)"
	fi
	rm -rf --one-file-system "$1"
}

build_chroot() {
	local t0=$SECONDS mirror new log
	if complete; then
		no_services "$ROOT"
		say "ready: $ROOT ($SUITE, $(sed -n 's/^built=//p' "$STAMP"), cached)"
		return 0
	fi
	command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
	mirror=$(debian_uri)
	if [ -z "$mirror" ]; then
		apt-get update -qq
		mirror=$(debian_uri)
	fi
	[ -n "$mirror" ] || die "no Debian archive found in the machine's apt sources"
	say "building a $SUITE chroot at $ROOT from $mirror (a few minutes)"
	new=$ROOT.new
	log=$ROOT.build.log
	remove_tree "$new"
	# In a mount namespace of its own, so that none of mmdebstrap's mounts
	# can outlive it.  --variant=apt: Essential packages plus apt, then our list with its
	# dependencies (no recommends); mmdebstrap keeps services from starting
	# while it installs.  Hooks: the locales, localhost.
	# shellcheck disable=SC2086,SC2016  # word lists; the hooks expand $1 themselves
	if ! unshare --mount --propagation private -- mmdebstrap --variant=apt --mode=root \
		--aptopt='Acquire::Check-Valid-Until "false"' \
		--aptopt='APT::Install-Recommends "false"' \
		--include="$(echo $PKGS | tr ' ' ',')" \
		--customize-hook='for l in '"$LOCALES"'; do echo "$l UTF-8" >>"$1/etc/locale.gen"; done; chroot "$1" locale-gen' \
		--customize-hook='printf "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" >"$1/etc/hosts"' \
		"$SUITE" "$new" "deb $mirror $SUITE main" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		remove_tree "$new"
		die "mmdebstrap failed (log: $log)"
	fi
	no_services "$new"
	remove_tree "$ROOT"
	mv "$new" "$ROOT"
	printf '%s\nbuilt=%s\n' "$STAMP_KEY" "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" >"$STAMP.tmp"
	mv "$STAMP.tmp" "$STAMP"
	complete || die "the chroot at $ROOT is incomplete after the build (log: $log)"
	rm -f "$log"
	say "ready: $ROOT ($SUITE, $(chroot "$ROOT" "$PG/bin/postgres" --version); built in $((SECONDS - t0)) s)"
}

# Two runs at once must not build or install into the same chroot together
# (_inside: the lock is fd 9, inherited through unshare).
if [ "$MODE" != _inside ]; then
	exec 9>"$LOCK"
	flock 9
fi

if [ "$MODE" = build ]; then
	build_chroot
	exit 0
fi

if [ "$MODE" = test ]; then
	build_chroot
	# again in a mount namespace of its own, holding the lock (fd 9)
	exec unshare --mount --propagation private -- "$REPO/scripts/chroot-pg.sh" "$MAJOR" _inside "$PATTERN"
fi

# ---- _inside: in our own mount namespace ----------------------------------
MOUNTED=()
WORK=
BUILD=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	local i
	rm -rf "${BUILD:+$ROOT$BUILD}"
	for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" ||
			echo "chroot-pg.sh: could not unmount ${MOUNTED[i]}" >&2
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

do_mount() {
	local target=$ROOT$1
	shift
	mount "$@" "$target" || die "mount $* $target failed"
	MOUNTED+=("$target")
}
do_mount /proc -t proc proc
do_mount /dev --bind /dev
do_mount /dev/pts --bind /dev/pts
do_mount /dev/shm --bind /dev/shm

# the extension, built in the chroot from a copy without the host's objects
t0=$SECONDS
BUILD=$(chroot "$ROOT" mktemp -d /var/tmp/aibackup-ext.XXXXXX)
cp -a "$REPO/Makefile" "$REPO/aibackup.control" "$REPO/src" "$REPO/sql" "$ROOT$BUILD/"
find "$ROOT$BUILD/src" \( -name '*.o' -o -name '*.so' -o -name '*.bc' \) -delete
if ! chroot "$ROOT" make -s -C "$BUILD" PG_CONFIG="$PG/bin/pg_config" all >"$ROOT$BUILD.log" 2>&1 ||
	! chroot "$ROOT" make -s -C "$BUILD" PG_CONFIG="$PG/bin/pg_config" install >>"$ROOT$BUILD.log" 2>&1; then
	tail -n 40 "$ROOT$BUILD.log" >&2
	echo "flavour $MAJOR: building aibackup in the chroot failed (log: $ROOT$BUILD.log): it counts as a failure" >&2
	FLAVOUR="$MAJOR:$PG:failed"
else
	rm -f "$ROOT$BUILD.log"
	FLAVOUR="$MAJOR:$PG:ok"
	say "flavour $MAJOR: aibackup built and installed in the chroot in $((SECONDS - t0)) s"
fi

# a scratch copy the chroot's postgres user can read and write
WORK=$(chroot "$ROOT" mktemp -d /tmp/aibackup-test.XXXXXX)
cp -a "$REPO/scripts" "$REPO/t" "$REPO/src" "$REPO/Makefile" "$REPO/aibackup.control" \
	"$REPO/sql" "$REPO/expected" "$REPO/README.md" "$ROOT$WORK/"
mkdir -p "$ROOT$WORK/test"
cp -a "$REPO/test/regress" "$ROOT$WORK/test/"
chroot "$ROOT" chown -R postgres:postgres "$WORK"

# Only the per-flavour suites: the unit, fuzz, S3 client and layout suites
# ran on the host (AIBACKUP_HOST_SUITES=0).
set +e
chroot "$ROOT" runuser -u postgres -- env -i \
	PATH=/usr/local/bin:/usr/bin:/bin HOME="$WORK" LANG=C.UTF-8 \
	AIBACKUP_HOST_SUITES=0 AIBACKUP_PART=1 AIBACKUP_FLAVOURS="$FLAVOUR" \
	bash "$WORK/scripts/run-suites.sh" "$WORK" "$PATTERN"
rc=$?
set -e
if [ $rc -eq 0 ] && [ -z "${KEEP_TEST_DIR:-}" ]; then
	rm -rf "${ROOT:?}$WORK"
else
	echo "chroot test work directory kept: $ROOT$WORK"
fi
exit $rc
