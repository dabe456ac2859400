#!/bin/bash
# scripts/demo.sh — aibackup end to end, on a fresh Debian 12 machine.
#
#   sudo bash scripts/demo.sh          (KEEP=1 keeps the scratch folder)
#
# As root: installs the Debian packages (scripts/deps.sh), builds and installs
# the extension, then, as the unprivileged "postgres" user and entirely under
# one scratch folder (/tmp/aibackup-demo.XXXXXX):
#   - starts a local S3 server (scripts/s3server.sh: Swift + s3api, loopback)
#   - starts a throwaway PostgreSQL 15 cluster on its own port and unix
#     socket folder, with aibackup preloaded and pointed at that S3 server
#   - creates a sample "shop" database (customers, products, orders,
#     order_items with foreign keys, a sequence, events partitioned by month,
#     UTF-8 names), backs it up, lists the backups and tables
#   - damages products, compares it with a copy restored into a side table,
#     restores it in place and shows its checksum is the original's again;
#     restores one month of the partitioned events table
#   - the customer exit path: the backup is plain gzip'd CSV plus a JSON
#     manifest, downloaded with the AWS CLI and loaded with psql \copy, or
#     fetched with curl through a presigned URL
# On exit (success or failure) it stops the servers it started, by PID, and
# removes the scratch folder unless KEEP=1.  Exits non-zero if any step fails.
set -Eeuo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/demo.sh must run as root (it installs packages and the extension)" >&2
	exit 2
fi

# the machine may set these globally; they would override the AWS CLI's and
# curl's defaults (and we talk plain HTTP to a local server anyway)
unset AWS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE REQUESTS_CA_BUNDLE

KEEP=${KEEP:-0}
PGBIN=/usr/lib/postgresql/15/bin
WORK=
PGDATA=
PG_PID=
S3DIR=
S3_STARTED=0
STEP="preparing"
STEPNO=0
FAILED_CMD=
FAILED_LINE=
T0=$SECONDS

step() {
	STEPNO=$((STEPNO + 1))
	STEP="$STEPNO. $*"
	printf '\n== %s ==\n' "$STEP"
}
say() { printf '   %s\n' "$*"; }
indent() { sed 's/^/   /'; }
die() {
	echo "demo.sh: $*" >&2
	exit 1
}

