#!/bin/bash
# shellcheck disable=SC2016  # apt and make formats use $(...) literally
# scripts/assert-pg.sh — an assert-enabled PostgreSQL 15 under its own prefix,
# built from Debian's postgresql-15 source package.
#
#   scripts/assert-pg.sh          (as root; scripts/test.sh calls it)
#
# Why: an --enable-cassert server clobbers freed memory and checks invariants
# a production build does not, so a use-after-free (a List freed by
# SPI_finish, a pointer into a reset context) fails at once instead of at the
# 300th table in production (design.md §8).  scripts/test.sh runs the TAP
# suites a second time against this server.
#
# Debian's source rather than upstream's tarball: the same code and patches as
# the postgresql-15 binary package the normal suites run against.  The
# version wanted is the installed binary's; when the mirror cannot serve that
# source (the security suite's pool answers 404 on this project's mirror), the
# newest other version apt-cache showsrc offers is used.
#
# Idempotent: a prefix holding a complete build stamped with the same wanted
# version, configure flags and recipe is left alone (a few milliseconds).
# Otherwise: add deb-src lines for the machine's Debian mirror if missing,
# install the build dependencies, build as root in a scratch directory under
# /var/tmp (removed afterwards), replace the prefix, write the stamp last.
# The last line printed is "assert-pg.sh: ready: <prefix> ..." on success.
set -euo pipefail

# (another prefix only to try a build without touching the one tests use)
PREFIX=${AIBACKUP_ASSERT_PREFIX:-/opt/aibackup-pg15-assert}
STAMP=$PREFIX/.aibackup-build-stamp
# Bump when the build or install steps change in a way the stamp cannot see.
RECIPE=1
# libdir must contain "postgres": Debian's 50-per-version-dirs.patch hardcodes
# pkglibdir to /usr/lib/postgresql/15/lib when it does not, and "make install"
# would then overwrite the system server's modules and PGXS.  The check before
# "make install" below refuses any directory outside the prefix.
CONFIGURE_FLAGS=(
	--prefix="$PREFIX" --libdir="$PREFIX/lib/postgresql"
	--enable-cassert --enable-debug --enable-tap-tests
	--with-libxml --with-openssl --without-readline --without-icu
	--enable-nls
	CFLAGS="-O1 -g"
)
# --enable-nls as Debian builds it: suites check translated server messages
# (lc_messages = de_DE.UTF-8) and the redaction of translated ones.
BUILD_DEPS="dpkg-dev xz-utils bzip2 patch gcc make bison flex perl libipc-run-perl
pkg-config libxml2-dev libssl-dev zlib1g-dev gettext"
# Where Debian's binary packages put the TAP framework and pg_regress for the
# system server (lib/pgxs/src/test/...): the same layout under the prefix.
TAP_REL=lib/postgresql/pgxs/src/test/perl
REGRESS_REL=lib/postgresql/pgxs/src/test/regress/pg_regress

