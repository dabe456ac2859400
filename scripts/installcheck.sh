#!/bin/bash
# scripts/installcheck.sh PREFIX WORKDIR — the pg_regress suite ("make
# installcheck", then "make installcheck-private") against the PostgreSQL
# under PREFIX, whose pg_config must already have aibackup installed.
#
# Starts a scratch cluster of its own under WORKDIR (initdb, UTF-8, locale C,
# no shared_preload_libraries, reachable only through a Unix socket in a
# directory of its own, so no port is shared with anyone), runs REGRESS,
# restarts it with test/regress/private.conf for REGRESS_PRIVATE, stops it
# by its pid file, and prints TAP: "1..1" and "ok 1 - make installcheck
# against PostgreSQL X.Y" or "not ok ...", with regression.diffs as "#"
# lines.  The results and the server log stay in WORKDIR.
#
# Runs as postgres (PostgreSQL refuses root); as root it makes WORKDIR,
# gives it to postgres and runs itself again as postgres.  The source tree
# it runs from is only read (pg_regress writes into WORKDIR), so it may be
# owned by anyone postgres can read, postgres included.
set -euo pipefail
# a server with no keys looks along AWS's credential chain: never off 127.0.0.1
export AWS_EC2_METADATA_DISABLED=true

if [ $# -ne 2 ]; then
	echo "usage: scripts/installcheck.sh PREFIX WORKDIR" >&2
	exit 2
fi
PREFIX=$(cd "$1" && pwd)
WORK=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -eq 0 ]; then
	mkdir -p "$WORK"
	chown postgres: "$WORK"
	exec runuser -u postgres -- "$SRC/scripts/installcheck.sh" "$PREFIX" "$WORK"
fi

WORK=$(mkdir -p "$WORK" && cd "$WORK" && pwd)
PG_CONFIG=$PREFIX/bin/pg_config
BINDIR=$("$PG_CONFIG" --bindir)
VERSION=$("$PG_CONFIG" --version)
DATA=$WORK/data
LOG=$WORK/server.log
MAKELOG=$WORK/make.log
# a short path: a Unix socket's name is limited to about 100 bytes
SOCK=$(mktemp -d /tmp/aibackup-regress.XXXXXX)
PORT=55432

say() { echo "# $*"; }

STARTED=
stop_server() {
	if [ -n "$STARTED" ] && [ -f "$DATA/postmaster.pid" ]; then
		# pg_ctl finds the server by its pid file
		"$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >>"$LOG" 2>&1 || true
	fi
	STARTED=
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	stop_server
	rm -rf "$SOCK"
}
trap cleanup EXIT

result() {
	echo "1..1"
	if [ "$1" = ok ]; then
		echo "ok 1 - make installcheck against $VERSION"
		exit 0
	fi
	echo "not ok 1 - make installcheck against $VERSION"
	exit 1
}

start_server() {
	"$BINDIR/pg_ctl" start -D "$DATA" -w -t 60 -l "$LOG" >>"$MAKELOG" 2>&1 || {
		say "the server did not start; the end of $LOG:"
		tail -n 20 "$LOG" | sed 's/^/#   /'
		result "not ok"
	}
	STARTED=1
}

show_diffs() {
	local dir=$1
	say "$(tail -n 3 "$MAKELOG" | tr '\n' ' ')"
	if [ -f "$dir/regression.diffs" ]; then
		say "$dir/regression.diffs:"
		sed 's/^/#   /' "$dir/regression.diffs"
	else
		say "no regression.diffs; the end of $MAKELOG:"
		tail -n 20 "$MAKELOG" | sed 's/^/#   /'
	fi
}

# phase: make TARGET with pg_regress's output in WORK/NAME; every test the
# Makefile's variable VAR names must have run (an empty list, or make
# skipping pg_regress, would otherwise look like a pass)
run_make() {
	local target=$1 out=$WORK/$2 var=$3 want t

	want=$(make -s -C "$SRC" --no-print-directory PG_CONFIG="$PG_CONFIG" \
		--eval 'ab-print-%: ; @echo $($*)' "ab-print-$var" 2>>"$MAKELOG")
	if [ -z "$want" ]; then
		say "the Makefile's $var names no test"
		result "not ok"
	fi
	rm -rf "$out"
	mkdir -p "$out"
	echo "== make $target" >>"$MAKELOG"
	make -C "$SRC" --no-print-directory "$target" PG_CONFIG="$PG_CONFIG" \
		PGHOST="$SOCK" PGPORT="$PORT" PGUSER=postgres \
		EXTRA_REGRESS_OPTS="--outputdir=$out" >>"$MAKELOG" 2>&1 || {
		show_diffs "$out"
		result "not ok"
	}
	for t in $want; do
		if [ ! -s "$out/results/$t.out" ]; then
			say "make $target passed but test $t did not run (no $out/results/$t.out)"
			result "not ok"
		fi
	done
}

if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/aibackup.control" ]; then
	say "aibackup is not installed in $PREFIX (make install PG_CONFIG=$PG_CONFIG)"
	result "not ok"
fi
rm -rf "$DATA" "$LOG" "$MAKELOG"
"$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 \
	--locale=C --no-sync >"$MAKELOG" 2>&1 || {
	say "initdb failed:"
	sed 's/^/#   /' "$MAKELOG"
	result "not ok"
}
cat >>"$DATA/postgresql.conf" <<EOF
# scripts/installcheck.sh
listen_addresses = ''
unix_socket_directories = '$SOCK'
port = $PORT
fsync = off
lc_messages = 'C'
EOF

start_server
run_make installcheck public REGRESS
stop_server
cat "$SRC/test/regress/private.conf" >>"$DATA/postgresql.conf"
start_server
run_make installcheck-private private REGRESS_PRIVATE
stop_server
result ok
