#!/bin/bash
# scripts/indent.sh [--prepare | --check | --diff] — PostgreSQL's layout
# (pgindent) for the project's C sources.
#
#   scripts/indent.sh --prepare   as root: install pg-bsd-indent, fetch pgindent
#                                 and typedefs.list (once, into the cache)
#   scripts/indent.sh             reindent the tree in place (make indent)
#   scripts/indent.sh --check     change nothing; exit 1 listing the files
#                                 that would change (make indent-check)
#   scripts/indent.sh --diff      like --check, and show the changes
#   scripts/indent.sh --typedefs  print the typedefs added to PostgreSQL's list
#
# Files: src/**/*.[ch] (src/core included: held to the same layout), and
# test/unit, test/s3, test/fuzz *.[ch].
#
# pgindent and typedefs.list come from PostgreSQL 15's source package
# (src/tools/pgindent), fetched through a private apt state (deb-src lines
# for bookworm; the machine's apt sources are not touched) into
# $AIBACKUP_PGINDENT_CACHE (default /var/tmp/aibackup-pgindent).  The
# indenter is Debian's pg-bsd-indent (/usr/bin/pg_bsd_indent, 2.1.1 in
# Debian 12: the version pgindent 15 asks for; checked before each run).
#
# Typedefs: PostgreSQL's list, plus every typedef the project declares
# (typedef ... Name; and typedef struct {...} Name; in src/ and test/),
# plus the typedefs of the libraries it calls (libcurl, zlib, OpenSSL and
# <stdint.h>, from the installed headers) that the sources use; nothing is
# kept by hand.
#
# Only --prepare (or a first run as root) needs root; --check and --diff run
# as any user once the cache is prepared (scripts/indent-check.tap).
# pgindent runs on copies in a scratch directory: the tree only ever gets the
# final files (no .BAK or temporary files left in it).
set -euo pipefail

say() { echo "indent.sh: $*"; }
die() { echo "indent.sh: ERROR: $*" >&2; exit 2; }

MODE=apply
case "${1:-}" in
	'') ;;
	--prepare) MODE=prepare ;;
	--check) MODE=check ;;
	--diff) MODE="diff" ;;
	--typedefs) MODE=typedefs ;;
	*) echo "usage: scripts/indent.sh [--prepare | --check | --diff | --typedefs]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${AIBACKUP_PGINDENT_CACHE:-/var/tmp/aibackup-pgindent}
PGINDENT_SCRIPT=$CACHE/pgindent
PG_TYPEDEFS=$CACHE/typedefs.list
export PGINDENT=${PGINDENT:-/usr/bin/pg_bsd_indent}

prepared() {
	[ -r "$PGINDENT_SCRIPT" ] && [ -r "$PG_TYPEDEFS" ] && [ -x "$PGINDENT" ]
}

prepare() {
	[ "$(id -u)" -eq 0 ] || die "preparing needs root: sudo scripts/indent.sh --prepare"
	export DEBIAN_FRONTEND=noninteractive
	if [ "$PGINDENT" = /usr/bin/pg_bsd_indent ] && [ ! -x "$PGINDENT" ]; then
		say "installing pg-bsd-indent"
		apt-get install -y -qq --no-install-recommends pg-bsd-indent >/dev/null ||
			{ apt-get update -qq && apt-get install -y -qq --no-install-recommends pg-bsd-indent >/dev/null; }
	fi
	for p in dpkg-dev bzip2; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' ||
			apt-get install -y -qq --no-install-recommends "$p" >/dev/null
	done
	if [ -r "$PGINDENT_SCRIPT" ] && [ -r "$PG_TYPEDEFS" ]; then
		say "ready: $CACHE ($(cat "$CACHE/SOURCE" 2>/dev/null || echo '?'), cached)"
		return 0
	fi
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	local T0=$SECONDS

	# A private apt state with deb-src lines for the machine's Debian mirror
	# (as scripts/build-pg.sh does).
	local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg apt
	debian_uri() {
		# shellcheck disable=SC2016  # apt's format, not a shell expansion
		apt-get indextargets --format '$(TARGET_OF) $(ORIGIN) $(REPO_URI) $(RELEASE)' |
			awk '$1 == "deb" && $2 == "Debian" && $4 !~ /security/ { print $3; exit }'
	}
	mirror=$(debian_uri)
	if [ -z "$mirror" ]; then
		apt-get update -qq
		mirror=$(debian_uri)
	fi
	[ -n "$mirror" ] || die "no Debian archive found in the machine's apt sources"
	apt=$CACHE/apt
	mkdir -p "$apt/lists/partial"
	printf 'deb-src [signed-by=%s] %s %s main\n' "$keyring" "$mirror" bookworm \
		"$keyring" "$mirror" bookworm-updates >"$apt/sources.list"
	local opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
		-o Dir::Etc::SourceParts=/nonexistent
		-o "Dir::State::Lists=$apt/lists"
		-o Acquire::Check-Valid-Until=false)
	apt-get -qq "${opts[@]}" update

	# Only the upstream tarball is needed, and from it only two files.
	local dl=$CACHE/download
	rm -rf "$dl"
	mkdir -p "$dl"
	chmod 755 "$dl"
	if id _apt >/dev/null 2>&1; then chown _apt:root "$dl"; fi
	(cd "$dl" && apt-get -q "${opts[@]}" source --download-only postgresql-15 >"$CACHE/download.log" 2>&1) ||
		{ tail -n 5 "$CACHE/download.log" >&2; die "apt-get source --download-only postgresql-15 failed"; }
	local dsc orig
	dsc=$(ls "$dl"/postgresql-15_*.dsc)
	orig=$(ls "$dl"/postgresql-15_*.orig.tar.*)
	local tmp
	tmp=$(mktemp -d "$CACHE/extract.XXXXXX")
	tar -xf "$orig" -C "$tmp" --wildcards --no-anchored \
		'src/tools/pgindent/pgindent' 'src/tools/pgindent/typedefs.list'
	install -m 755 "$tmp"/*/src/tools/pgindent/pgindent "$PGINDENT_SCRIPT.new"
	install -m 644 "$tmp"/*/src/tools/pgindent/typedefs.list "$PG_TYPEDEFS.new"
	echo "postgresql-15 $(sed -n 's/^Version: //p' "$dsc" | head -n 1)" >"$CACHE/SOURCE"
	rm -rf "$tmp" "$dl"
	mv "$PG_TYPEDEFS.new" "$PG_TYPEDEFS"
	mv "$PGINDENT_SCRIPT.new" "$PGINDENT_SCRIPT" # last: its presence means ready
	chmod 755 "$CACHE"
	say "ready: $CACHE ($(cat "$CACHE/SOURCE"), $((SECONDS - T0)) s)"
}

