#!/usr/bin/env bash
# Bytes on the wire and download time of `go mod download all` through
# `ferry serve` over a link shaped to 1 Gbit/s (issue 13 item 8): a server
# network namespace and a client one joined by a veth pair, each end shaped
# with tc tbf to 1 Gbit/s (no added delay: this VM's kernel has tbf and htb
# but no netem). Three servers, each run
# REPS times with a fresh module cache:
#   gzip       ferry serve of the bundle as pack writes it (encoded zips):
#              the go command gets the gzip the store wrote at import
#   identity   the same store without its gzips (DIR/gz removed): the
#              decoded Store-method zips, as ferry sent them before
#   reference  ferry serve of a bundle packed with --compression none:
#              the proxy's own zips, as the module proxy serves them
# Each run also fetches the same zips with one curl --compressed (the wire
# and decompression alone, no checking or extracting). Bytes are the client
# veth's received bytes (all of it: headers, TCP/IP, .info, .mod, checksum
# database) and the zip bytes of the access log.
# Needs root (ip netns, tc) and the network (to pack, unless BUNDLE and
# BUNDLE_NONE are given).
#
# Usage: bench/serve-gzip.sh FERRY_BINARY [MODULE@VERSION]
#   default project: github.com/prometheus/prometheus@v0.316.0 (419 module zips)
#   BENCH_DIR=DIR   work directory (default: a new mktemp -d; kept, with the stores)
#   BUNDLE=F BUNDLE_NONE=F   bundles already packed (default and --compression none)
#   REPS=N          runs of each server (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY=$(realpath "${1:?usage: bench/serve-gzip.sh FERRY_BINARY [MODULE@VERSION]}")
MOD=${2:-github.com/prometheus/prometheus@v0.316.0}
W=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/ferry-gzip-bench.XXXXXX")}
W=$(realpath "$W")
REPS=${REPS:-3}
mkdir -p "$W"
echo "== work directory $W"
GOBIN_DIR=$(dirname "$(command -v go)")
conn="env -i PATH=$GOBIN_DIR:/usr/bin:/bin HOME=$W/conn GOPATH=$W/conn/gopath GOCACHE=$W/conn/gocache GOENV=$W/conn/goenv GOPROXY=$(go env GOPROXY) GOSUMDB=$(go env GOSUMDB) GOFLAGS=-modcacherw GOTOOLCHAIN=local"

