#!/usr/bin/env bash
# Runs the measurements of docs/PERFORMANCE.md with `herd bench` on
# 127.0.0.1 and prints each report. Every run is bounded (-d, -n).
#   scripts/perf.sh [DURATION]      (default 5s per run)
set -euo pipefail
cd "$(dirname "$0")/.."
d="${1:-5s}"
bin=$(mktemp -d)/herd
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/herd
run() { echo; echo "\$ herd bench $*"; "$bin" bench -q "$@" || true; }

echo "== targets (five-server herd, logging and flooding on)"
run -spawn -reference -c 16 -d "$d"
run -spawn -reference -c 16 -pipeline 16 -d "$d"
run -spawn -reference -mode oneshot -c 16 -d "$d"
run -spawn -places fixed -reference -workload propagation -n 3000
run -spawn -reference -workload whatsat -c 16 -d "$d"
run -spawn -reference -workload whatsat -places offline -c 16 -d "$d"
run -spawn -config examples/bench/durable.toml -c 16 -d "$d"
run -spawn -config examples/bench/durable-fast.toml -c 16 -d "$d"
run -spawn -c 16 -d "$d"
run -spawn -config examples/bench/durable.toml -c 64 -d "$d"
run -spawn -c 64 -d "$d"

echo "== connections"
for c in 1 4 16 64 256; do run -spawn -reference -c "$c" -d "$d"; done

echo "== herd size"
run -spawn -reference -config examples/bench/one.toml -c 16 -d "$d"
run -spawn -reference -config examples/bench/two.toml -c 16 -d "$d"
run -spawn -reference -c 16 -d "$d"

echo "== clients"
for n in 100 10000 100000; do run -spawn -reference -c 16 -clients "$n" -d "$d"; done
