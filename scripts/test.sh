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
make -s PG_CONFIG=/usr/bin/pg_config testbin >/dev/null

# a scratch copy the postgres user can read and write
WORK=$(mktemp -d /tmp/aibackup-test.XXXXXX)
cp -a scripts t "$WORK"/
mkdir -p "$WORK/bin"
cp test/unit/test_core test/unit/test_streams test/unit/test_s3_rules \
	test/s3/test_s3_client "$WORK/bin/"
chown -R postgres:postgres "$WORK"

set +e
runuser -u postgres -- env -i PATH="$PATH" HOME="$WORK" LANG=C.UTF-8 \
	bash "$WORK/scripts/run-suites.sh" "$WORK" "${1:-}"
rc=$?
set -e
if [ $rc -eq 0 ] && [ -z "${KEEP_TEST_DIR:-}" ]; then
	rm -rf "$WORK"
else
	echo "test work directory kept: $WORK"
fi
exit $rc
