#!/usr/bin/env bash
# Push figures for a real service image: ferry itself, built by
# `ferry image build` for linux/amd64 and linux/arm64 (about 24 MiB of
# blobs: a binary layer per platform, CA certificates + zoneinfo, configs,
# SPDX SBOM referrers), pushed into a registry on loopback
# (distribution, bench/pushreg) three times:
#   1. first push into an empty registry,
#   2. the same image again,
#   3. the program changed (one added file in package main), same tag:
#      each platform's binary layer, config and SBOM move, the CA
#      certificates + zoneinfo layer stays;
#   4. the last image into another repository (prefix bench2): every blob
#      is mounted from the first repository, nothing is uploaded.
# For each: wall time, blobs and bytes present / mounted / uploaded as ferry
# reports them, and the blob bytes the registry says it received.
#
# Usage: bench/push.sh [FERRY_BINARY]
#   BENCH_DIR=/tmp/ferry-push (work directory)  JOBS=4 (ferry push --jobs)
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY=${1:-}
W=${BENCH_DIR:-/tmp/ferry-push}
JOBS=${JOBS:-4}
ADDR=127.0.0.1:5055
rm -rf "$W"; mkdir -p "$W/src" "$W/registry"
if [ -z "$FERRY" ]; then FERRY="$W/ferry"; CGO_ENABLED=0 go build -o "$FERRY" ./cmd/ferry; fi
CGO_ENABLED=0 go build -o "$W/pushreg" ./bench/pushreg
git archive HEAD | tar -x -C "$W/src"

build() { # build OUT: the image of ./cmd/ferry in $W/src
  local s out
  s=$(date +%s.%N)
  out=$(cd "$W/src" && SOURCE_DATE_EPOCH=0 "$FERRY" image build ./cmd/ferry --tag ferry:bench \
     --platform linux/amd64,linux/arm64 -o "oci:$1" -q)
  echo "$out" | head -1
  echo "   $(echo "$(date +%s.%N) - $s" | bc) s"
}
echo "== image build v1"; build "$W/v1"
cat > "$W/src/cmd/ferry/zz_bench_change.go" <<'EOF'
package main

import "os"

func init() {
	if os.Getenv("FERRY_BENCH_CHANGE") == "1" {
		println("changed")
	}
}
EOF
echo "== image build v2 (program changed)"; build "$W/v2"

"$W/pushreg" -addr "$ADDR" -dir "$W/registry" & REG=$!
trap 'kill $REG 2>/dev/null' EXIT
for _ in $(seq 50); do curl -fs "http://$ADDR/v2/" >/dev/null && break; sleep 0.1; done

received() { curl -fs "http://$ADDR/bench/received"; }
run() { # run NAME LAYOUT [PREFIX]
  local before s e
  before=$(received)
  s=$(date +%s.%N)
  XDG_CACHE_HOME="$W/cache" "$FERRY" push "oci:$2" "$ADDR/${3:-bench}" --plain-http --jobs "$JOBS" --json > "$W/$1.json"
  e=$(date +%s.%N)
  jq -r --arg name "$1" --arg t "$(echo "$e - $s" | bc)" --arg recv "$(( $(received) - before ))" '
    .total as $c | [$name, ($t | tonumber * 100 | round / 100 | tostring) + " s",
      "\($c.blobsPresent) (\($c.bytesPresent))", "\($c.blobsMounted) (\($c.bytesMounted))",
      "\($c.blobsUploaded) (\($c.bytesUploaded))", ($c.bytesSent | tostring), $recv,
      "\($c.manifestsPushed)/\($c.manifestsPresent)"] | @tsv' "$W/$1.json"
}
echo "== push to $ADDR/bench (jobs $JOBS); blob counts (bytes)"
{
  printf 'push\twall\tpresent\tmounted\tuploaded\tsent\treceived\tmanifests pushed/present\n'
  run first "$W/v1"
  run again "$W/v1"
  run changed "$W/v2"
  run other-repo "$W/v2" bench2
} | column -t -s $'\t'
