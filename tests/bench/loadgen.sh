#!/usr/bin/env bash
# Holds N simulated agents (real QUIC, real mutual TLS, one sample per second
# each) against a fresh aggregator on SQLite, and prints latency, throughput,
# the aggregator's CPU share and peak RSS, and the bytes stored per sample.
#
#   tests/bench/loadgen.sh 5000 [interval] [ramp] [duration]
#
# AGGREGATOR_ARGS adds flags to the aggregator, e.g. "--alert-interval 1h"
# to measure it with monitoring all but off.
#
# The load generator runs on the same machine as the aggregator: on a
# 2-core machine they share the cores, so the figure is a floor.
set -euo pipefail
cd "$(dirname "$0")/../.."
agents=${1:-1000}; interval=${2:-1s}; ramp=${3:-20s}; duration=${4:-30s}
cargo build --release -q -p suanli-aggregator -p suanli-agent -p suanli-tests
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
"$bin/suanli-aggregator" serve --data-dir "$work/node" --quic-listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --admissions-per-second 100000 ${AGGREGATOR_ARGS:-} >"$work/out" 2>"$work/log" &
echo $! >"$work/pid"
for _ in $(seq 100); do [ -f "$work/node/advertise" ] && break; sleep 0.1; done
"$bin/suanli-aggregator" provider create --data-dir "$work/node" --name load \
    --uscc 91350100M000100Y43 --region 110108 --industry I65 >/dev/null
join=$("$bin/suanli-aggregator" token create --data-dir "$work/node" --provider P00001 --uses "$agents")
"$bin/suanli-loadgen" --join "$join" --agents "$agents" --interval "$interval" \
    --ramp "$ramp" --duration "$duration" --aggregator-pid "$(cat "$work/pid")" 2>"$work/loadgen.log"
db="$work/node/suanli.db"
if command -v sqlite3 >/dev/null; then
    samples=$(sqlite3 "$db" "select count(*) from samples")
    bytes=$(( $(stat -c %s "$db") + $(stat -c %s "$db-wal" 2>/dev/null || echo 0) ))
    echo "stored samples         $samples"
    echo "bytes stored/sample    $(( bytes / (samples > 0 ? samples : 1) )) (database + WAL, incl. hosts and indexes)"
fi
