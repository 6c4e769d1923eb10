#!/usr/bin/env bash
# Delta bundle size on a real project moved one minor release forward:
# a full bundle of V1, then a delta of V2 against it (`pack --base`), and a
# full bundle of V2 for comparison. Reports the delta's size against what
# changed: the blobs V2 has and V1 lacks (new module zips, .mod/.info files,
# checksum tiles), the small signed checksum files a delta always carries
# (latest head and lookups), and the manifest; the rest is tar/OCI overhead.
# Then installs V1 + delta offline (unshare -n) and builds V2 (needs root).
#
# Usage: bench/delta.sh [FERRY_BINARY] [MODULE] [V1] [V2]
#   default: github.com/prometheus/prometheus v0.315.1 -> v0.316.0 (host platform, local toolchain)
#   BENCH_DIR=/tmp/ferry-delta  SKIP_BUILD=1 (skip the offline build of V2)
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY=${1:-}
MOD=${2:-github.com/prometheus/prometheus}
V1=${3:-v0.315.1}
V2=${4:-v0.316.0}
W=${BENCH_DIR:-/tmp/ferry-delta}
rm -rf "$W"; mkdir -p "$W"
if [ -z "$FERRY" ]; then FERRY="$W/ferry"; CGO_ENABLED=0 go build -o "$FERRY" ./cmd/ferry; fi
GOBIN_DIR=$(dirname "$(command -v go)")
GOV=$(go env GOVERSION)
conn="env -i PATH=$GOBIN_DIR:/usr/bin:/bin HOME=$W/conn GOPATH=$W/conn/gopath GOCACHE=$W/conn/gocache GOENV=$W/conn/goenv GOPROXY=$(go env GOPROXY) GOSUMDB=$(go env GOSUMDB) GOFLAGS=-modcacherw GOTOOLCHAIN=local"

for v in "$V1" "$V2"; do
  echo "== fetching $MOD@$v"
  dir=$($conn go mod download -json "$MOD@$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  cp -r "$dir" "$W/$v"; chmod -R u+w "$W/$v"; rm -f "$W/$v/go.work" "$W/$v/go.work.sum"
done

t() { local s=$(date +%s.%N); "$@"; echo "   $(echo "$(date +%s.%N) - $s" | bc) s"; }
echo "== pack $V1 (full)"
(cd "$W/$V1" && t $conn "$FERRY" pack . -q -o "$W/v1.ferry" --toolchain "$GOV" --cache "$W/cache" --name "$(basename "$MOD")" --bundle-version "$V1")
echo "== pack $V2 --base v1.ferry (delta)"
(cd "$W/$V2" && t $conn "$FERRY" pack . -q -o "$W/v2.delta.ferry" --base "$W/v1.ferry" --toolchain "$GOV" --cache "$W/cache" --name "$(basename "$MOD")" --bundle-version "$V2")
echo "== pack $V2 (full, for comparison)"
(cd "$W/$V2" && t $conn "$FERRY" pack . -q -o "$W/v2.ferry" --toolchain "$GOV" --cache "$W/cache" --name "$(basename "$MOD")" --bundle-version "$V2")

"$FERRY" diff "$W/v1.ferry" "$W/v2.ferry" | tail -1
"$FERRY" ls --json "$W/v2.delta.ferry" > "$W/delta.json"
size() { stat -c %s "$1"; }
full1=$(size "$W/v1.ferry"); full2=$(size "$W/v2.ferry"); delta=$(size "$W/v2.delta.ferry")
# What the delta carries, by kind (distinct blobs not in the base), from the two manifests.
"$FERRY" ls --json "$W/v1.ferry" > "$W/base.json"
jq -r --slurpfile base "$W/base.json" '
  ($base[0].items | map(.digest) | INDEX(.)) as $in
  | [.items[] | select(($in[.digest] == null) or (.kind=="sumdb" and (.file|test("/latest$|/lookup/"))))]
  | unique_by(.digest)
  | group_by(if .kind=="sumdb" then (if (.file|test("/tile/")) then "tiles" else "signed sumdb files (latest, lookups)" end) else .kind end)
  | map({kind: (if .[0].kind=="sumdb" then (if (.[0].file|test("/tile/")) then "tiles" else "signed sumdb files (latest, lookups)" end) else .[0].kind end), n: length, bytes: (map(.size)|add)})
  | .[] | "\(.kind)\t\(.n)\t\(.bytes)"' "$W/delta.json" > "$W/kinds.tsv"
manifest=$(jq -r .manifestSize "$W/delta.json")
carried=$(awk -F'\t' '{s+=$3} END {print s+0}' "$W/kinds.tsv")
changed=$(awk -F'\t' '$1=="zip"||$1=="mod"||$1=="info"||$1=="tiles" {s+=$3} END {print s+0}' "$W/kinds.tsv")
echo
echo "| | bytes |"
echo "|---|---:|"
echo "| full bundle $V1 | $full1 |"
echo "| full bundle $V2 | $full2 |"
echo "| delta $V1 -> $V2 | $delta ($(echo "scale=2; 100*$delta/$full2" | bc)% of the full bundle) |"
while IFS=$'\t' read -r k n b; do echo "| delta carries: $k ($n blobs) | $b |"; done < "$W/kinds.tsv"
echo "| delta carries: manifest | $manifest |"
echo "| what changed (new zips, .mod, .info, tiles) + manifest | $((changed + manifest)) |"
echo "| delta / (what changed + manifest) | $(echo "scale=4; $delta/($changed+$manifest)" | bc) |"
echo "| overhead beyond every carried blob + manifest (tar headers, OCI manifest) | $((delta - carried - manifest)) |"

if [ -z "${SKIP_BUILD:-}" ]; then
  far="env -i PATH=$W/far/ferry/go/bin:/usr/bin:/bin HOME=$W/far GOCACHE=$W/far/gocache GOFLAGS=-modcacherw CGO_ENABLED=0"
  mkdir -p "$W/far"
  echo "== offline: install v1, then the delta; go build $V2"
  unshare -n $far PATH="$GOBIN_DIR:/usr/bin:/bin" "$FERRY" install -q "$W/v1.ferry" --prefix "$W/far/ferry"
  t unshare -n $far PATH="$GOBIN_DIR:/usr/bin:/bin" "$FERRY" install -q "$W/v2.delta.ferry" --prefix "$W/far/ferry"
  cp -r "$W/$V2" "$W/far/project"
  (cd "$W/far/project" && unshare -n $far go mod verify && unshare -n $far go build ./... && echo "   built $MOD@$V2 offline from base + delta")
fi
