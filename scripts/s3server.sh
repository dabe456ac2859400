#!/bin/bash
# A real S3 server on loopback for tests and the demo: a single-node
# OpenStack Swift with the s3api middleware, entirely under one folder.
#
#   scripts/s3server.sh start DIR     build and start it; writes DIR/env and DIR/pids
#   scripts/s3server.sh stop DIR      stop whatever DIR/pids lists (safe to repeat)
#   scripts/s3server.sh status DIR    exit 0 when every recorded server is running
#
# Everything lives under DIR: rings and configs (DIR/etc), the device folder
# (DIR/srv/d1), logs (DIR/log/*.log), pid files (DIR/run/*.pid), the TLS files
# (DIR/ca.crt, DIR/other-ca.crt, DIR/tls/). Servers bind to 127.0.0.1 only and
# run as the invoking user (root or e.g. postgres), with their own memcached.
#
# Ports: base, base+1, ... base+5 =
#   proxy HTTP, proxy HTTPS, account, container, object, memcached.
# S3_BASE_PORT=N forces base N (start fails if a port is taken); without it
# the first free base among 18080, 18090, ..., 18470 is used.
# S3_NODE_TIMEOUT=SECONDS sets the proxy's node_timeout (default 10): how long
# the proxy waits on a stalled backend (kill -STOP the object server) before
# it answers 503.
#
# S3_START_TIMEOUT=SECONDS bounds the wait for the servers (default 60);
# on timeout or any failure, start prints the log tails, stops what it
# started and exits 1. S3_QUIET=1 silences the progress lines.
#
# After start, `. DIR/env` exports:
#   S3_HTTP_ENDPOINT S3_HTTPS_ENDPOINT S3_CA_FILE S3_OTHER_CA_FILE
#   S3_ACCESS_KEY S3_SECRET_KEY S3_REGION S3_BUCKET S3_OTHER_BUCKET
#   S3_SWIFT_AUTH_URL S3_LOG_DIR S3_DIR S3_PIDS
#   S3_PID_PROXY_HTTP S3_PID_PROXY_HTTPS S3_PID_ACCOUNT S3_PID_CONTAINER
#   S3_PID_OBJECT S3_PID_MEMCACHED
#   S3_OTHER_ACCESS_KEY S3_OTHER_SECRET_KEY (a second account, test2:tester2,
#   with no bucket; Swift bucket names are per account, so it gets
#   NoSuchBucket, not AccessDenied, for ours)
# Buckets made on start: aibackup-test, aibackup-other (both of account test).
# Credentials: access key test:tester, secret testing (tempauth .admin).
# Data under DIR/srv survives a stop and a new start in the same DIR.

set -u
set -o pipefail

PROG=$(basename "$0")
SERVERS="memcached account container object proxy-http proxy-https"

die() { echo "$PROG: $*" >&2; exit 1; }
say() { [ -n "${S3_QUIET:-}" ] || echo "$PROG: $*"; }

