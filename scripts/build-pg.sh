#!/bin/bash
# shellcheck disable=SC2016  # apt and make formats use $(...) literally
# scripts/build-pg.sh MAJOR [assert] — PostgreSQL MAJOR (15, 17 or 18) under
# its own prefix, built from Debian's source package for that major.
#
#   scripts/build-pg.sh 15 assert   -> /opt/aibackup-pg15-assert
#   scripts/build-pg.sh 18          -> /opt/aibackup-pg18
#   (as root; scripts/test.sh calls it)
#
# (17: the mirror serves trixie's binary packages but not the source package;
# scripts/test.sh runs 17 in a trixie chroot instead, scripts/chroot-pg.sh.)
#
# Why a source build: Debian 12 packages only PostgreSQL 15.  17 is Debian
# 13's (trixie) and 18 is sid's; their binary packages need a newer C library
# than Debian 12's, so they would have to run in a chroot together with every
# tool the suites use (Swift, awscli, Perl's IPC::Run).  Built from Debian's
# own source package (same code, same patches) into a prefix, the server runs
# on the machine like the 15 that Debian ships, and the same harness drives
# all of them.  "assert" adds --enable-cassert: a server that clobbers freed
# memory and checks invariants a production build does not (design.md §8).
#
# Sources come from the Debian mirror the machine already uses, through a
# private apt state under /var/tmp/aibackup-apt (deb-src lines for bookworm,
# trixie and sid): the machine's own apt sources are not touched.  For 15 the
# version wanted is the installed binary package's; when the mirror cannot
# serve it, the newest other version is used.  The mirror is a snapshot whose
# sid Release file has expired, hence Check-Valid-Until=false for that state.
#
# Idempotent: a prefix holding a complete build stamped with the same wanted
# version, configure flags and recipe is left alone.  Otherwise: install the
# build dependencies, build as root in a scratch directory under /var/tmp
# (removed afterwards), replace the prefix, write the stamp last.  The last
# line printed is "build-pg.sh: ready: <prefix> ..." on success.
set -euo pipefail

MAJOR=${1:-}
FLAVOUR=${2:-}
case "$MAJOR" in 15 | 17 | 18) ;; *)
	echo "usage: scripts/build-pg.sh 15|17|18 [assert]" >&2
	exit 2
	;;
esac
case "$FLAVOUR" in '' | assert) ;; *)
	echo "usage: scripts/build-pg.sh 15|17|18 [assert]" >&2
	exit 2
	;;
esac
NAME=aibackup-pg$MAJOR${FLAVOUR:+-$FLAVOUR}
PREFIX=${AIBACKUP_PG_PREFIX:-/opt/$NAME}
STAMP=$PREFIX/.aibackup-build-stamp
# Bump when the build or install steps change in a way the stamp cannot see.
RECIPE=3
case "$MAJOR" in
	15) SUITES="bookworm bookworm-updates" ;;
	17) SUITES="trixie" ;;
	18) SUITES="sid" ;;
esac
# libdir must contain "postgres": Debian's 50-per-version-dirs.patch hardcodes
# pkglibdir to /usr/lib/postgresql/MAJOR/lib when it does not, and "make
# install" would then overwrite the system server's modules and PGXS.  The
# check before "make install" below refuses any directory outside the prefix.
# --enable-nls as Debian builds it: suites check translated server messages
# (lc_messages = de_DE.UTF-8) and the redaction of translated ones.
CONFIGURE_FLAGS=(
	--prefix="$PREFIX" --libdir="$PREFIX/lib/postgresql"
	--enable-tap-tests
	--with-libxml --with-openssl --without-readline --without-icu
	--enable-nls
)
if [ "$FLAVOUR" = assert ]; then
	CONFIGURE_FLAGS+=(--enable-cassert --enable-debug CFLAGS="-O1 -g")
else
	# -O1 without debug symbols: the suites need a correct server, not the
	# fastest one, and CI pays for every minute of the build
	CONFIGURE_FLAGS+=(CFLAGS="-O1")
fi
BUILD_DEPS="dpkg-dev xz-utils bzip2 patch gcc make bison flex perl libipc-run-perl
pkg-config libxml2-dev libssl-dev zlib1g-dev gettext"
# Where Debian's binary packages put the TAP framework and pg_regress for the
# system server (lib/pgxs/src/test/...): the same layout under the prefix.
TAP_REL=lib/postgresql/pgxs/src/test/perl
REGRESS_REL=lib/postgresql/pgxs/src/test/regress/pg_regress
APTDIR=/var/tmp/aibackup-apt