# a process is ours when it is alive and its command line names our folder
pid_alive_ours() {
	local pid=$1 cmd
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[ -n "$cmd" ] || return 1
	case "$cmd" in *"$WORK/"*) return 0 ;; esac
	return 1
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM ERR
	set +e
	if [ $rc -ne 0 ]; then
		echo >&2
		echo "demo.sh: FAILED in step \"$STEP\" (exit $rc)" >&2
		if [ -n "$FAILED_CMD" ]; then
			echo "demo.sh: line $FAILED_LINE: $(sed -n "${FAILED_LINE}{s/^[[:space:]]*//;p}" "$REPO/scripts/demo.sh")" >&2
			echo "demo.sh: failing command: $FAILED_CMD" >&2
		fi
		if [ -n "$WORK" ] && [ -s "$WORK/postgres.log" ]; then
			echo "demo.sh: last lines of the PostgreSQL log ($WORK/postgres.log):" >&2
			tail -n 15 "$WORK/postgres.log" | sed 's/^/   | /' >&2
		fi
	fi
	printf '\n== cleanup ==\n'
	if [ -n "$PG_PID" ] && pid_alive_ours "$PG_PID"; then
		if as_pg pg_ctl -D "$PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
			say "PostgreSQL (pid $PG_PID) stopped"
		else
			say "pg_ctl stop failed; sending SIGQUIT to postmaster pid $PG_PID"
			kill -QUIT "$PG_PID" 2>/dev/null
			for _ in $(seq 1 50); do pid_alive_ours "$PG_PID" || break; sleep 0.1; done
		fi
	fi
	if [ "$S3_STARTED" = 1 ]; then
		local s3pids
		s3pids=$(tr '\n' ' ' <"$S3DIR/pids" 2>/dev/null)
		if as_pg bash "$WORK/s3server.sh" stop "$S3DIR" >/dev/null 2>&1; then
			say "S3 server (pids ${s3pids% }) stopped"
		else
			say "scripts/s3server.sh stop $S3DIR failed"
			[ $rc -ne 0 ] || rc=1
		fi
	fi
	# nothing we started may be left running
	local left=
	for p in $PG_PID $(cat "$S3DIR/pids" 2>/dev/null); do
		pid_alive_ours "$p" && left="$left $p"
	done
	if [ -n "$left" ]; then
		echo "demo.sh: processes still running:$left" >&2
		[ $rc -ne 0 ] || rc=1
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$KEEP" = 1 ]; then
			say "scratch folder kept (KEEP=1): $WORK"
		else
			rm -rf -- "$WORK"
			say "scratch folder $WORK removed"
		fi
	fi
	if [ $rc -eq 0 ]; then
		printf '\ndemo finished OK in %d s\n' $((SECONDS - T0))
	else
		printf '\ndemo FAILED (exit %d)\n' "$rc" >&2
	fi
	exit $rc
}
# on error, remember the failing command and the line of this script that ran
# it (the outermost caller when it failed inside a helper function)
on_err() {
	local n=${#BASH_LINENO[@]}
	[ -z "$FAILED_CMD" ] || return 0
	FAILED_CMD=$1
	FAILED_LINE=${BASH_LINENO[n - 2]}
}
trap 'on_err "$BASH_COMMAND"' ERR
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run a command as postgres, with a clean environment pointing at our cluster
as_pg() {
	runuser -u postgres -- env -i PATH="$PGBIN:/usr/bin:/bin" HOME="$WORK" LANG=C.UTF-8 \
		PGHOST="$WORK/sock" PGPORT="${PGPORT:-5432}" PGUSER=postgres PGDATABASE="${DB:-shop}" \
		"$@"
}
# psql for people (aligned, echoes the SQL it runs) and for scripts (one value)
sql() { as_pg psql -X -q -v ON_ERROR_STOP=1 -P pager=off -P footer=off "$@"; }
sql_echo() { sql -e "$@" 2>&1 | indent; }
val() { as_pg psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
# one value of a query with psql variables (psql interpolates :'var' only in
# what it reads, not in -c): val_q 'SELECT :'"'"'x'"'"'' -v x=1
val_q() {
	local q=$1
	shift
	printf '%s\n' "$q" | val "$@"
}
# "N rows, md5 …" of a table, in a fixed row order (any table, same columns)
checksum() {
	val -c "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '')) FROM $1 t"
}
# the AWS CLI, as a customer would use it: keys from the environment, our
# endpoint, path-style addressing from a private config file
aws_s3() {
	runuser -u postgres -- env -i PATH=/usr/bin:/bin HOME="$WORK/aws" LANG=C.UTF-8 \
		AWS_CONFIG_FILE="$WORK/aws/config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws/no-credentials" \
		AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" \
		AWS_DEFAULT_REGION="$S3_REGION" AWS_PAGER= \
		/usr/bin/aws --endpoint-url "$S3_HTTP_ENDPOINT" "$@"
}

# ------------------------------------------------------------------ 1
step "installing packages, building and installing the extension"
bash scripts/deps.sh | indent
make -s PG_CONFIG=/usr/bin/pg_config all
make -s PG_CONFIG=/usr/bin/pg_config install >/dev/null
say "installed $(/usr/bin/pg_config --pkglibdir)/aibackup.so and the aibackup extension files"

WORK=$(mktemp -d /tmp/aibackup-demo.XXXXXX)
PGDATA=$WORK/pgdata
S3DIR=$WORK/s3
mkdir -p "$WORK/sock" "$WORK/aws" "$WORK/exit"
cp scripts/s3server.sh "$WORK/"
chown -R postgres:postgres "$WORK"
chmod 700 "$WORK"
say "scratch folder: $WORK (owned by postgres)"

# ------------------------------------------------------------------ 2
step "starting a local S3 server (OpenStack Swift + s3api, 127.0.0.1 only)"
S3_STARTED=1
as_pg env S3_QUIET=1 bash "$WORK/s3server.sh" start "$S3DIR" 2>&1 | indent
# shellcheck disable=SC1091
. "$S3DIR/env"
say "endpoint $S3_HTTP_ENDPOINT, bucket $S3_BUCKET, region $S3_REGION, access key $S3_ACCESS_KEY"
say "server pids: $(tr '\n' ' ' <"$S3DIR/pids")"

# ------------------------------------------------------------------ 3
step "starting a throwaway PostgreSQL 15 cluster with aibackup preloaded"
PGPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg initdb -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log" >&2; die "initdb failed"; }
cat >>"$PGDATA/postgresql.conf" <<CONF

# --- scripts/demo.sh ---
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$WORK/sock'
timezone = 'UTC'
shared_preload_libraries = 'aibackup'
aibackup.s3_endpoint = '$S3_HTTP_ENDPOINT'
aibackup.s3_region = '$S3_REGION'
aibackup.s3_bucket = '$S3_BUCKET'
aibackup.s3_prefix = 'demo'
aibackup.s3_uri_style = 'path'
aibackup.s3_access_key_id = '$S3_ACCESS_KEY'
aibackup.s3_secret_access_key = '$S3_SECRET_KEY'
# no scheduled backups: this demo runs them on demand
aibackup.enabled = off
CONF
export PGPORT
as_pg pg_ctl -D "$PGDATA" -l "$WORK/postgres.log" -w -t 60 start >/dev/null
PG_PID=$(head -n 1 "$PGDATA/postmaster.pid")
say "PostgreSQL $(val -d postgres -c 'SHOW server_version') running as pid $PG_PID,"
say "port $PGPORT, socket folder $WORK/sock, data $PGDATA"
say "aibackup settings in postgresql.conf:"
grep '^aibackup\.' "$PGDATA/postgresql.conf" | sed -e "s/\(secret_access_key = \).*/\1'********'/" -e 's/^/     /'

# ------------------------------------------------------------------ 4
step "creating the sample \"shop\" database"
DB=postgres val -c "CREATE DATABASE shop"
sql <<'SQL'
CREATE EXTENSION aibackup;

CREATE SEQUENCE order_no_seq START 100001;

CREATE TABLE customers (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL UNIQUE,
    country    char(2) NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE products (
    id     int PRIMARY KEY,
    sku    text NOT NULL UNIQUE,
    name   text NOT NULL,
    price  numeric(10,2) NOT NULL CHECK (price >= 0),
    tags   text[],
    attrs  jsonb
);
CREATE TABLE orders (
    id          bigint PRIMARY KEY DEFAULT nextval('order_no_seq'),
    customer_id int NOT NULL CONSTRAINT orders_customer_fk REFERENCES customers (id),
    ordered_at  timestamptz NOT NULL,
    status      text NOT NULL CHECK (status IN ('paid', 'shipped', 'delivered', 'cancelled'))
);
CREATE TABLE order_items (
    order_id   bigint NOT NULL CONSTRAINT order_items_order_fk REFERENCES orders (id),
    line       int NOT NULL,
    product_id int NOT NULL CONSTRAINT order_items_product_fk REFERENCES products (id),
    qty        int NOT NULL CHECK (qty > 0),
    unit_price numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, line)
);
CREATE TABLE events (
    id      bigint NOT NULL,
    at      timestamptz NOT NULL,
    kind    text NOT NULL,
    payload jsonb
) PARTITION BY RANGE (at);
CREATE TABLE events_2024_01 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE events_2024_02 PARTITION OF events FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
CREATE TABLE events_2024_03 PARTITION OF events FOR VALUES FROM ('2024-03-01') TO ('2024-04-01');
CREATE TABLE events_2024_04 PARTITION OF events FOR VALUES FROM ('2024-04-01') TO ('2024-05-01');
CREATE TABLE events_2024_05 PARTITION OF events FOR VALUES FROM ('2024-05-01') TO ('2024-06-01');
CREATE TABLE events_2024_06 PARTITION OF events FOR VALUES FROM ('2024-06-01') TO ('2024-07-01');

-- deterministic data (no random()): the same checksums on every run
INSERT INTO customers (name, email, country, created_at)
SELECT (ARRAY['Zoë', 'José', 'Søren', 'Françoise', 'Łukasz', 'Ольга', '美咲', 'Ingrid', 'Ahmed',
              'Chloé', 'Björn', 'Aoife', 'Renée', 'Jürgen', 'Siobhán', 'Dmitrij', 'Ana'])[1 + g % 17]
       || ' ' ||
       (ARRAY['Müller', 'García', 'Ångström', 'O''Brien', 'Nowak', 'Иванова', '佐藤', 'Smith, Jr.',
              'Dvořák', 'Øster', 'Nguyễn', 'Lefèvre', 'Şahin', '"Ace" Jönsson'])[1 + (g * 5) % 14],
       'customer' || g || '@example.com',
       (ARRAY['DE', 'ES', 'DK', 'FR', 'PL', 'RU', 'JP', 'SE', 'IE', 'US', 'VN'])[1 + g % 11],
       timestamptz '2023-01-01 00:00:00+00' + g * interval '6 hours 13 minutes'
FROM generate_series(1, 1200) g ORDER BY g;

INSERT INTO products
SELECT g, 'SKU-' || lpad(g::text, 5, '0'),
       (ARRAY['Café crème', 'Crème brûlée kit', 'Smørrebrød board', 'Matcha 抹茶 tin',
              'Pâte à choux tray', 'Weißbier glass', 'Jalapeño salsa', 'Æbleskiver pan',
              'Crêpe pan', 'Bánh mì knife'])[1 + g % 10] || ' #' || g,
       round(3 + (g * 37 % 2000) / 10.0, 2),
       ARRAY[(ARRAY['kitchen', 'food', 'gift', 'sale'])[1 + g % 4], 'batch-' || g % 3],
       jsonb_build_object('weight_g', 50 + g * 13 % 900, 'fragile', g % 5 = 0)
FROM generate_series(1, 200) g;

INSERT INTO orders (customer_id, ordered_at, status)
SELECT 1 + (g * 7919) % 1200,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '87 minutes',
       (ARRAY['paid', 'shipped', 'delivered', 'cancelled'])[1 + g % 4]
FROM generate_series(1, 3000) g ORDER BY g;

-- products 181..200 are never ordered
INSERT INTO order_items
SELECT o.id, l, p.id, 1 + (o.id + l) % 5, p.price
FROM orders o
CROSS JOIN LATERAL generate_series(1, 1 + o.id % 3) l
JOIN products p ON p.id = 1 + (o.id * 31 + l * 17) % 180;

INSERT INTO events
SELECT g, timestamptz '2024-01-01 00:00:00+00' + g * interval '65 minutes',
       (ARRAY['page_view', 'add_to_cart', 'checkout', 'search'])[1 + g % 4],
       jsonb_build_object('customer', 1 + g % 1200, 'q', CASE WHEN g % 4 = 3 THEN 'crème brûlée' END)
FROM generate_series(1, 3900) g;
ANALYZE;
SQL
sql -c "
SELECT 'customers' AS \"table\", count(*) AS rows FROM customers
UNION ALL SELECT 'products', count(*) FROM products
UNION ALL SELECT 'orders', count(*) FROM orders
UNION ALL SELECT 'order_items', count(*) FROM order_items
UNION ALL SELECT 'events (6 monthly partitions)', count(*) FROM events" | indent
say "sequence order_no_seq is at $(val -c 'SELECT last_value FROM order_no_seq'); a few customers:"
sql -c "SELECT id, name, email, country FROM customers WHERE id IN (2, 4, 7, 11, 23) ORDER BY id" | indent

declare -A ORIG
for t in customers products orders order_items events; do
	ORIG[$t]=$(checksum "$t")
done
say "checksum of products before the backup: ${ORIG[products]}"

# ------------------------------------------------------------------ 5
step "backing up shop: SELECT aibackup_backup_now()"
t_start=$SECONDS
if ! BID=$(val -c "SELECT aibackup_backup_now()" 2>"$WORK/backup.out"); then
	indent <"$WORK/backup.out"
	die "SELECT aibackup_backup_now() failed"
fi
indent <"$WORK/backup.out"
[[ "$BID" =~ ^[0-9]{8}T[0-9]{6}Z$ ]] || die "aibackup_backup_now() returned '$BID', not a backup id"
say "backup id: $BID (took about $((SECONDS - t_start)) s)"

# ------------------------------------------------------------------ 6
step "listing backups and the tables of the newest backup"
sql_echo -c "SELECT backup_id, status, started_at, finished_at - started_at AS took, tables, rows,
       pg_size_pretty(raw_bytes) AS raw, pg_size_pretty(compressed_bytes) AS gzip
FROM aibackup_list_backups()"
echo
sql_echo -c "SELECT schema_name || '.' || table_name AS \"table\", rows,
       pg_size_pretty(raw_bytes) AS raw, pg_size_pretty(compressed_bytes) AS gzip,
       left(sha256, 16) || '…' AS sha256
FROM aibackup_list_tables() ORDER BY 1"
echo
KEY=$(val_q "SELECT object_key FROM aibackup_list_tables(:'bid') WHERE schema_name = 'public' AND table_name = 'products'" -v bid="$BID")
say "object key of public.products: $KEY"

# ------------------------------------------------------------------ 7
step "damaging products"
sql_echo <<'SQL'
UPDATE products SET price = 0 WHERE id % 4 = 0;
DELETE FROM products WHERE id > 185;
SQL
DAMAGED=$(checksum products)
say "checksum before: ${ORIG[products]}"
say "checksum now:    $DAMAGED"
[ "$DAMAGED" != "${ORIG[products]}" ] || die "the damage did not change the checksum"

# ------------------------------------------------------------------ 8
step "restoring products into a side table to compare"
sql_echo -v bid="$BID" <<'SQL'
SELECT aibackup_restore_table('public.products', :'bid', 'products_at_backup') AS rows_restored;
SELECT count(*) FILTER (WHERE now.id IS NULL) AS deleted_since_backup,
       count(*) FILTER (WHERE now.price <> then_.price) AS price_changed
FROM products_at_backup then_ LEFT JOIN products now USING (id);
SELECT then_.id, then_.name, then_.price AS price_in_backup, now.price AS price_now
FROM products_at_backup then_ LEFT JOIN products now USING (id)
WHERE now.id IS NULL OR now.price <> then_.price
ORDER BY then_.id DESC LIMIT 6;
SQL
SIDE=$(checksum products_at_backup)
say "checksum of products_at_backup: $SIDE"
[ "$SIDE" = "${ORIG[products]}" ] || die "the side table does not match the original products"

# ------------------------------------------------------------------ 9
step "restoring products in place: SELECT aibackup_restore_table('public.products')"
say "order_items references products by foreign key, so a plain restore is refused"
say "(emptying products would break order_items):"
if out=$(sql -c "SELECT aibackup_restore_table('public.products')" 2>&1); then
	echo "$out" | indent
	die "restoring a table referenced by a foreign key was expected to be refused"
fi
echo "$out" | indent
say "so, in one transaction: drop the constraint, restore, re-add (and re-check) it:"
sql_echo <<'SQL'
BEGIN;
ALTER TABLE order_items DROP CONSTRAINT order_items_product_fk;
SELECT aibackup_restore_table('public.products') AS rows_restored;
ALTER TABLE order_items ADD CONSTRAINT order_items_product_fk
    FOREIGN KEY (product_id) REFERENCES products (id);
COMMIT;
SQL
NOW=$(checksum products)
say "checksum original: ${ORIG[products]}"
say "checksum damaged:  $DAMAGED"
say "checksum restored: $NOW"
[ "$NOW" = "${ORIG[products]}" ] || die "products after the restore does not match the original"
say "=> products is identical to the original again"

# ------------------------------------------------------------------ 10
step "restoring one month of the partitioned events table"
sql_echo <<'SQL'
DELETE FROM events WHERE at >= '2024-03-01' AND at < '2024-04-01';
SELECT aibackup_restore_table('public.events_2024_03') AS rows_restored;
SQL
NOW=$(checksum events)
say "events: $NOW"
[ "$NOW" = "${ORIG[events]}" ] || die "events after the restore does not match the original"
say "=> the whole partitioned table is identical to the original again"
for t in customers orders order_items; do
	[ "$(checksum "$t")" = "${ORIG[$t]}" ] || die "$t changed, but nothing should have touched it"
done
say "customers, orders and order_items were never touched (checksums unchanged)"

# ------------------------------------------------------------------ 11
step "the exit path: fetching a table with the AWS CLI and loading it with psql \\copy"
KEY=$(val_q "SELECT object_key FROM aibackup_list_tables(:'bid') WHERE schema_name = 'public' AND table_name = 'customers'" -v bid="$BID")
SHA=$(val_q "SELECT sha256 FROM aibackup_list_tables(:'bid') WHERE schema_name = 'public' AND table_name = 'customers'" -v bid="$BID")
[ -n "$KEY" ] || die "aibackup_list_tables('$BID') has no public.customers"
FOLDER=${KEY%/*}
printf '[default]\nregion = %s\ns3 =\n  addressing_style = path\n' "$S3_REGION" >"$WORK/aws/config"
chown postgres:postgres "$WORK/aws/config"
say "no aibackup needed: plain AWS CLI, credentials from the environment"
say "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), AWS_CONFIG_FILE with 's3 = addressing_style = path'"
say "\$ aws --endpoint-url $S3_HTTP_ENDPOINT s3 ls s3://$S3_BUCKET/$FOLDER/"
aws_s3 s3 ls "s3://$S3_BUCKET/$FOLDER/" | indent
say "\$ aws --endpoint-url $S3_HTTP_ENDPOINT s3 cp s3://$S3_BUCKET/$KEY $WORK/exit/"
aws_s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$KEY" "$WORK/exit/customers.csv.gz"
say "\$ aws --endpoint-url $S3_HTTP_ENDPOINT s3 cp s3://$S3_BUCKET/$FOLDER/manifest.json $WORK/exit/"
aws_s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$FOLDER/manifest.json" "$WORK/exit/manifest.json"
GOT=$(sha256sum "$WORK/exit/customers.csv.gz" | cut -d' ' -f1)
say "sha256 of the download: $GOT"
[ "$GOT" = "$SHA" ] || die "sha256 $GOT of the downloaded object is not the listed $SHA"
say "=> matches aibackup_list_tables().sha256"
say "manifest.json (summary, read with python3's json module):"
/usr/bin/python3 - "$WORK/exit/manifest.json" <<'PY' | indent
import json, sys
m = json.load(open(sys.argv[1], encoding="utf-8"))
print(f"  backup {m['backup_id']} of database {m['database']}: status {m['status']}, "
      f"PostgreSQL {m['server_version']}, snapshot LSN {m['snapshot_lsn']}")
for t in m["tables"]:
    if t["schema"] == "public" and t["name"] == "customers":
        cols = ", ".join(f"{c['name']} {c['type']}" for c in t["columns"])
        print(f"  customers: {t['rows']} rows, {t['format']}/{t['compression']}, columns: {cols}")
print("  tables:", ", ".join(f"{t['name']}" + (f" (partition of {t['parent']})" if t.get('parent') else "")
                             for t in m["tables"]))
for s in m.get("sequences", []):
    print(f"  sequence {s['schema']}.{s['name']}: last_value {s['last_value']}, is_called {json.dumps(s['is_called'])}")
PY
as_pg gzip -dk "$WORK/exit/customers.csv.gz"
say "\$ gunzip customers.csv.gz; head -n 4 customers.csv"
head -n 4 "$WORK/exit/customers.csv" | indent
say "\$ psql -c 'CREATE TABLE customers_from_csv (LIKE customers)'"
say "\$ psql -c \"\\copy customers_from_csv FROM 'customers.csv' WITH (FORMAT csv, HEADER)\""
val -c "CREATE TABLE customers_from_csv (LIKE customers)"
as_pg psql -X -v ON_ERROR_STOP=1 -c "\\copy customers_from_csv FROM '$WORK/exit/customers.csv' WITH (FORMAT csv, HEADER)" | indent
FROMCSV=$(checksum customers_from_csv)
say "checksum customers:          ${ORIG[customers]}"
say "checksum customers_from_csv: $FROMCSV"
[ "$FROMCSV" = "${ORIG[customers]}" ] || die "the table loaded from the CSV does not match customers"
say "=> identical, UTF-8 names, commas and quotes included"

# ------------------------------------------------------------------ 12
step "the exit path without credentials: a presigned URL and curl"
URL=$(val_q "SELECT aibackup_presign_url(:'key', '15 minutes')" -v key="$KEY")
say "SELECT aibackup_presign_url('$KEY', '15 minutes');"
say "  -> ${URL:0:110}…"
CODE=$(as_pg curl -sS -o "$WORK/exit/presigned.csv.gz" -w '%{http_code}' "$URL")
say "\$ curl -o presigned.csv.gz '<url>'   -> HTTP $CODE, $(stat -c %s "$WORK/exit/presigned.csv.gz") bytes"
[ "$CODE" = 200 ] || die "curl of the presigned URL answered HTTP $CODE"
cmp -s "$WORK/exit/presigned.csv.gz" "$WORK/exit/customers.csv.gz" ||
	die "the presigned download differs from the AWS CLI download"
say "=> byte-identical to the AWS CLI download"
OLD=$(val_q "SELECT aibackup_presign_url(:'key', '1 minute', now() - interval '2 minutes')" -v key="$KEY")
CODE=$(as_pg curl -sS -o /dev/null -w '%{http_code}' "$OLD")
say "a URL signed 2 minutes ago for 1 minute: HTTP $CODE (expired)"
[ "$CODE" = 403 ] || die "an expired presigned URL answered HTTP $CODE, not 403"

printf '\n== summary ==\n'
SUMMARY=$(val_q "SELECT tables || ' tables, ' || rows || ' rows, ' || pg_size_pretty(raw_bytes) || ' of CSV -> ' || pg_size_pretty(compressed_bytes) || ' gzip''d' FROM aibackup_list_backups() WHERE backup_id = :'bid'" -v bid="$BID")
[ -n "$SUMMARY" ] || die "aibackup_list_backups() does not list backup $BID"
say "backup $BID of shop: $SUMMARY"
say "products damaged and restored in place; a partition restored; a table re-loaded"
say "from S3 with only the AWS CLI, gunzip and psql; a presigned URL fetched with curl"