say() { echo "assert-pg.sh: $*"; }
die() { echo "assert-pg.sh: ERROR: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
	die "run me as root (installs packages, writes $PREFIX)"
fi
T0=$SECONDS

# Two test runs at once must not build into the same prefix together.
exec 9>"/var/tmp/$(basename "$PREFIX").lock"
flock 9

WANT=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
[ -n "$WANT" ] || WANT=newest
STAMP_KEY="recipe=$RECIPE
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
say "building an assert-enabled PostgreSQL 15 into $PREFIX (wanted: $WANT)"

export DEBIAN_FRONTEND=noninteractive

# --- deb-src lines for the Debian archive(s) the machine already uses -----
# apt's own view of the configured sources (one-line and deb822 files alike):
# "deb" targets whose Release file says Origin: Debian, minus the (URI, suite,
# component) triples that already have a deb-src line.
debian_deb_targets() {
	apt-get indextargets --format '$(TARGET_OF) $(ORIGIN) $(REPO_URI) $(RELEASE) $(COMPONENT)' \
		| awk '$1 == "deb" && $2 == "Debian" { print $3, $4, $5 }' | sort -u
}
if [ -z "$(debian_deb_targets)" ]; then
	# no downloaded Release files yet (a fresh image): fetch them first
	apt-get update -qq
fi
DEB=$(debian_deb_targets)
[ -n "$DEB" ] || die "no Debian archive found in /etc/apt/sources.list*"
HAVE_SRC=$(apt-get indextargets --no-release-info \
	--format '$(TARGET_OF) $(REPO_URI) $(RELEASE) $(COMPONENT)' \
	| awk '$1 == "deb-src" { print $2, $3, $4 }' | sort -u)
MISSING_SRC=$(comm -23 <(echo "$DEB") <(echo "$HAVE_SRC"))
if [ -n "$MISSING_SRC" ]; then
	KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
	OPT=
	[ -f "$KEYRING" ] && OPT="[signed-by=$KEYRING] "
	LIST=/etc/apt/sources.list.d/aibackup-deb-src.list
	[ -f "$LIST" ] || echo "# added by aibackup scripts/assert-pg.sh: Debian sources for the assert-enabled build" >"$LIST"
	while read -r uri suite comp; do
		echo "deb-src ${OPT}$uri $suite $comp" >>"$LIST"
		say "added deb-src $uri $suite $comp to $LIST"
	done <<<"$MISSING_SRC"
fi
apt-get update -qq

# --- build dependencies ---------------------------------------------------
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

# --- source ---------------------------------------------------------------
SCRATCH=$(mktemp -d /var/tmp/aibackup-pg15-assert-build.XXXXXX)
LOG=$SCRATCH/build.log
KEPT_LOG=/var/tmp/aibackup-pg15-assert-build.log
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

CANDIDATES=$(apt-cache showsrc postgresql-15 2>/dev/null | sed -n 's/^Version: //p' | sort -rVu)
[ -n "$CANDIDATES" ] || die "apt-cache showsrc postgresql-15 offers no version (deb-src lines?)"
SRCVER=
for v in $( { [ "$WANT" != newest ] && echo "$WANT"; echo "$CANDIDATES"; } | awk '!seen[$0]++'); do
	if ! echo "$CANDIDATES" | grep -qxF "$v"; then
		say "source $v is not in the mirror's Sources index"
		continue
	fi
	if apt-get source -q "postgresql-15=$v" >>"$LOG" 2>&1; then
		SRCVER=$v
		break
	fi
	say "apt-get source postgresql-15=$v failed (see below); trying the next version"
	grep -E '^(E|W):' "$LOG" | tail -n 3 | sed 's/^/    /' || true
	find . -mindepth 1 -maxdepth 1 -exec rm -rf {} +
done
[ -n "$SRCVER" ] || fail "could not download any postgresql-15 source package"
UPSTREAM=${SRCVER%%-*}
DIR=$SCRATCH/src/postgresql-15-$UPSTREAM
[ -d "$DIR" ] || fail "apt-get source did not unpack into $DIR"
[ "$SRCVER" = "$WANT" ] || say "note: building source $SRCVER, the installed server is $WANT"
T_SRC=$SECONDS
say "source postgresql-15 $SRCVER ($((T_SRC - T_DEPS)) s)"

# --- configure, build -----------------------------------------------------
cd "$DIR"
./configure "${CONFIGURE_FLAGS[@]}" >>"$LOG" 2>&1 || fail "configure failed"
T_CONF=$SECONDS
say "configure ($((T_CONF - T_SRC)) s)"
make -j"$(nproc)" >>"$LOG" 2>&1 || fail "make failed"
T_MAKE=$SECONDS
say "make -j$(nproc) ($((T_MAKE - T_CONF)) s)"

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

# --- install --------------------------------------------------------------
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
"$PREFIX/bin/pg_config" --configure | grep -q -- '--enable-cassert' ||
	fail "$PREFIX/bin/pg_config does not report --enable-cassert"
T_INST=$SECONDS
say "make install ($((T_INST - T_MAKE)) s)"

# the stamp last: its presence means everything above succeeded
printf '%s\nsource=%s\n' "$STAMP_KEY" "$SRCVER" >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"
complete || fail "the installed build is incomplete"
say "ready: $PREFIX (source $SRCVER, $("$PREFIX/bin/pg_config" --version); built in $((SECONDS - T0)) s)"