usage() {
    echo "usage: $PROG start DIR | stop DIR | status DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
ACTION=$1
DIR=$2
[ -n "$DIR" ] || usage
case "$DIR" in /*) ;; *) DIR="$(pwd)/$DIR" ;; esac
DIR=$(realpath -m -- "$DIR")
[ "$DIR" != / ] || die "refusing to use / as DIR"

# ---------------------------------------------------------------- helpers

# A pid is ours when it is alive and its command line names DIR (every server
# is started with a config or pid file path under DIR). This guards against a
# recycled pid: we never signal a process that is not ours.
pid_is_ours() {
    local pid=$1 cmd
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    # a zombie has an empty cmdline: not running
    [ -n "$cmd" ] || return 1
    case "$cmd" in *"$DIR/"*) return 0 ;; esac
    return 1
}

recorded_pids() {
    {
        [ -f "$DIR/pids" ] && cat "$DIR/pids"
        for f in "$DIR"/run/*.pid; do
            [ -f "$f" ] && cat "$f"
        done
    } 2>/dev/null | grep -E '^[0-9]+$' | sort -un
}

do_stop() {
    local pids="" pid alive alive2=""
    for pid in $(recorded_pids); do
        pid_is_ours "$pid" && pids="$pids $pid"
    done
    if [ -n "$pids" ]; then
        kill -TERM $pids 2>/dev/null
        # swift servers stop at once on TERM; a stopped (SIGSTOPped) one
        # needs CONT to see it
        kill -CONT $pids 2>/dev/null
        for _ in $(seq 1 50); do
            alive=""
            for pid in $pids; do pid_is_ours "$pid" && alive="$alive $pid"; done
            [ -z "$alive" ] && break
            sleep 0.1
        done
        if [ -n "$alive" ]; then
            kill -KILL $alive 2>/dev/null
            for _ in $(seq 1 30); do
                alive2=""
                for pid in $alive; do pid_is_ours "$pid" && alive2="$alive2 $pid"; done
                [ -z "$alive2" ] && break
                sleep 0.1
            done
            [ -z "$alive2" ] || { echo "$PROG: could not stop:$alive2" >&2; return 1; }
        fi
        say "stopped$pids"
    fi
    rm -f "$DIR"/run/*.pid "$DIR/pids" 2>/dev/null
    return 0
}

do_status() {
    local n=0 pid name
    [ -f "$DIR/pids" ] || { echo "$PROG: not running (no $DIR/pids)"; return 1; }
    for name in $SERVERS; do
        pid=$(cat "$DIR/run/$name.pid" 2>/dev/null)
        if pid_is_ours "$pid"; then
            echo "$name: running, pid $pid"
        else
            echo "$name: NOT running"; n=$((n + 1))
        fi
    done
    [ $n -eq 0 ]
}

log_tails() {
    local f
    for f in "$DIR"/log/*.log; do
        [ -f "$f" ] || continue
        echo "----- last lines of $f" >&2
        tail -n 25 "$f" >&2
    done
}

START_OK=0
on_start_exit() {
    if [ "$START_OK" != 1 ]; then
        echo "$PROG: start failed; stopping what was started" >&2
        log_tails
        do_stop >&2 || true
    fi
}

# start NAME CMD...: run in its own session, output to DIR/log/NAME.log,
# record the pid at once so that stop works after a half-done start.
launch() {
    local name=$1; shift
    local log="$DIR/log/$name.log"
    echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') starting: $*" >>"$log"
    setsid "$@" </dev/null >>"$log" 2>&1 9>&- &
    local pid=$!
    echo "$pid" >"$DIR/run/$name.pid"
    echo "$pid" >>"$DIR/pids"
    eval "PID_$(echo "$name" | tr 'a-z-' 'A-Z_')=$pid"
}

# wait_http NAME URL CACERT: any HTTP answer counts for backends; for the
# proxies the caller passes /healthcheck and wants 200.
wait_http() {
    local name=$1 url=$2 want=$3 code pid deadline
    shift 3
    deadline=$START_DEADLINE
    pid=$(cat "$DIR/run/$name.pid")
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" 2>/dev/null)
        if [ "$want" = any ]; then
            [ -n "$code" ] && [ "$code" != 000 ] && return 0
        else
            [ "$code" = "$want" ] && return 0
        fi
        pid_is_ours "$pid" || die "$name (pid $pid) exited during start-up; see $DIR/log/$name.log"
        [ $SECONDS -lt $deadline ] || die "timed out waiting for $name at $url (last HTTP code '$code')"
        sleep 0.1
    done
}

# ---------------------------------------------------------------- start

do_start() {
    local t0
    t0=$(date +%s%N)
    local bin
    for bin in swift-proxy-server swift-account-server swift-container-server \
               swift-object-server memcached openssl curl python3 setsid; do
        command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/bin/$bin" ] ||
            die "$bin not found: run scripts/deps.sh as root"
    done
    [ -r /etc/swift/swift.conf ] ||
        die "/etc/swift/swift.conf is missing (it comes with Debian's swift package; run scripts/deps.sh)"

    mkdir -p "$DIR" || die "cannot create $DIR"
    [ -w "$DIR" ] || die "$DIR is not writable by $(id -un)"

    # a previous run in DIR: stop it first
    do_stop || die "could not stop the servers already running in $DIR"

    START_OK=0
    trap on_start_exit EXIT
    trap 'exit 130' INT TERM HUP

    mkdir -p "$DIR/etc" "$DIR/srv/d1" "$DIR/run" "$DIR/log" "$DIR/tls" ||
        die "cannot create folders under $DIR"
    rm -f "$DIR/env"

    # Swift keeps object metadata in extended attributes.
    /usr/bin/python3 - "$DIR/srv/d1" <<'EOF' || die "the filesystem of $DIR does not support user xattrs, which Swift needs"
import os, sys, tempfile
fd, p = tempfile.mkstemp(dir=sys.argv[1])
try:
    os.setxattr(p, "user.swift.test", b"1")
finally:
    os.close(fd); os.unlink(p)
EOF

    local USER_NAME
    USER_NAME=$(id -un)

    # ---- ports (a lock keeps two concurrent starts from picking the same)
    local lock="${TMPDIR:-/tmp}/aibackup-s3server.lock"
    if (umask 000; : >>"$lock") 2>/dev/null && exec 9<"$lock"; then
        flock -w 180 9 || die "timed out waiting for $lock"
    fi
    local BASE
    BASE=$(/usr/bin/python3 - "${S3_BASE_PORT:-}" <<'EOF'
import socket, sys
forced = sys.argv[1]
bases = [int(forced)] if forced else range(18080, 18480, 10)
def free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
for b in bases:
    if all(free(b + i) for i in range(6)):
        print(b)
        sys.exit(0)
sys.exit(1)
EOF
) || die "no free ports${S3_BASE_PORT:+ at S3_BASE_PORT=$S3_BASE_PORT..+5}"
    local P_HTTP=$BASE P_HTTPS=$((BASE + 1)) P_ACC=$((BASE + 2)) P_CON=$((BASE + 3)) \
          P_OBJ=$((BASE + 4)) P_MC=$((BASE + 5))

    # ---- TLS: our CA, a server certificate it signs, and a stranger CA
    if ! [ -s "$DIR/ca.crt" ] || ! [ -s "$DIR/tls/server.crt" ] || ! [ -s "$DIR/tls/server.key" ] ||
       ! [ -s "$DIR/other-ca.crt" ] ||
       ! openssl verify -CAfile "$DIR/ca.crt" "$DIR/tls/server.crt" >/dev/null 2>&1; then
        (
            set -e
            cd "$DIR/tls"
            umask 077
            openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
                -keyout ca.key -out ca.crt -subj "/O=aibackup tests/CN=aibackup test CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
            openssl req -new -newkey rsa:2048 -nodes -sha256 \
                -keyout server.key -out server.csr -subj "/O=aibackup tests/CN=localhost" 2>/dev/null
            printf '%s\n' "basicConstraints=CA:FALSE" \
                "keyUsage=critical,digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth" \
                "subjectAltName=DNS:localhost,IP:127.0.0.1" >server.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                -sha256 -days 825 -extfile server.ext -out server.crt 2>/dev/null
            openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
                -keyout other-ca.key -out other-ca.crt \
                -subj "/O=aibackup tests/CN=aibackup untrusted CA" \
                -addext "basicConstraints=critical,CA:TRUE" \
                -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
            chmod 644 ca.crt other-ca.crt server.crt
            cp ca.crt other-ca.crt "$DIR/"
        ) || die "could not make the TLS certificates"
    fi
    # readable by other users (e.g. the postgres server of a root-run test)
    chmod 644 "$DIR/ca.crt" "$DIR/other-ca.crt" "$DIR/tls/server.crt" 2>/dev/null

    # ---- rings: one device, one replica, for object, container and account
    # (rebuilt only when the backend ports change)
    local ringstamp="$P_ACC $P_CON $P_OBJ"
    if [ "$(cat "$DIR/etc/rings.ports" 2>/dev/null)" != "$ringstamp" ] ||
       ! [ -s "$DIR/etc/account.ring.gz" ] || ! [ -s "$DIR/etc/container.ring.gz" ] ||
       ! [ -s "$DIR/etc/object.ring.gz" ]; then
    rm -f "$DIR/etc/rings.ports"
    /usr/bin/python3 - "$DIR/etc" "$P_ACC" "$P_CON" "$P_OBJ" <<'EOF' || die "could not build the rings"
import sys, os
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(account=int(sys.argv[2]), container=int(sys.argv[3]), object=int(sys.argv[4]))
for name, port in ports.items():
    b = RingBuilder(6, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
               "device": "d1", "weight": 1.0, "meta": ""})
    b.rebalance()
    b.save(os.path.join(etc, name + ".builder"))
    b.get_ring().save(os.path.join(etc, name + ".ring.gz"))
EOF
    echo "$ringstamp" >"$DIR/etc/rings.ports"
    fi

    # ---- configs
    local NODE_TIMEOUT=${S3_NODE_TIMEOUT:-10}
    local common="[DEFAULT]
bind_ip = 127.0.0.1
user = $USER_NAME
swift_dir = $DIR/etc
devices = $DIR/srv
mount_check = false
workers = 0
log_level = INFO
fallocate_reserve = 0
bind_timeout = 5
"
    local srv
    for srv in account container object; do
        local port
        case $srv in account) port=$P_ACC ;; container) port=$P_CON ;; object) port=$P_OBJ ;; esac
        {
            printf '%s' "$common"
            echo "bind_port = $port"
            echo "log_name = $srv-server"
            echo
            echo "[pipeline:main]"
            echo "pipeline = $srv-server"
            echo
            echo "[app:$srv-server]"
            echo "use = egg:swift#$srv"
            echo
            echo "[$srv-replicator]"
            echo "[$srv-auditor]"
            [ $srv = account ] && echo "[account-reaper]"
            [ $srv != account ] && echo "[$srv-updater]"
        } >"$DIR/etc/$srv-server.conf"
    done

    local kind
    for kind in http https; do
        {
            echo "[DEFAULT]"
            echo "bind_ip = 127.0.0.1"
            if [ $kind = http ]; then
                echo "bind_port = $P_HTTP"
            else
                echo "bind_port = $P_HTTPS"
                echo "cert_file = $DIR/tls/server.crt"
                echo "key_file = $DIR/tls/server.key"
            fi
            cat <<EOF
user = $USER_NAME
swift_dir = $DIR/etc
workers = 0
log_level = INFO
log_name = proxy-$kind
bind_timeout = 5

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
node_timeout = $NODE_TIMEOUT
recoverable_node_timeout = $NODE_TIMEOUT
conn_timeout = 0.5

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$P_MC

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
max_upload_part_num = 10000

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:dlo]
use = egg:swift#dlo
EOF
        } >"$DIR/etc/proxy-server-$kind.conf"
    done

    # ---- start
    local mc_user=()
    [ "$(id -u)" = 0 ] && mc_user=(-u "$USER_NAME")
    : >"$DIR/pids"
    # one bound for the whole wait below (S3_START_TIMEOUT, default 60 s)
    START_DEADLINE=$((SECONDS + ${S3_START_TIMEOUT:-60}))
    launch memcached memcached -l 127.0.0.1 -p "$P_MC" -U 0 -m 64 -c 1024 "${mc_user[@]}" \
        -P "$DIR/run/memcached.daemon.pid"
    launch account /usr/bin/swift-account-server "$DIR/etc/account-server.conf" -v
    launch container /usr/bin/swift-container-server "$DIR/etc/container-server.conf" -v
    launch object /usr/bin/swift-object-server "$DIR/etc/object-server.conf" -v
    launch proxy-http /usr/bin/swift-proxy-server "$DIR/etc/proxy-server-http.conf" -v
    launch proxy-https /usr/bin/swift-proxy-server "$DIR/etc/proxy-server-https.conf" -v

    # curl must not take the machine's global CA settings for ours
    unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
    export no_proxy='*'

    wait_http account "http://127.0.0.1:$P_ACC/" any
    wait_http container "http://127.0.0.1:$P_CON/" any
    wait_http object "http://127.0.0.1:$P_OBJ/" any
    wait_http proxy-http "http://127.0.0.1:$P_HTTP/healthcheck" 200
    wait_http proxy-https "https://localhost:$P_HTTPS/healthcheck" 200 --cacert "$DIR/ca.crt"
    # memcached answers "version"
    local mc_ok=0
    for _ in $(seq 1 50); do
        if exec 8<>"/dev/tcp/127.0.0.1/$P_MC" 2>/dev/null; then
            exec 8>&-; mc_ok=1; break
        fi
        sleep 0.1
    done
    [ $mc_ok = 1 ] || die "memcached did not listen on 127.0.0.1:$P_MC"

    # all ports are bound: let another start pick ports
    exec 9<&- 2>/dev/null || true

    # ---- buckets, through Swift's own API (account autocreated on first PUT)
    local hdrs token url bucket code
    hdrs=$(curl -s -D - -o /dev/null --max-time 10 \
        -H "X-Storage-User: test:tester" -H "X-Storage-Pass: testing" \
        "http://127.0.0.1:$P_HTTP/auth/v1.0") || die "tempauth did not answer"
    token=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: *//p')
    url=$(printf '%s' "$hdrs" | tr -d '\r' | sed -n 's/^[Xx]-[Ss]torage-[Uu]rl: *//p')
    [ -n "$token" ] && [ -n "$url" ] || die "tempauth gave no token: $hdrs"
    for bucket in aibackup-test aibackup-other; do
        for _ in $(seq 1 20); do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PUT \
                -H "X-Auth-Token: $token" "$url/$bucket")
            case $code in 201|202) break ;; esac
            sleep 0.2
        done
        case $code in 201|202) ;; *) die "could not create bucket $bucket (HTTP $code)" ;; esac
    done

    # ---- env
    local pids
    pids=$(tr '\n' ' ' <"$DIR/pids" | sed 's/ $//')
    cat >"$DIR/env.tmp" <<EOF
