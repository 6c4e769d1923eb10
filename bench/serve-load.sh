#!/usr/bin/env bash
# Load benchmark of `ferry serve` (not a timed test): 64 concurrent clients on
# loopback for 60 s fetching .info, .mod, .zip and checksum database tiles
# from a synthetic store (300 modules, zips of 20 KB to 2 MB, 300 tiles).
# Reports requests/s, p50/p99 latency per kind, errors (must be 0), zip MB/s,
# the CPU used by the server and by the load generator (they share the
# machine's CPUs), and the server's memory high-water mark.
#
# By default the clients run a closed loop (each sends its next request as
# soon as it has read the last answer: the server's saturation). RATE=N runs
# an open loop instead: N requests/s in all, latency counted from when each
# request was due.
#
# Usage: bench/serve-load.sh [FERRY_BINARY]
#   CLIENTS=64 DURATION=60s RATE= PORT=18080 BENCH_DIR=/tmp/ferry-serve-load
#   LOAD_FLAGS='-client stdlib -cpuprofile /tmp/load.cpu' (more flags for bench/load)
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

# CPU seconds (user + system) the server has used.
server_cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / t}' "/proc/$pid/stat"; }

echo "== $CLIENTS clients for $DURATION ($(nproc) CPUs, shared by server and clients; load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
cpu0=$(server_cpu); t0=$(date +%s.%N)
"$W/load" -url "http://127.0.0.1:$PORT" -store "$W/store" -c "$CLIENTS" -d "$DURATION" ${RATE:+-rate "$RATE"} ${LOAD_FLAGS:-}
cpu1=$(server_cpu); t1=$(date +%s.%N)
echo "server CPU: $(awk -v a="$cpu0" -v b="$cpu1" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.1f s (%.2f cores)", b - a, (b - a) / (e - s)}')"

echo "== server memory: $(grep -h VmHWM /proc/$pid/status 2>/dev/null | tr -s ' \t' ' ' || echo n/a)"
kill -TERM $pid; wait $pid; trap - EXIT
echo "== server stopped cleanly; access log: $(grep -c '"msg":"http request"' "$W/access.log") records (the requests above, plus /readyz polls)"