if [ "$MODE" = prepare ]; then
	prepare
	exit 0
fi
if ! prepared; then
	if [ "$(id -u)" -eq 0 ]; then
		prepare
	else
		die "not prepared ($CACHE/pgindent, $CACHE/typedefs.list, $PGINDENT); run as root: scripts/indent.sh --prepare"
	fi
fi

# pgindent checks the indenter's version itself, but only says "not
# installed"; say which versions meet.
# shellcheck disable=SC2016  # a Perl variable, matched literally
WANT_VERSION=$(sed -n 's/^my \$INDENT_VERSION = "\(.*\)";/\1/p' "$PGINDENT_SCRIPT")
HAVE_VERSION=$("$PGINDENT" --version 2>&1 | head -n 1 || true)
case " $HAVE_VERSION " in
	*" $WANT_VERSION "*) ;;
	*) die "pgindent ($(cat "$CACHE/SOURCE" 2>/dev/null)) wants pg_bsd_indent $WANT_VERSION; $PGINDENT says: $HAVE_VERSION" ;;
esac

cd "$ROOT"
mapfile -t FILES < <(
	{
		find src -name '*.[ch]' -type f
		find test/unit test/s3 test/fuzz -maxdepth 1 -name '*.[ch]' -type f 2>/dev/null
	} | LC_ALL=C sort
)
[ "${#FILES[@]}" -gt 0 ] || die "no C sources found under $ROOT"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/aibackup-indent.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