# written by scripts/s3server.sh start $DIR at $(date -u '+%Y-%m-%dT%H:%M:%SZ') as $USER_NAME
export S3_HTTP_ENDPOINT=http://127.0.0.1:$P_HTTP
export S3_HTTPS_ENDPOINT=https://localhost:$P_HTTPS
export S3_CA_FILE=$DIR/ca.crt
export S3_OTHER_CA_FILE=$DIR/other-ca.crt
export S3_ACCESS_KEY=test:tester
export S3_SECRET_KEY=testing
export S3_REGION=us-east-1
export S3_BUCKET=aibackup-test
export S3_OTHER_BUCKET=aibackup-other
export S3_OTHER_ACCESS_KEY=test2:tester2
export S3_OTHER_SECRET_KEY=testing2
export S3_SWIFT_AUTH_URL=http://127.0.0.1:$P_HTTP/auth/v1.0
export S3_DIR=$DIR
export S3_LOG_DIR=$DIR/log
export S3_PIDS="$pids"
export S3_PID_PROXY_HTTP=$PID_PROXY_HTTP
export S3_PID_PROXY_HTTPS=$PID_PROXY_HTTPS
export S3_PID_ACCOUNT=$PID_ACCOUNT
export S3_PID_CONTAINER=$PID_CONTAINER
export S3_PID_OBJECT=$PID_OBJECT
export S3_PID_MEMCACHED=$PID_MEMCACHED
EOF
    mv "$DIR/env.tmp" "$DIR/env"

    START_OK=1
    trap - EXIT INT TERM HUP
    say "started in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $DIR/env (HTTP :$P_HTTP, HTTPS :$P_HTTPS, pids $pids)"
}

case "$ACTION" in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    *) usage ;;
esac
