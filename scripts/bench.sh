#!/bin/bash
# bench.sh: aibackup against the usual tools, by hand (not in CI, never run
# by scripts/test.sh).
#
# Against a running server with aibackup preloaded and its aibackup.s3_*
# settings set (libpq's PG* variables say where; run it as the server's OS
# user, on the server's machine, for the memory figures), with the S3
# server's variables in the environment (`. DIR/env` of scripts/s3server.sh:
# S3_HTTP_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION; the
# usual AWS_* variables win over the S3_* ones) and the AWS CLI on PATH.
# It creates the database aibackup_bench with 4 tables t1..t4 of about
# SIZE_MB megabytes of CSV each and one table "big" of about BIG_MB (0: none),
# each with a bigint primary key, text, numeric, timestamptz, jsonb and an
# index on the timestamptz, and runs each measurement REPEAT times:
#   1. aibackup_backup_now(full => true) at aibackup.compression_level 6 and
#      1, with 1 table worker and, when the server has
#      aibackup.max_parallel_tables, with 2,
#   2. pg_dump -t T | gzip -6 | aws s3 cp - per table, one after another,
#   3. pg_dump -Fd -j 2 -Z 6, then aws s3 cp --recursive of the folder,
#   4. COPY T TO STDOUT (FORMAT csv, HEADER) | gzip -6 per table (the CSV
#      aibackup writes), and COPY alone,
#   5. restoring t1 in place with aibackup_restore_table() against
#      aws s3 cp of its object | gunzip | COPY FROM STDIN into an emptied
#      copy of t1 with the same indexes (TRUNCATE and COPY in one transaction),
#   6. the memory a backup of t1 alone and of big alone takes: the peak of
#      Pss_Anon (/proc/PID/smaps_rollup: the process's anonymous memory,
#      pages shared with the postmaster counted in part) summed over the
#      backend that runs it and every process whose backend_type mentions
#      aibackup, sampled every 0.1 s, minus the sum just before the backup,
# and prints the medians with their min-max, and the ratios. The settings it
# changes (ALTER SYSTEM) are put back, the database is dropped, and the
# objects it wrote are deleted (its own under bench/ and the database's
# aibackup folder), whatever happens.
#   scripts/bench.sh [SIZE_MB [BIG_MB [REPEAT]]]     (default 100 2048 3)
set -euo pipefail
SIZE_MB=${1:-100}
BIG_MB=${2:-2048}
REPEAT=${3:-3}
DB=aibackup_bench
BYTES_PER_ROW=150	# of CSV, measured on the rows below
TABLES="t1 t2 t3 t4"
if [ "$BIG_MB" -gt 0 ]; then TABLES="$TABLES big"; fi
IN_TABLES="'${TABLES// /\', \'}'"	# 't1', 't2', ... for SQL

