#!/bin/bash
# scripts/run-suites.sh WORK [pattern] — run every suite (called by
# scripts/test.sh as the postgres user).  Starts the S3 server and the fault
# proxy, runs the suites through TAP::Harness, stops what it started.
set -uo pipefail

WORK=$1
PATTERN=${2:-}
S3DIR=$WORK/s3
PROXY_PID=

cleanup() {
	if [ -n "$PROXY_PID" ]; then
		kill "$PROXY_PID" 2>/dev/null
		wait "$PROXY_PID" 2>/dev/null
	fi
	bash "$WORK/scripts/s3server.sh" stop "$S3DIR" >/dev/null 2>&1
}
trap cleanup EXIT

# the machine's global CA bundle variables would override our test CA
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE REQUESTS_CA_BUNDLE
# a server with no keys in its settings looks for credentials along AWS's
# chain, which ends at EC2's metadata service: tests reach 127.0.0.1 only
export AWS_EC2_METADATA_DISABLED=true

if ! bash "$WORK/scripts/s3server.sh" start "$S3DIR"; then
	echo "could not start the S3 server"
	echo "0 passed, 1 failed"
	exit 1
fi
# shellcheck disable=SC1091
source "$S3DIR/env"

FAULT_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/bin/python3 "$WORK/scripts/faultproxy.py" --listen "127.0.0.1:$FAULT_PORT" \
	--upstream "${S3_HTTP_ENDPOINT#http://}" >"$WORK/faultproxy.log" 2>&1 &
PROXY_PID=$!
export S3_FAULT_ENDPOINT="http://127.0.0.1:$FAULT_PORT"
for _ in $(seq 1 50); do
	curl -s -o /dev/null "$S3_FAULT_ENDPOINT/__fault__" && break
	sleep 0.1
done

export PERL5LIB=/usr/lib/postgresql/15/lib/pgxs/src/test/perl${PERL5LIB:+:$PERL5LIB}
export PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
export TESTDIR=$WORK/tap
export AIBACKUP_TEST_WORK=$WORK
mkdir -p "$TESTDIR"

# Server flavours (AIBACKUP_FLAVOURS from test.sh: "name:prefix:ok|failed"
# ...): t/harness.pl runs each t/0*.pl once per flavour with these in its
# environment; each flavour's own work and TAP log directory keep their files
# apart.  Names are made shell-safe for the variable names (15-assert ->
# 15_assert).
for f in ${AIBACKUP_FLAVOURS:-}; do
	IFS=: read -r name prefix status <<<"$f"
	var=AIBACKUP_FL_${name//-/_}
	export "${var}_STATUS=$status"
	[ "$status" = failed ] && continue
	# "system" is Debian 12's 15; a Debian server directory
	# (/usr/lib/postgresql/NN, e.g. trixie's 17 in scripts/chroot-pg.sh)
	# is laid out the same way
	[ "$prefix" != system ] || prefix=/usr/lib/postgresql/15
	if [[ "$prefix" =~ ^/usr/lib/postgresql/[0-9]+$ ]]; then
		PGXSDIR=$prefix/lib/pgxs
		export "${var}_PATH=$prefix/bin:$PATH"
		export "${var}_PG_CONFIG=$prefix/bin/pg_config"
	else
		# scripts/build-pg.sh's layout (libdir PREFIX/lib/postgresql); the
		# server may still be building ("pending")
		PGXSDIR=$prefix/lib/postgresql/pgxs
		export "${var}_PATH=$prefix/bin:$PATH"
		export "${var}_PG_CONFIG=$prefix/bin/pg_config"
	fi
	export "${var}_PERL5LIB=$PGXSDIR/src/test/perl"
	export "${var}_PG_REGRESS=$PGXSDIR/src/test/regress/pg_regress"
	export "${var}_WORK=$WORK/flavour-$name"
	mkdir -p "$WORK/flavour-$name/tap"
done
export AIBACKUP_FLAVOURS=${AIBACKUP_FLAVOURS:-} AIBACKUP_BUILDS=${AIBACKUP_BUILDS:-}
export AIBACKUP_BUILDER=${AIBACKUP_BUILDER:-} AIBACKUP_PART=${AIBACKUP_PART:-}

cd "$WORK"
perl "$WORK/t/harness.pl" "$PATTERN"
