# Sourced by .ci/run (and usable by hand): makes sure the machine's
# PostgreSQL answers on 127.0.0.1:5432 and points the tests at it with
# SUANLI_TEST_DATABASE_URL. Without a server the PostgreSQL tests say they
# were skipped; the SQLite half still runs.
if ! command -v pg_isready >/dev/null 2>&1; then
    echo "postgres: client tools not installed; PostgreSQL tests will be skipped" >&2
    return 0
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    for cluster in /etc/postgresql/*/main; do
        [ -d "$cluster" ] || continue
        version=$(basename "$(dirname "$cluster")")
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 50); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.2
    done
fi
if pg_isready -q -h 127.0.0.1 -p 5432; then
    export SUANLI_TEST_DATABASE_URL="${SUANLI_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
    echo "postgres: tests use $SUANLI_TEST_DATABASE_URL" >&2
else
    echo "postgres: no server on 127.0.0.1:5432; PostgreSQL tests will be skipped" >&2
fi