export AWS_ACCESS_KEY_ID=${S3_ACCESS_KEY:-${AWS_ACCESS_KEY_ID:?no S3_ACCESS_KEY: source the S3 server\'s env file}}
export AWS_SECRET_ACCESS_KEY=${S3_SECRET_KEY:-${AWS_SECRET_ACCESS_KEY:?}}
export AWS_DEFAULT_REGION=${S3_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
unset AWS_SESSION_TOKEN AWS_PROFILE
ENDPOINT=${S3_HTTP_ENDPOINT:-${AWS_ENDPOINT_URL:?no S3_HTTP_ENDPOINT}}
BUCKET=${S3_BUCKET:?}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aibackup-bench.XXXXXX")
# path-style addressing, as aibackup.s3_uri_style = path
printf '[default]\ns3 =\n  addressing_style = path\n' >"$WORK/aws-config"
export AWS_CONFIG_FILE=$WORK/aws-config
s3() { aws --endpoint-url "$ENDPOINT" "$@"; }

q() { psql -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
val() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

SETTINGS="'aibackup.compression_level', 'aibackup.max_parallel_tables'"
PUT_BACK=$(val -d postgres -c "SELECT CASE WHEN sourcefile LIKE '%postgresql.auto.conf'
	THEN format('ALTER SYSTEM SET %s = %L;', name, setting)
	ELSE format('ALTER SYSTEM RESET %s;', name) END
	FROM pg_settings WHERE name IN ($SETTINGS)")
HAVE_PARALLEL=$(val -d postgres -c "SELECT 1 FROM pg_settings WHERE name = 'aibackup.max_parallel_tables'")
SAMPLER=
FOLDER=

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	set +e
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
	printf '%s\n' "$PUT_BACK" "SELECT pg_reload_conf();" | val -d postgres >/dev/null
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB"
	for t in $TABLES; do s3 s3 rm --only-show-errors "s3://$BUCKET/bench/$t.sql.gz"; done
	s3 s3 rm --only-show-errors --recursive "s3://$BUCKET/bench/dir/"
	[ -n "$FOLDER" ] && s3 s3 rm --only-show-errors --recursive "s3://$BUCKET/$FOLDER/"
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- the data
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q -c "CREATE EXTENSION aibackup"
make_table() {	# NAME MB
	q -c "CREATE TABLE $1 (id bigint, customer text, note text, amount numeric(12,2),
	                       at timestamptz, doc jsonb)" \
	  -c "INSERT INTO $1 SELECT g, 'customer ' || (g * 7919 % 100003),
	             md5(g::text) || repeat(' ' || substr(md5((g * 31)::text), 1, 8), (g % 5)::int),
	             ((g * 104729) % 10000000) / 100.0,
	             '2026-01-01'::timestamptz + g * interval '17 s',
	             jsonb_build_object('k', g % 97, 'tag', 't' || (g % 13), 'ok', g % 2 = 0)
	        FROM generate_series(1::bigint, $(($2 * 1024 * 1024 / BYTES_PER_ROW))) g" \
	  -c "ALTER TABLE $1 ADD PRIMARY KEY (id)" \
	  -c "CREATE INDEX ON $1 (at)"
}
for t in t1 t2 t3 t4; do make_table "$t" "$SIZE_MB"; done
if [ "$BIG_MB" -gt 0 ]; then make_table big "$BIG_MB"; fi
q -c "CREATE TABLE t1_pipe (LIKE t1 INCLUDING ALL)"
q -c "VACUUM ANALYZE"	# hint bits set now, not by the first reader

# ---------------------------------------------------------------- helpers
# set_conf NAME VALUE: ALTER SYSTEM, reload, and wait until a new session sees it
set_conf() {
	val -d postgres -c "ALTER SYSTEM SET $1 = '$2'" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 1 100); do
		[ "$(val -d "$DB" -c "SELECT current_setting('$1')")" = "$2" ] && return
		sleep 0.05
	done
	echo "bench.sh: $1 is still not $2 after the reload" >&2
	exit 1
}
now() { date +%s.%N; }
# timed LABEL CMD...: runs CMD, appends its seconds to $WORK/t.LABEL
timed() {
	local label=$1 t0 t1
	shift
	t0=$(now)
	"$@"
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >>"$WORK/t.$label"
}

LAST_ID=
backup() {	# LEVEL: a full backup; its id in LAST_ID
	LAST_ID=$(q -At -c "SET client_min_messages = warning" -c "SELECT aibackup_backup_now(full => true)")
	val -d "$DB" -c "SELECT sum(compressed_bytes), sum(raw_bytes) FROM aibackup_list_tables('$LAST_ID')
	                 WHERE schema_name = 'public' AND table_name IN ($IN_TABLES)" -F' ' >"$WORK/size.l$1"
}
dump_each() {
	local t
	for t in $TABLES; do
		pg_dump -d "$DB" -t "public.$t" | gzip -6 | s3 s3 cp --only-show-errors - "s3://$BUCKET/bench/$t.sql.gz"
	done
}
dump_dir() {
	rm -rf "$WORK/dump"
	pg_dump -d "$DB" -Fd -j 2 -Z 6 -f "$WORK/dump"
	s3 s3 cp --only-show-errors --recursive "$WORK/dump" "s3://$BUCKET/bench/dir/"
}
copy_gzip() {
	local t n=0
	for t in $TABLES; do
		n=$((n + $(psql -X -d "$DB" -c "COPY $t TO STDOUT (FORMAT csv, HEADER)" | gzip -6 | wc -c)))
	done
	echo "$n" >"$WORK/size.gzip6"
}
copy_only() {
	local t n=0
	for t in $TABLES; do
		n=$((n + $(psql -X -d "$DB" -c "COPY $t TO STDOUT (FORMAT csv, HEADER)" | wc -c)))
	done
	echo "$n" >"$WORK/size.csv"
}
restore_ab() {
	q -c "SET client_min_messages = warning" -c "SELECT aibackup_restore_table('public.t1', '$RESTORE_ID')" >/dev/null
}
restore_pipe() {
	s3 s3 cp --only-show-errors "s3://$BUCKET/$RESTORE_KEY" - | gunzip |
		psql -X -q -1 -v ON_ERROR_STOP=1 -d "$DB" -c "TRUNCATE t1_pipe" -c "COPY t1_pipe FROM STDIN (FORMAT csv, HEADER)"
}

# Pss_Anon in kB summed over the pids given (a process gone counts 0)
MEM=0
mem_sum() {
	local p k v _
	MEM=0
	for p in "$@"; do
		[ -r "/proc/$p/smaps_rollup" ] || continue
		while read -r k v _; do
			if [ "$k" = Pss_Anon: ]; then MEM=$((MEM + v)); fi
		done <"/proc/$p/smaps_rollup" 2>/dev/null # the process may end mid-read
	done
}
aibackup_pids() {
	val -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type ILIKE '%aibackup%'" 2>/dev/null | tr '\n' ' '
}
# sample DIR: waits for DIR/pid, samples until DIR/stop, writes DIR/mem
# ("BASE PEAK" in kB, or "n/a")
sample() {
	local dir=$1 pid pids base peak n=0
	while [ ! -s "$dir/pid" ]; do sleep 0.02; done
	pid=$(<"$dir/pid")
	if [ ! -r "/proc/$pid/smaps_rollup" ] || ! grep -q '^Pss_Anon:' "/proc/$pid/smaps_rollup"; then
		echo n/a >"$dir/mem"
		: >"$dir/ready"
		return
	fi
	pids="$pid $(aibackup_pids)"
	# shellcheck disable=SC2086
	mem_sum $pids
	base=$MEM peak=$MEM
	: >"$dir/ready"
	while [ ! -e "$dir/stop" ]; do
		# shellcheck disable=SC2086
		mem_sum $pids
		if [ "$MEM" -gt "$peak" ]; then peak=$MEM; fi
		n=$((n + 1))
		if [ $((n % 10)) -eq 0 ]; then pids="$pid $(aibackup_pids)"; fi
		sleep 0.1
	done
	echo "$base $peak" >"$dir/mem"
}
memory() {	# LABEL TABLE
	local dir=$WORK/mem
	rm -rf "$dir" && mkdir "$dir"
	sample "$dir" &
	SAMPLER=$!
	q -At >/dev/null <<-EOF
		SET client_min_messages = warning;
		SELECT pg_backend_pid() \g $dir/pid
		\! for i in \$(seq 1 200); do [ -e $dir/ready ] && break; sleep 0.05; done
		SELECT aibackup_backup_now(ARRAY['public.$2']::regclass[], full => true);
	EOF
	: >"$dir/stop"
	wait "$SAMPLER"
	SAMPLER=
	read -r base peak <"$dir/mem" || true
	if [ "$base" = n/a ]; then
		echo n/a >>"$WORK/t.$1"
	else
		awk -v a="$base" -v b="$peak" 'BEGIN { printf "%.1f\n", (b - a) / 1024 }' >>"$WORK/t.$1"
	fi
}

# ---------------------------------------------------------------- the runs
WORKERS="1"
if [ -n "$HAVE_PARALLEL" ]; then WORKERS="1 2"; fi
for r in $(seq 1 "$REPEAT"); do
	echo "run $r of $REPEAT" >&2
	for level in 6 1; do
		set_conf aibackup.compression_level "$level"
		for w in $WORKERS; do
			if [ -n "$HAVE_PARALLEL" ]; then set_conf aibackup.max_parallel_tables "$w"; fi
			timed "ab_l${level}_w$w" backup "$level"
		done
		if [ "$level" = 6 ]; then RESTORE_ID=$LAST_ID; fi
	done
	set_conf aibackup.compression_level 6
	if [ -n "$HAVE_PARALLEL" ]; then set_conf aibackup.max_parallel_tables 1; fi
	timed dump_each dump_each
	timed dump_dir dump_dir
	timed copy_gzip copy_gzip
	timed copy_only copy_only
	RESTORE_KEY=$(val -d "$DB" -c "SELECT object_key FROM aibackup_list_tables('$RESTORE_ID')
	                               WHERE schema_name = 'public' AND table_name = 't1'")
	FOLDER=${RESTORE_KEY%/*/*}
	timed restore_ab restore_ab
	timed restore_pipe restore_pipe
	memory mem_t1 t1
	if [ "$BIG_MB" -gt 0 ]; then memory mem_big big; fi
done
q -At -c "SELECT (SELECT count(*) FROM t1) = (SELECT count(*) FROM t1_pipe)" | grep -qx t ||
	{ echo "bench.sh: t1 and t1_pipe differ after the restores" >&2; exit 1; }

# ---------------------------------------------------------------- the report
# stats LABEL: "median min max" of $WORK/t.LABEL, or "n/a"
stats() {
	if [ ! -s "$WORK/t.$1" ] || grep -q n/a "$WORK/t.$1"; then
		echo "n/a n/a n/a"
		return
	fi
	sort -g "$WORK/t.$1" | awk '{ v[NR] = $1 }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}
med() { stats "$1" | cut -d' ' -f1; }
line() {	# LABEL DESCRIPTION UNIT
	local m lo hi
	read -r m lo hi < <(stats "$1")
	if [ "$m" = n/a ]; then
		printf '  %-56s %10s\n' "$2" "n/a"
	else
		printf '  %-56s %10.2f %-4s (%.2f-%.2f)\n' "$2" "$m" "$3" "$lo" "$hi"
	fi
}
ratio() {	# DESCRIPTION A B: A / B
	if [ "$2" = n/a ] || [ "$3" = n/a ]; then
		printf '  %-56s %10s\n' "$1" "n/a"
	else
		awk -v d="$1" -v a="$2" -v b="$3" 'BEGIN { printf "  %-56s %10.3f\n", d, a / b }'
	fi
}
read -r ab6 raw <"$WORK/size.l6"
read -r ab1 _ <"$WORK/size.l1"
gz6=$(<"$WORK/size.gzip6")
csv=$(<"$WORK/size.csv")
nopar="n/a (no aibackup.max_parallel_tables)"
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

echo
big="big of about $BIG_MB MB"
if [ "$BIG_MB" = 0 ]; then big="no big table"; fi
echo "aibackup bench: t1..t4 of about $SIZE_MB MB of CSV each, $big; $REPEAT runs each"
echo "CSV $(mib "$csv") MiB (aibackup read $(mib "$raw")), gzip -6 $(mib "$gz6") MiB," \
	"aibackup level 6 $(mib "$ab6") MiB, level 1 $(mib "$ab1") MiB"
echo
echo "median seconds (min-max):"
line ab_l6_w1 "aibackup full, level 6, 1 worker" s
if [ -n "$HAVE_PARALLEL" ]; then line ab_l6_w2 "aibackup full, level 6, 2 workers" s
else printf '  %-56s %s\n' "aibackup full, level 6, 2 workers" "$nopar"; fi
line ab_l1_w1 "aibackup full, level 1, 1 worker" s
if [ -n "$HAVE_PARALLEL" ]; then line ab_l1_w2 "aibackup full, level 1, 2 workers" s
else printf '  %-56s %s\n' "aibackup full, level 1, 2 workers" "$nopar"; fi
line dump_each "pg_dump -t | gzip -6 | aws s3 cp, per table" s
line dump_dir "pg_dump -Fd -j 2 -Z 6 + aws s3 cp --recursive" s
line copy_gzip "COPY | gzip -6, per table" s
line copy_only "COPY > /dev/null, per table" s
line restore_ab "restore t1: aibackup_restore_table, in place" s
line restore_pipe "restore t1: aws s3 cp | gunzip | COPY FROM" s
echo "median MiB (min-max):"
line mem_t1 "memory peak, backup of t1 alone (Pss_Anon)" MiB
if [ "$BIG_MB" -gt 0 ]; then line mem_big "memory peak, backup of big alone (Pss_Anon)" MiB; fi
echo
echo "ratios of medians:"
ratio "aibackup 1 worker / (COPY | gzip -6)" "$(med ab_l6_w1)" "$(med copy_gzip)"
ratio "aibackup 1 worker / (pg_dump | gzip | aws), per table" "$(med ab_l6_w1)" "$(med dump_each)"
if [ -n "$HAVE_PARALLEL" ]; then
	ratio "aibackup 2 workers / (pg_dump | gzip | aws), per table" "$(med ab_l6_w2)" "$(med dump_each)"
	ratio "aibackup 2 workers / (pg_dump -Fd -j 2 + aws)" "$(med ab_l6_w2)" "$(med dump_dir)"
else
	printf '  %-56s %s\n' "aibackup 2 workers / (pg_dump | gzip | aws)" "$nopar"
	ratio "aibackup 1 worker / (pg_dump -Fd -j 2 + aws)" "$(med ab_l6_w1)" "$(med dump_dir)"
fi
ratio "aibackup level 1 / level 6, time, 1 worker" "$(med ab_l1_w1)" "$(med ab_l6_w1)"
ratio "aibackup level 6 bytes / gzip -6 bytes" "$ab6" "$gz6"
ratio "aibackup level 1 bytes / gzip -6 bytes" "$ab1" "$gz6"
ratio "restore: aibackup / (aws | gunzip | COPY FROM)" "$(med restore_ab)" "$(med restore_pipe)"
