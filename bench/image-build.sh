#!/usr/bin/env bash
# Image build time for a real small service: `ferry image build` of
# go-containerregistry's cmd/registry (an OCI registry server) for
# linux/amd64 and linux/arm64, into an OCI layout, in a network namespace
# with no network (modules from a module cache filled beforehand, GOPROXY=off).
# Three runs: go build cache cold, warm, and cold again in a fresh cache to
# show the digests do not depend on the cache. Needs root (unshare -n).
#
# Usage: bench/image-build.sh [MODULE@VERSION] [PACKAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
MOD=${1:-github.com/google/go-containerregistry@v0.22.1}
PKG=${2:-./cmd/registry}
PLATS=${PLATS:-linux/amd64,linux/arm64}
W=${IMAGE_BENCH_DIR:-/tmp/ferry-image-bench}
rm -rf "$W"; mkdir -p "$W"
FERRY="$W/ferry"; CGO_ENABLED=0 go build -o "$FERRY" ./cmd/ferry
GOBIN_DIR=$(dirname "$(command -v go)")
conn="env -i PATH=$GOBIN_DIR:/usr/bin:/bin HOME=$W/home GOPATH=$W/gopath GOCACHE=$W/conn-cache GOENV=$W/goenv GOPROXY=$(go env GOPROXY) GOSUMDB=$(go env GOSUMDB) GOFLAGS=-modcacherw GOTOOLCHAIN=local"
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.1f'; }

dir=$($conn go mod download -json "$MOD" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
cp -r "$dir" "$W/src"; chmod -R u+w "$W/src"
cd "$W/src"
for p in ${PLATS//,/ }; do
  $conn GOOS=${p%/*} GOARCH=${p#*/} GOFLAGS=-modcacherw go list -deps "$PKG" >/dev/null
done
echo "== $MOD $PKG for $PLATS ($($conn go version | cut -d' ' -f3), $(nproc) cores)"

build() { # build NAME GOCACHE
  local t0; t0=$(now)
  unshare -n env -i PATH="$GOBIN_DIR:/usr/bin:/bin" HOME="$W/home" GOPATH="$W/gopath" GOCACHE="$2" \
    GOENV=off GOPROXY=off GOFLAGS=-modcacherw GOTOOLCHAIN=local SOURCE_DATE_EPOCH=1700000000 \
    "$FERRY" image build "$PKG" --tag registry:bench --platform "$PLATS" -o "oci:$W/$1" --json >"$W/$1.json"
  echo "$1: $(since "$t0") s, index $(sed -n 's/.*"digest": "\(sha256:[0-9a-f]*\)".*/\1/p' "$W/$1.json" | head -1)"
}
build cold "$W/gocache"
build warm "$W/gocache"
build cold-again "$W/gocache2"
du -sh "$W/cold" | sed 's/^/layout size: /'
grep -E '"(platform|layersSize)"' "$W/cold.json" | paste - - | sed 's/[",]//g; s/  */ /g'
