#!/usr/bin/env bash
# Install what the test suite needs outside Python: the PostgreSQL server binaries
# (initdb, pg_ctl) that tests/fixtures/postgres.py starts a throw-away server from.
# Idempotent and quiet when everything is there already. Debian/Ubuntu (apt-get).
set -euo pipefail

have_postgres() {
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_postgres; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: PostgreSQL server binaries are missing and apt-get is not" \
         "available; install PostgreSQL (initdb, pg_ctl) and set CTLOOP_PG_BIN to its bin folder" >&2
    exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

echo "install-test-deps: installing the Debian package 'postgresql' (for the test server)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null

# The package starts its own cluster on port 5432; the tests start their own server,
# so stop the package's one (the binaries stay).
if command -v service >/dev/null 2>&1; then
    $sudo service postgresql stop >/dev/null 2>&1 || true
fi

have_postgres || {
    echo "install-test-deps: the postgresql package installed no initdb under /usr/lib/postgresql" >&2
    exit 1
}