# --- typedefs: PostgreSQL's + the project's + its libraries' ---------------
# Each file: comments and preprocessor lines dropped, then every "typedef"
# read up to its ";" at brace depth 0; the declared name is (*Name) for a
# function pointer or (Name) for a function type, else the last identifier
# of each declarator (array bounds, brace bodies and parameter lists
# removed); C's own type words are never taken.
extract_typedefs() {
	perl -0777 -ne '
		BEGIN {
			%c_words = map { $_ => 1 } qw(void char short int long float double
				signed unsigned struct union enum const volatile _Bool);
		}
		s{/\*.*?\*/}{ }gs;
		s{//[^\n]*}{}g;
		s{^[ \t]*#(?:[^\n]*\\\n)*[^\n]*}{}mg;
		while (/\btypedef\b/g) {
			my $start = pos;
			my ($depth, $i) = (0, $start);
			for (; $i < length; $i++) {
				my $c = substr($_, $i, 1);
				$depth++ if $c eq "{";
				$depth-- if $c eq "}";
				last if $c eq ";" && $depth == 0;
			}
			my $d = substr($_, $start, $i - $start);
			pos = $i;
			1 while $d =~ s/\{[^{}]*\}/ /g;
			if ($d =~ /\(\s*(?:\*\s*)+(\w+)\s*\)/ || $d =~ /\(\s*(\w+)\s*\)\s*\(/) {
				print "$1\n";
				next;
			}
			1 while $d =~ s/\([^()]*\)//g;
			$d =~ s/\[[^\]]*\]//g;
			for my $part (split /,/, $d) {
				next unless $part =~ /(\w+)\s*$/;
				print "$1\n" unless $c_words{$1};
			}
		}' "$@"
}
mapfile -t OWN_SOURCES < <(find src test -name '*.[ch]' -type f | LC_ALL=C sort)
extract_typedefs "${OWN_SOURCES[@]}" | LC_ALL=C sort -u >"$SCRATCH/own.list"
LIB_HEADERS=()
for h in /usr/include/curl/*.h /usr/include/*/curl/*.h /usr/include/zlib.h /usr/include/zconf.h \
	/usr/include/openssl/*.h /usr/include/*/openssl/*.h \
	/usr/include/stdint.h /usr/include/*/bits/stdint-*.h; do
	[ -f "$h" ] && LIB_HEADERS+=("$h")
done
if [ "${#LIB_HEADERS[@]}" -gt 0 ]; then
	# only names the sources actually use
	cat "${OWN_SOURCES[@]}" | grep -oE '\b[A-Za-z_][A-Za-z0-9_]*\b' | LC_ALL=C sort -u >"$SCRATCH/words"
	extract_typedefs "${LIB_HEADERS[@]}" | LC_ALL=C sort -u |
		LC_ALL=C comm -12 - "$SCRATCH/words" >"$SCRATCH/libs.list"
else
	: >"$SCRATCH/libs.list"
fi
cat "$PG_TYPEDEFS" "$SCRATCH/own.list" "$SCRATCH/libs.list" | LC_ALL=C sort -u >"$SCRATCH/typedefs.list"
if [ "$MODE" = typedefs ]; then
	sed 's/^/project: /' "$SCRATCH/own.list"
	sed 's/^/library: /' "$SCRATCH/libs.list"
	exit 0
fi

# --- pgindent on copies -----------------------------------------------------
mkdir "$SCRATCH/tree" "$SCRATCH/work"
for f in "${FILES[@]}"; do
	mkdir -p "$SCRATCH/tree/$(dirname "$f")"
	cp -p "$f" "$SCRATCH/tree/$f"
done
COPIES=()
for f in "${FILES[@]}"; do COPIES+=("$SCRATCH/tree/$f"); done
# pgindent makes its temporary files in the current directory
(cd "$SCRATCH/work" && perl "$PGINDENT_SCRIPT" --typedefs="$SCRATCH/typedefs.list" \
	--indent="$PGINDENT" "${COPIES[@]}") >"$SCRATCH/pgindent.log" 2>&1 ||
	{ cat "$SCRATCH/pgindent.log" >&2; die "pgindent failed"; }

# A file pg_bsd_indent cannot parse (it says "Failure in FILE: Error@LINE:
# ..." and pgindent leaves the file as it was) is not clean either: it
# needs rewriting by hand (e.g. a compound literal "(T) {a, b}" as a call's
# argument, which pg_bsd_indent takes for unbalanced parentheses).
CHANGED=()
FAILED=()
declare -A WHY=()
for f in "${FILES[@]}"; do
	why=$(grep -F "Failure in $SCRATCH/tree/$f: " "$SCRATCH/pgindent.log" | head -n 1 || true)
	if [ -n "$why" ]; then
		FAILED+=("$f")
		WHY[$f]=${why#"Failure in $SCRATCH/tree/$f: "}
	elif ! cmp -s "$f" "$SCRATCH/tree/$f"; then
		CHANGED+=("$f")
	fi
done
report_failed() {
	local f
	for f in "${FAILED[@]}"; do
		echo "$f (pg_bsd_indent cannot indent it: ${WHY[$f]}; see indent.sh --diff)"
	done
}

case "$MODE" in
	apply)
		for f in "${CHANGED[@]}"; do
			cat "$SCRATCH/tree/$f" >"$f" # keeps the file's mode and owner
			echo "reindented: $f"
		done
		# pgindent's leftovers, should an older run have left any
		find src test -name '*.BAK' -type f -delete
		say "${#CHANGED[@]} of ${#FILES[@]} files changed"
		if [ "${#FAILED[@]}" -gt 0 ]; then
			report_failed
			say "${#FAILED[@]} files left as they were: pg_bsd_indent cannot parse them" >&2
			exit 1
		fi
		;;
	check | diff)
		if [ "${#CHANGED[@]}" -eq 0 ] && [ "${#FAILED[@]}" -eq 0 ]; then
			say "all ${#FILES[@]} files are pgindent-clean"
			exit 0
		fi
		for f in "${CHANGED[@]}"; do
			echo "$f"
			if [ "$MODE" = diff ]; then
				diff -u --label "a/$f" --label "b/$f" "$f" "$SCRATCH/tree/$f" || true
			fi
		done
		report_failed
		if [ "$MODE" = diff ] && [ "${#FAILED[@]}" -gt 0 ]; then
			grep -v "^\s*$" "$SCRATCH/pgindent.log" | sed "s|$SCRATCH/tree/||"
		fi
		say "$((${#CHANGED[@]} + ${#FAILED[@]})) of ${#FILES[@]} files are not pgindent-clean" >&2
		exit 1
		;;
esac
