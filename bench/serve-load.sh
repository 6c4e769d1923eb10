#!/usr/bin/env bash
# Load benchmark of `ferry serve` (not a timed test): 64 concurrent clients on
# loopback for 60 s fetching .info, .mod, .zip and checksum database tiles
# from a synthetic store (300 modules, zips of 20 KB to 2 MB, 300 tiles).
# Reports requests/s, p50/p99 latency per kind, errors (must be 0) and zip MB/s.
#
# Usage: bench/serve-load.sh [FERRY_BINARY]
#   CLIENTS=64 DURATION=60s PORT=18080 BENCH_DIR=/tmp/ferry-serve-load
set -euo pipefail
cd "$(dirname "$0")/.."
W=${BENCH_DIR:-/tmp/ferry-serve-load}
CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-60s}
PORT=${PORT:-18080}
rm -rf "$W"; mkdir -p "$W"
FERRY=${1:-}
if [ -z "$FERRY" ]; then FERRY="$W/ferry"; CGO_ENABLED=0 go build -o "$FERRY" ./cmd/ferry; fi
CGO_ENABLED=0 go build -o "$W/load" ./bench/load

echo "== synthetic store"
"$W/load" -make-store "$W/store"
du -sh "$W/store"

echo "== ferry serve on 127.0.0.1:$PORT (access log to $W/access.log)"
"$FERRY" serve -q --store "$W/store" --listen "127.0.0.1:$PORT" --log-json 2>"$W/access.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

echo "== $CLIENTS clients for $DURATION ($(nproc) CPUs, shared by server and clients)"
"$W/load" -url "http://127.0.0.1:$PORT" -store "$W/store" -c "$CLIENTS" -d "$DURATION"

echo "== server memory: $(grep -h VmHWM /proc/$pid/status 2>/dev/null | tr -s ' \t' ' ' || echo n/a)"
kill -TERM $pid; wait $pid; trap - EXIT
echo "== server stopped cleanly"