say() { echo "build-pg.sh: $*"; }
die() { echo "build-pg.sh: ERROR: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
	die "run me as root (installs packages, writes $PREFIX)"
fi
T0=$SECONDS

# Two test runs at once must not build into the same prefix together.
exec 9>"/var/tmp/$NAME.lock"
flock 9

WANT=newest
if [ "$MAJOR" = 15 ]; then
	WANT=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
	[ -n "$WANT" ] || WANT=newest
fi
STAMP_KEY="recipe=$RECIPE
major=$MAJOR
wanted=$WANT
configure=${CONFIGURE_FLAGS[*]}"

# A complete build: stamp matches and the pieces the tests use are there.
complete() {
	[ -f "$STAMP" ] || return 1
	[ "$(grep -v '^source=' "$STAMP")" = "$STAMP_KEY" ] || return 1
	local f
	for f in bin/postgres bin/initdb bin/pg_ctl bin/psql bin/pg_config \
		"$TAP_REL/PostgreSQL/Test/Cluster.pm" "$TAP_REL/PostgreSQL/Test/Utils.pm" \
		"$REGRESS_REL"; do
		[ -e "$PREFIX/$f" ] || return 1
	done
}

if complete; then
	say "ready: $PREFIX (source $(sed -n 's/^source=//p' "$STAMP"), cached; $((SECONDS - T0)) s)"
	exit 0
fi
say "building PostgreSQL $MAJOR${FLAVOUR:+ ($FLAVOUR)} into $PREFIX (wanted: $WANT)"

export DEBIAN_FRONTEND=noninteractive

# --- a private apt state with deb-src lines --------------------------------
# The mirror: the URI of the machine's own Debian main archive (apt's view of
# its sources, one-line and deb822 files alike).
debian_uri() {
	apt-get indextargets --format '$(TARGET_OF) $(ORIGIN) $(REPO_URI) $(RELEASE)' |
		awk '$1 == "deb" && $2 == "Debian" && $4 !~ /security/ { print $3; exit }'
}
MIRROR=$(debian_uri)
if [ -z "$MIRROR" ]; then
	apt-get update -qq # a fresh image: no Release files downloaded yet
	MIRROR=$(debian_uri)
fi
[ -n "$MIRROR" ] || die "no Debian archive found in the machine's apt sources"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# (lists of its own per major: two builds of different majors may run at once)
mkdir -p "$APTDIR/lists-$MAJOR/partial"
{
	for s in $SUITES; do
		echo "deb-src [signed-by=$KEYRING] $MIRROR $s main"
	done
} >"$APTDIR/sources-$MAJOR.list"
APT_OPTS=(-o "Dir::Etc::SourceList=$APTDIR/sources-$MAJOR.list"
	-o Dir::Etc::SourceParts=/nonexistent
	-o "Dir::State::Lists=$APTDIR/lists-$MAJOR"
	-o Acquire::Check-Valid-Until=false)
apt-get -qq "${APT_OPTS[@]}" update

# --- build dependencies -----------------------------------------------------
NEED=
for p in $BUILD_DEPS; do
	case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" in
		ii*) ;;
		*) NEED="$NEED $p" ;;
	esac
done
if [ -n "$NEED" ]; then
	say "installing build dependencies:$NEED"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $NEED >/dev/null
fi
T_DEPS=$SECONDS

# --- source -----------------------------------------------------------------
SCRATCH=$(mktemp -d "/var/tmp/$NAME-build.XXXXXX")
LOG=$SCRATCH/build.log
KEPT_LOG=/var/tmp/$NAME-build.log
cleanup() { rm -rf "$SCRATCH"; }
trap cleanup EXIT
fail() {
	cp "$LOG" "$KEPT_LOG" 2>/dev/null || true
	echo "---- last lines of the build log (whole log: $KEPT_LOG) ----" >&2
	tail -n 40 "$LOG" >&2 || true
	die "$*"
}
# apt downloads as _apt when it can write there (no "unsandboxed" warning)
chmod 755 "$SCRATCH"
mkdir "$SCRATCH/src"
if id _apt >/dev/null 2>&1; then chown _apt:root "$SCRATCH/src"; fi
cd "$SCRATCH/src"

