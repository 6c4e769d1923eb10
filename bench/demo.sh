#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: pack a real project from the
# upstream module proxy and checksum database of `go env`, then install it in
# a fresh HOME and build it inside a network namespace with no network, with
# GOSUMDB at its default. Needs root (unshare -n).
#
# Usage: bench/demo.sh [FERRY_BINARY] [MODULE@VERSION]
#   default project: github.com/junegunn/fzf@v0.65.2 (a few minutes); for a big one:
#   bench/demo.sh "" github.com/prometheus/prometheus@v0.316.0 (419 modules; the build takes ~10 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
FERRY=${1:-}
MOD=${2:-github.com/junegunn/fzf@v0.65.2}
W=${DEMO_DIR:-/tmp/ferry-demo}
rm -rf "$W"; mkdir -p "$W"
if [ -z "$FERRY" ]; then FERRY="$W/ferry"; CGO_ENABLED=0 go build -o "$FERRY" ./cmd/ferry; fi
GOBIN_DIR=$(dirname "$(command -v go)")
GOV=$(go env GOVERSION)
conn="env -i PATH=$GOBIN_DIR:/usr/bin:/bin HOME=$W/conn GOPATH=$W/conn/gopath GOCACHE=$W/conn/gocache GOENV=$W/conn/goenv GOPROXY=$(go env GOPROXY) GOSUMDB=$(go env GOSUMDB) GOFLAGS=-modcacherw GOTOOLCHAIN=local"

echo "== fetching the project source: $MOD"
dir=$($conn go mod download -json "$MOD" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
cp -r "$dir" "$W/src"; chmod -R u+w "$W/src"; rm -f "$W/src/go.work" "$W/src/go.work.sum"

echo "== ferry pack (connected side)"
(cd "$W/src" && $conn "$FERRY" pack . -o "$W/project.ferry" --toolchain "$GOV" --cache "$W/cache")

far="env -i PATH=$W/far/ferry/go/bin:/usr/bin:/bin HOME=$W/far GOCACHE=$W/far/gocache GOFLAGS=-modcacherw CGO_ENABLED=0"
mkdir -p "$W/far"
echo "== ferry install (offline: unshare -n, fresh HOME)"
unshare -n $far PATH="$GOBIN_DIR:/usr/bin:/bin" "$FERRY" install "$W/project.ferry" --prefix "$W/far/ferry"
cp -r "$W/src" "$W/far/project"
echo "== offline: go env GOSUMDB GOPROXY; go version; go mod verify; go build ./..."
cd "$W/far/project"
unshare -n $far go env GOSUMDB GOPROXY
unshare -n $far go version
unshare -n $far go mod verify
unshare -n $far go build ./...
echo "== done: built $MOD offline with GOSUMDB on"
