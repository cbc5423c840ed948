# Sourced by .ci/test: makes sure the machine's PostgreSQL answers on
# 127.0.0.1:5432, where the tests look for it (suanli_tests::postgres_url;
# SUANLI_TEST_DATABASE_URL names another server). Without one the
# PostgreSQL tests fail, saying so.
if ! command -v pg_isready >/dev/null 2>&1; then
    echo "postgres: client tools not installed; the PostgreSQL tests will fail" >&2
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
pg_isready -q -h 127.0.0.1 -p 5432 ||
    echo "postgres: no server on 127.0.0.1:5432; the PostgreSQL tests will fail" >&2
