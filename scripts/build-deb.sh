#!/bin/bash
# scripts/build-deb.sh OUTDIR — build the Debian binary package(s)
# postgresql-MAJOR-aibackup from this tree and put them in OUTDIR.
#
#   scripts/build-deb.sh /tmp/debs      (as root: installs build dependencies)
#
# One package per PostgreSQL major that debian/pgversions (15+) and the
# machine both support; on Debian 12 that is postgresql-15-aibackup.  The
# packaging is Debian's own way for extensions (debian/control.in with
# PGVERSION, pg_buildext build/install per major, out of tree in build-MAJOR).
#
# The tree is copied to a scratch directory first (tracked and untracked
# files, nothing git ignores: no .git, no objects), so the checkout is left
# untouched; dpkg-buildpackage -b -uc -us runs there.  No tests run during
# the build (see debian/rules).  When lintian is installed its findings are
# printed (not fatal).  The last lines printed are the paths of the .deb
# files in OUTDIR.
set -euo pipefail

say() { echo "build-deb.sh: $*"; }
die() { echo "build-deb.sh: ERROR: $*" >&2; exit 1; }

OUTDIR=${1:-}
[ -n "$OUTDIR" ] || { echo "usage: scripts/build-deb.sh OUTDIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "run me as root (installs the build dependencies)"
T0=$SECONDS
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

# --- build dependencies (debian/control's Build-Depends, plus the tools) ----
BUILD_DEPS="dpkg-dev debhelper postgresql-server-dev-all postgresql-common
libcurl4-openssl-dev libdeflate-dev zlib1g-dev libssl-dev libkrb5-dev make gcc"
NEED=
for p in $BUILD_DEPS; do
	case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" in
		ii*) ;;
		*) NEED="$NEED $p" ;;
	esac
done
if [ -n "$NEED" ]; then
	say "installing build dependencies:$NEED"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $NEED >/dev/null
fi
T_DEPS=$SECONDS

# --- a clean copy of the tree -----------------------------------------------
SCRATCH=$(mktemp -d /var/tmp/aibackup-deb.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
TREE=$SCRATCH/aibackup-$VERSION
mkdir "$TREE"
if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# what git tracks or would track: no .git, nothing .gitignore names
	(cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -xf - -C "$TREE"
else
	tar -C "$SRC" --exclude=.git --exclude='*.o' --exclude='*.bc' \
		--exclude='*.so' --exclude='build-*' --exclude=debian/.debhelper \
		-cf - . | tar -xf - -C "$TREE"
fi
say "source aibackup $VERSION copied to $TREE"

# --- build ------------------------------------------------------------------
LOG=$SCRATCH/build.log
KEPT_LOG=/var/tmp/aibackup-deb-build.log
NPROC=$(nproc)
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$NPROC"
# debian/control comes from debian/control.in for the majors this machine
# has; regenerate it in the copy rather than fail when they differ.
export PG_UPDATECONTROL=yes
if ! (cd "$TREE" && dpkg-buildpackage -b -uc -us) >"$LOG" 2>&1; then
	cp "$LOG" "$KEPT_LOG"
	tail -n 40 "$LOG" >&2
	die "dpkg-buildpackage failed (whole log: $KEPT_LOG)"
fi
T_BUILD=$SECONDS
say "dpkg-buildpackage ($((T_BUILD - T_DEPS)) s)"

shopt -s nullglob
DEBS=("$SCRATCH"/postgresql-*-aibackup_"$VERSION"_*.deb)
[ "${#DEBS[@]}" -gt 0 ] || die "no postgresql-*-aibackup_*.deb was built"

if command -v lintian >/dev/null 2>&1; then
	say "lintian:"
	lintian --info --display-info --pedantic "${DEBS[@]}" "$SCRATCH"/*.buildinfo 2>&1 |
		sed 's/^/    /' || true
fi

OUT=()
for d in "${DEBS[@]}"; do
	mv -f "$d" "$OUTDIR/"
	OUT+=("$OUTDIR/$(basename "$d")")
done
say "done in $((SECONDS - T0)) s (dependencies $((T_DEPS - T0)) s)"
printf '%s\n' "${OUT[@]}"
