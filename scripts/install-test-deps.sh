#!/usr/bin/env bash
# Install what the test suite needs outside Python: the PostgreSQL server binaries
# (initdb, pg_ctl) that tests/fixtures/postgres.py starts a throw-away server from.
# Idempotent and quiet when everything is there already. Debian/Ubuntu (apt-get).
set -euo pipefail

# Chromium (headless) renders the HTML data reports in tests/data/test_report_browser.py.
# This block comes first because the PostgreSQL part below exits early when it is done.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-test-deps: Chromium is missing and apt-get is not available; install" \
             "Chromium so that 'chromium' is on PATH" >&2
        exit 1
    fi
    chromium_sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        chromium_sudo="sudo"
    fi
    echo "install-test-deps: installing the Debian package 'chromium' (for the report tests)"
    export DEBIAN_FRONTEND=noninteractive
    $chromium_sudo apt-get update -qq
    $chromium_sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
    command -v chromium >/dev/null 2>&1 || {
        echo "install-test-deps: the chromium package installed no 'chromium' command" >&2
        exit 1
    }
fi

# redis-server backs the Redis online store tests in tests/store/test_online_contract.py.
if ! command -v redis-server >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-test-deps: redis-server is missing and apt-get is not available; install" \
             "Redis so that 'redis-server' is on PATH" >&2
        exit 1
    fi
    redis_sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        redis_sudo="sudo"
    fi
    echo "install-test-deps: installing the Debian package 'redis-server' (for the online store tests)"
    export DEBIAN_FRONTEND=noninteractive
    $redis_sudo apt-get update -qq
    $redis_sudo apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    # the tests start their own server on a free port; stop the package's one if it runs
    if command -v service >/dev/null 2>&1; then
        $redis_sudo service redis-server stop >/dev/null 2>&1 || true
    fi
fi

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
