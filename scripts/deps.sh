#!/bin/bash
# Install what aibackup needs to build and test, from Debian 12's packages.
#
#   scripts/deps.sh        (as root; idempotent: a second run only checks)
#
# Build: PostgreSQL 15 server headers, libcurl, zlib, OpenSSL (+ krb5 headers
# that PostgreSQL's own headers pull in). Tests: PostgreSQL 15 itself, IPC::Run
# for the TAP tests, clang-14 with libFuzzer and the sanitizer runtimes
# (libclang-rt-14-dev) and llvm-14's symbolizer for scripts/fuzz.sh, and a
# real S3 server on loopback: OpenStack Swift with its s3api middleware plus
# memcached (scripts/s3server.sh runs its own instances of those under a
# scratch folder), awscli, openssl and curl as independent clients; and what
# scripts/build-pg.sh needs to build PostgreSQL from source (installed here
# so that those builds, which run in the background, never wait for dpkg).
#
# Package post-install scripts would normally start system services
# (memcached on 11211, PostgreSQL's 'main' cluster on 5432). While installing,
# a policy-rc.d that forbids starting services is put in place (unless one
# already exists), so nothing is left running; the test harness never depends
# on those system services anyway.

set -eu
set -o pipefail

PKGS="postgresql-15 postgresql-server-dev-15 postgresql-client-15
libcurl4-openssl-dev libdeflate-dev zlib1g-dev libssl-dev libkrb5-dev libipc-run-perl
make gcc clang-14 libclang-rt-14-dev llvm-14
swift swift-proxy swift-account swift-container swift-object memcached
awscli openssl curl python3 python3-yaml ca-certificates locales
dpkg-dev xz-utils bzip2 patch bison flex perl pkg-config libxml2-dev gettext"

missing() {
    local p st
    for p in $PKGS; do
        st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        case "$st" in ii*) ;; *) echo "$p" ;; esac
    done
}

# de_DE.UTF-8: t/015 checks secret redaction with translated server messages
ensure_locale() {
    if locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8'; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "deps.sh: locale de_DE.UTF-8 missing; run me as root to generate it" >&2
        exit 1
    fi
    if grep -qs '^# *de_DE\.UTF-8 UTF-8' /etc/locale.gen; then
        sed -i 's/^# *de_DE\.UTF-8 UTF-8/de_DE.UTF-8 UTF-8/' /etc/locale.gen
    elif ! grep -qs '^de_DE\.UTF-8 UTF-8' /etc/locale.gen; then
        echo 'de_DE.UTF-8 UTF-8' >>/etc/locale.gen
    fi
    locale-gen >/dev/null
}

MISSING=$(missing | tr '\n' ' ')
if [ -z "${MISSING// /}" ]; then
    ensure_locale
    echo "deps.sh: all packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages: $MISSING" >&2
    echo "deps.sh: run me as root to install them" >&2
    exit 1
fi

echo "deps.sh: installing: $MISSING"
export DEBIAN_FRONTEND=noninteractive

POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
cleanup() {
    if [ "$OWN_POLICY" = 1 ]; then
        rm -f "$POLICY"
    fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary, from aibackup scripts/deps.sh: start no services\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    OWN_POLICY=1
fi

# A stale or empty package list makes install fail: refresh it first.
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    $PKGS >/dev/null

STILL=$(missing | tr '\n' ' ')
if [ -n "${STILL// /}" ]; then
    echo "deps.sh: still missing after install: $STILL" >&2
    exit 1
fi
ensure_locale
echo "deps.sh: done"
