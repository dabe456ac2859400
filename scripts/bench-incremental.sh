#!/bin/bash
# bench-incremental.sh: what an incremental backup saves, by hand (not in CI).
#
# Against a running server with aibackup configured (libpq's PG* variables
# say where; the database is created and dropped), it makes TABLES tables of
# about SIZE_MB megabytes each of mixed columns, then times
#   1. a full backup (full => true),
#   2. a backup with nothing changed,
#   3. a backup after one row of one table changed,
# and prints the times, the bytes each uploaded (the objects read, not
# copied) and their ratios to the full backup.
#   scripts/bench-incremental.sh [TABLES [SIZE_MB]]     (default 10 x 100)
set -euo pipefail
TABLES=${1:-10}
SIZE_MB=${2:-100}
DB=aibackup_bench_incremental
ROWS=$((SIZE_MB * 1024 * 1024 / 200))	# about 200 bytes of CSV per row

q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB"' EXIT
q -c "CREATE EXTENSION aibackup"
for i in $(seq 1 "$TABLES"); do
	q -c "CREATE TABLE t$i (id bigint PRIMARY KEY, name text, amount numeric(12,2),
	                        at timestamptz, doc jsonb)" \
	  -c "INSERT INTO t$i SELECT g, md5(g::text) || ' ' || md5((g * $i)::text),
	             (g % 100000) / 100.0, '2026-01-01'::timestamptz + g * interval '1 s',
	             jsonb_build_object('k', g % 97, 'tag', 't' || (g % 13))
	        FROM generate_series(1, $ROWS) g"
done
q -c "VACUUM ANALYZE"	# hint bits set now, not by the first backup's read

run() {
	local label=$1 sql=$2 t0 t1 id
	t0=$(date +%s.%N)
	id=$(q -At -c "SET client_min_messages = warning" -c "$sql")
	t1=$(date +%s.%N)
	read -r total uploaded copied < <(q -At -F' ' -c "SELECT sum(compressed_bytes),
	        coalesce(sum(compressed_bytes) FILTER (WHERE copied_from IS NULL), 0),
	        count(copied_from) FROM aibackup_list_tables('$id')")
	printf '%s %s %s %s %s\n' "$label" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$uploaded" "$total" "$copied"
}

{
	run full "SELECT aibackup_backup_now(full => true)"
	run unchanged "SELECT aibackup_backup_now()"
	q -c "UPDATE t1 SET amount = amount + 1 WHERE id = 42"
	run one_changed "SELECT aibackup_backup_now()"
} | awk -v n="$TABLES" -v mb="$SIZE_MB" '
	{ label[NR] = $1; secs[NR] = $2; up[NR] = $3; total[NR] = $4; copied[NR] = $5 }
	END {
		printf "%d tables of about %d MB of CSV each\n", n, mb
		printf "%-12s %9s %14s %9s %11s %7s\n", "backup", "seconds", "uploaded", "copied", "time ratio", "bytes"
		for (i = 1; i <= NR; i++)
			printf "%-12s %9.2f %14d %9d %11.3f %7.4f\n", label[i], secs[i], up[i], copied[i],
				secs[i] / secs[1], up[i] / up[1]
	}'
