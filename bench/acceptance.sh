#!/usr/bin/env bash
# Issue 2's acceptance run on a real, sizeable project: pack it for four
# platforms with two toolchains and one tool, install it into a fresh HOME in
# a network namespace with no network, and run the go command's checks there
# with GOSUMDB at its default. Then flip bytes in the bundle and check that
# verify and install refuse each copy and leave the prefix empty.
# Needs root (unshare -n) and a few GB of disk.
#
# Usage: bench/acceptance.sh [MODULE@VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
MOD=${1:-github.com/prometheus/prometheus@v0.316.0}
TOOL=${TOOL:-golang.org/x/tools/cmd/stringer@v0.42.0}
TC1=${TC1:-$(go env GOVERSION)}
TC2=${TC2:-go1.27.4}
PLATS=linux/amd64,linux/arm64,windows/amd64,darwin/arm64
W=${ACCEPT_DIR:-/tmp/ferry-accept}
rm -rf "$W"; mkdir -p "$W"
FERRY="$W/ferry"; CGO_ENABLED=0 go build -o "$FERRY" ./cmd/ferry
GOBIN_DIR=$(dirname "$(command -v go)")
conn="env -i PATH=$GOBIN_DIR:/usr/bin:/bin HOME=$W/conn GOPATH=$W/conn/gopath GOCACHE=$W/conn/gocache GOENV=$W/conn/goenv GOPROXY=$(go env GOPROXY) GOSUMDB=$(go env GOSUMDB) GOFLAGS=-modcacherw GOTOOLCHAIN=local"
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.1f'; }

dir=$($conn go mod download -json "$MOD" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
cp -r "$dir" "$W/src"; chmod -R u+w "$W/src"; rm -f "$W/src/go.work" "$W/src/go.work.sum"
nmods=$(cd "$W/src" && $conn go list -m all | wc -l)
echo "== $MOD: $nmods modules in go list -m all"

t0=$(now)
(cd "$W/src" && $conn "$FERRY" pack . -o "$W/p.ferry" --platform "$PLATS" --toolchain "$TC1,$TC2" --tool "$TOOL" --cache "$W/cache")
echo "pack: $(since "$t0") s, $(( $(stat -c %s "$W/p.ferry") / 1048576 )) MiB"

far="env -i PATH=$W/far/ferry/go/bin:/usr/bin:/bin HOME=$W/far GOCACHE=$W/far/gocache GOFLAGS=-modcacherw CGO_ENABLED=0"
fer="env -i PATH=$GOBIN_DIR:/usr/bin:/bin HOME=$W/far"
mkdir -p "$W/far"
t0=$(now); unshare -n $fer "$FERRY" verify "$W/p.ferry"; echo "verify: $(since "$t0") s"
t0=$(now); unshare -n $fer "$FERRY" install "$W/p.ferry" --prefix "$W/far/ferry"; echo "install: $(since "$t0") s"
cp -r "$W/src" "$W/far/project"
cd "$W/far/project"
check() { echo "-- offline: $*"; unshare -n $far "$@"; }
check go env GOSUMDB GOPROXY
for p in ${PLATS//,/ }; do
  echo "-- offline: GOOS=${p%/*} GOARCH=${p#*/} go list -deps -test ./..."
  unshare -n $far GOOS=${p%/*} GOARCH=${p#*/} go list -deps -test ./... >/dev/null
done
check go mod verify
check go install "$TOOL"
ls -la "$W/far/go/bin"
check env GOTOOLCHAIN="$TC2" go version
cp go.mod go.sum "$W/"
check go mod tidy
git diff --no-index --stat "$W/go.mod" go.mod && git diff --no-index --stat "$W/go.sum" go.sum && echo "tidy: no change"
t0=$(now); check go build ./...; echo "build: $(since "$t0") s"
t0=$(now); check env GOOS=windows GOARCH=amd64 go build -o /dev/null ./cmd/prometheus; echo "cross-build: $(since "$t0") s"

echo "== flipped bytes"
size=$(stat -c %s "$W/p.ferry")
for off in 100 1500 $((size/7)) $((size/3)) $((size/2)) $((size-700)); do
  cp "$W/p.ferry" "$W/flip.ferry"
  printf '\xff' | dd of="$W/flip.ferry" bs=1 seek="$off" conv=notrunc status=none
  if unshare -n $fer "$FERRY" verify "$W/flip.ferry" >"$W/flip.out" 2>&1; then echo "FAIL: verify accepted a flip at $off"; exit 1; fi
  rm -rf "$W/flip-prefix"
  if unshare -n $fer "$FERRY" install "$W/flip.ferry" --prefix "$W/flip-prefix" --goenv - >>"$W/flip.out" 2>&1; then echo "FAIL: install accepted a flip at $off"; exit 1; fi
  if [ -n "$(ls -A "$W/flip-prefix" 2>/dev/null)" ]; then echo "FAIL: refused install left files at offset $off"; exit 1; fi
  echo "offset $off: refused, prefix empty: $(grep -m1 -v '^$' "$W/flip.out" | cut -c1-160)"
done
echo "== acceptance passed"