PKG=postgresql-$MAJOR
CANDIDATES=$(apt-cache "${APT_OPTS[@]}" showsrc "$PKG" 2>/dev/null | sed -n 's/^Version: //p' | sort -rVu)
[ -n "$CANDIDATES" ] || die "apt-cache showsrc $PKG offers no version"
SRCVER=
for v in $( { [ "$WANT" != newest ] && echo "$WANT"; echo "$CANDIDATES"; } | awk '!seen[$0]++'); do
	if ! echo "$CANDIDATES" | grep -qxF "$v"; then
		say "source $v is not in the mirror's Sources index"
		continue
	fi
	if apt-get "${APT_OPTS[@]}" source -q "$PKG=$v" >>"$LOG" 2>&1; then
		SRCVER=$v
		break
	fi
	say "apt-get source $PKG=$v failed (see below); trying the next version"
	grep -E '^(E|W):' "$LOG" | tail -n 3 | sed 's/^/    /' || true
	find . -mindepth 1 -maxdepth 1 -exec rm -rf {} +
done
[ -n "$SRCVER" ] || fail "could not download any $PKG source package"
UPSTREAM=${SRCVER%%-*}
DIR=$SCRATCH/src/$PKG-$UPSTREAM
[ -d "$DIR" ] || fail "apt-get source did not unpack into $DIR"
[ "$WANT" = newest ] || [ "$SRCVER" = "$WANT" ] ||
	say "note: building source $SRCVER, the installed server is $WANT"
T_SRC=$SECONDS
say "source $PKG $SRCVER ($((T_SRC - T_DEPS)) s)"

# --- configure, build -------------------------------------------------------
cd "$DIR"
./configure "${CONFIGURE_FLAGS[@]}" >>"$LOG" 2>&1 || fail "configure failed"
T_CONF=$SECONDS
say "configure ($((T_CONF - T_SRC)) s)"
# ECPG (embedded SQL in C) is the biggest piece nothing here uses: skipped
printf 'all install installdirs uninstall clean distclean:\n\t@:\n' >src/interfaces/ecpg/Makefile
make -j"$(($(nproc) + 1))" >>"$LOG" 2>&1 || fail "make failed"
T_MAKE=$SECONDS
say "make -j$(($(nproc) + 1)) ($((T_MAKE - T_CONF)) s)"

# Refuse to install anything outside the prefix (see CONFIGURE_FLAGS).
DIRS=$(make -s -C src --no-print-directory \
	--eval 'aib-dirs: ; @echo $(bindir) $(libdir) $(pkglibdir) $(pgxsdir) $(includedir_server) $(datadir) $(sysconfdir) $(docdir) $(mandir)' \
	aib-dirs)
for d in $DIRS; do
	case "$d" in
		"$PREFIX"/*) ;;
		*) fail "refusing to install: directory $d is outside $PREFIX" ;;
	esac
done

# --- install ----------------------------------------------------------------
# Into a staging directory first, then swapped in: a test run already using
# the old prefix sees it replaced in one step rather than half-installed.
STAGE=$SCRATCH/stage
make install DESTDIR="$STAGE" >>"$LOG" 2>&1 || fail "make install failed"
# --enable-tap-tests installs src/test/perl and pg_regress under pgxs; make
# sure, since the TAP suites cannot run without them
[ -f "$STAGE$PREFIX/$TAP_REL/PostgreSQL/Test/Cluster.pm" ] ||
	make -C src/test/perl install DESTDIR="$STAGE" >>"$LOG" 2>&1 || fail "installing the TAP modules failed"
[ -x "$STAGE$PREFIX/$REGRESS_REL" ] ||
	make -C src/test/regress install DESTDIR="$STAGE" >>"$LOG" 2>&1 || fail "installing pg_regress failed"
rm -rf "$PREFIX"
mkdir -p "$(dirname "$PREFIX")"
mv "$STAGE$PREFIX" "$PREFIX"
if [ "$FLAVOUR" = assert ]; then
	"$PREFIX/bin/pg_config" --configure | grep -q -- '--enable-cassert' ||
		fail "$PREFIX/bin/pg_config does not report --enable-cassert"
fi
T_INST=$SECONDS
say "make install ($((T_INST - T_MAKE)) s)"

# the stamp last: its presence means everything above succeeded
printf '%s\nsource=%s\n' "$STAMP_KEY" "$SRCVER" >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
complete || fail "the installed build is incomplete"
say "ready: $PREFIX (source $SRCVER, $("$PREFIX/bin/pg_config" --version); built in $((SECONDS - T0)) s)"