if [ ! -d "$W/src" ]; then
  echo "== fetching the project source: $MOD"
  dir=$($conn go mod download -json "$MOD" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  cp -r "$dir" "$W/src"; chmod -R u+w "$W/src"; rm -f "$W/src/go.work" "$W/src/go.work.sum"
fi
BUNDLE=${BUNDLE:-$W/project.ferry}
BUNDLE_NONE=${BUNDLE_NONE:-$W/project-none.ferry}
if [ ! -f "$BUNDLE" ]; then
  echo "== ferry pack (zips encoded, the default)"
  (cd "$W/src" && $conn "$FERRY" pack . -q -o "$BUNDLE" --cache "$W/cache")
fi
if [ ! -f "$BUNDLE_NONE" ]; then
  echo "== ferry pack --compression none (the proxy's zips)"
  (cd "$W/src" && $conn "$FERRY" pack . -q -o "$BUNDLE_NONE" --compression none --cache "$W/cache")
fi

for s in gzip reference; do
  if [ ! -f "$W/store-$s/index.json" ]; then
    b=$BUNDLE; [ $s = reference ] && b=$BUNDLE_NONE
    echo "== ferry import into store-$s"
    /usr/bin/time -f "   import: %e s wall, %U s user, %S s sys" "$FERRY" import -q "$b" --store "$W/store-$s"
  fi
done
echo "== sizes"
echo "   decoded zips (store-gzip/files): $(du -sb "$W/store-gzip/files" | cut -f1) bytes, $(ls "$W/store-gzip/files/sha256" | wc -l) files"
echo "   their gzips  (store-gzip/gz):    $(du -sb "$W/store-gzip/gz" | cut -f1) bytes"

# The link.
NS_S=ferrygz-s-$$ NS_C=ferrygz-c-$$ V_S=fgzs$$ V_C=fgzc$$
SRV_IP=10.231.$(( $$ % 250 )).1 CLI_IP=10.231.$(( $$ % 250 )).2
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$NS_S" 2>/dev/null || true
  ip netns del "$NS_C" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS_S"; ip netns add "$NS_C"
ip link add "$V_S" type veth peer name "$V_C"
ip link set "$V_S" netns "$NS_S"; ip link set "$V_C" netns "$NS_C"
ip -n "$NS_S" addr add "$SRV_IP/24" dev "$V_S"; ip -n "$NS_C" addr add "$CLI_IP/24" dev "$V_C"
for ns in "$NS_S:$V_S" "$NS_C:$V_C"; do
  n=${ns%%:*} d=${ns#*:}
  ip -n "$n" link set lo up; ip -n "$n" link set "$d" up
  tc -n "$n" qdisc add dev "$d" root tbf rate 1gbit burst 256kb latency 10ms
done
echo "== link: $(tc -n "$NS_C" qdisc show dev "$V_C")"

ADDR=$SRV_IP:8080
rx() { ip netns exec "$NS_C" cat "/sys/class/net/$V_C/statistics/rx_bytes"; }
start() { # start ferry serve on store $1, access log to $2
  ip netns exec "$NS_S" "$FERRY" serve -q --store "$1" --listen "$ADDR" --log-json --refresh 0 2>"$2" &
  pid=$!
  for _ in $(seq 600); do
    ip netns exec "$NS_C" curl -sf "http://$ADDR/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "ferry serve never became ready"; cat "$2"; exit 1
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }

download() { # go mod download all in the fresh module cache $1; prints "bytes seconds"
  local h=$1 before t0 t1 after
  rm -rf "$h"; mkdir -p "$h"
  before=$(rx); t0=$(date +%s.%N)
  (cd "$W/src" && ip netns exec "$NS_C" env -i PATH="$GOBIN_DIR:/usr/bin:/bin" HOME="$h" GOPATH="$h/gopath" \
    GOCACHE="$h/gocache" GOENV=off GOPROXY="http://$ADDR" GOSUMDB="$(go env GOSUMDB)" GOFLAGS=-modcacherw \
    GOTOOLCHAIN=local GONOSUMDB= GOPRIVATE= GONOPROXY= go mod download all)
  t1=$(date +%s.%N); after=$(rx)
  echo "$((after - before)) $(awk "BEGIN {printf \"%.2f\", $t1 - $t0}")"
}

fetchzips() { # every zip of $W/zips.curl with one curl (asking for gzip, decompressing); prints "bytes seconds"
  local before t0 t1 after
  before=$(rx); t0=$(date +%s.%N)
  ip netns exec "$NS_C" curl -sf --compressed -K "$W/zips.curl"
  t1=$(date +%s.%N); after=$(rx)
  echo "$((after - before)) $(awk "BEGIN {printf \"%.2f\", $t1 - $t0}")"
}

rm -rf "$W/store-identity"; cp -al "$W/store-gzip" "$W/store-identity"; rm -rf "$W/store-identity/gz"
rm -f "$W/zips.curl"
echo
echo "Each run: a fresh module cache; \`sync\` before it. go: \`go mod download all\` (the go command's"
echo "client, which asks for gzip; the time includes checking and extracting every zip). curl: every zip"
echo "the go run fetched, one after the other on one connection, with --compressed (the wire and gunzip only)."
echo
echo "| server | run | go: bytes received | go: s | zip bytes sent (access log) | curl: bytes received | curl: s | zips in the module cache, bytes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for name in gzip identity reference; do
  for rep in $(seq "$REPS"); do
    log=$W/access-$name-$rep.log h=$W/client-$name-$rep
    start "$W/store-$name" "$log"
    sync
    out=$(download "$h"); read -r bytes secs <<<"$out"
    if [ ! -s "$W/zips.curl" ]; then # the zips the go command asked for (the log is flushed every 100 ms)
      sleep 0.5
      grep '^{' "$log" | jq -r 'select(.path != null and (.path | endswith(".zip"))) | .path' |
        sed "s|.*|url = \"http://$ADDR&\"\noutput = \"/dev/null\"|" >"$W/zips.curl"
    fi
    out=$(fetchzips); read -r cbytes csecs <<<"$out"
    stop # the access log is complete once the server has stopped
    zips=$(grep '^{' "$log" | jq -r 'select(.path != null and (.path | endswith(".zip"))) | [.path, .bytes] | @tsv' |
      sort -u -k1,1 | awk '{s+=$2} END {print s+0}')
    kept=$(find "$h/gopath/pkg/mod/cache/download" -name '*.zip' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    echo "| $name | $rep | $bytes | $secs | $zips | $cbytes | $csecs | $kept |"
    chmod -R u+w "$h"; rm -rf "$h"
  done
done
