#!/usr/bin/env bash
# Measures, on one real project in one run, ferry against the manual way of
# carrying Go across an air gap:
#
#   manual: `go mod download all` + the Go toolchain archive + `tar czf` of
#           GOMODCACHE; on the far side `tar xzf` + unzip, then build with
#           GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod
#   ferry:  `ferry pack`; on the far side `ferry install`, then plain go build
#           (GOSUMDB on)
#
# Same content for both: the project's full module graph for the host
# platform and one toolchain (this machine's Go version). Offline steps run in
# a network namespace with no network (needs root for `unshare -n`).
# Every build uses a fresh GOCACHE.
#
# Usage: [BENCH_DIR=DIR] [BUILD=./cmd/prometheus] [SKIP_BUILD=1] bench/manual-vs-ferry.sh [MODULE@VERSION]
#   default: github.com/prometheus/prometheus@v0.316.0; BUILD is what the
#   first offline build builds (default ./...)
# Results: a Markdown table on stdout and in $BENCH_DIR/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."

MOD=${1:-github.com/prometheus/prometheus@v0.316.0}
W=${BENCH_DIR:-/tmp/ferry-bench}
GOV=$(go env GOVERSION)
PLAT=$(go env GOOS)/$(go env GOARCH)
PLATDASH=${PLAT/\//-}
UPROXY=$(go env GOPROXY)
USUMDB=$(go env GOSUMDB)
GOBIN_DIR=$(dirname "$(command -v go)")

rm -rf "$W"
mkdir -p "$W"
CGO_ENABLED=0 go build -o "$W/ferry" ./cmd/ferry

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf '%.1f'; }
mib() { echo "$(stat -c %s "$1") / 1048576" | bc -l | xargs printf '%.0f'; }

# cleanenv NAME: a connected, clean go environment of its own.
cleanenv() {
  local d="$W/env-$1"
  mkdir -p "$d/home" "$d/gocache"
  echo env -i PATH="$GOBIN_DIR:/usr/bin:/bin" HOME="$d/home" GOPATH="$d/gopath" \
    GOMODCACHE="$d/gopath/pkg/mod" GOCACHE="$d/gocache" GOENV="$d/goenv" \
    GOPROXY="$UPROXY" GOSUMDB="$USUMDB" GOFLAGS=-modcacherw GOTOOLCHAIN=local CGO_ENABLED=0
}

echo "== project $MOD"
SRC="$W/src"
dir=$($(cleanenv src) go mod download -json "$MOD" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
cp -r "$dir" "$SRC"
chmod -R u+w "$SRC"
rm -f "$SRC/go.work" "$SRC/go.work.sum" # a module zip holds no nested modules
nmods=$(cd "$SRC" && $(cleanenv src) go list -m all | wc -l)

echo "== manual: pack"
M="$W/manual"
mkdir -p "$M"
t0=$(now)
(cd "$SRC" && $(cleanenv manual) go mod download all)
# The Go archive comes from its own cache, so it is not also in the tarred GOMODCACHE.
tc=$($(cleanenv goarchive) sh -c "cd $M && go mod download -json golang.org/toolchain@v0.0.1-$GOV.$PLATDASH" | sed -n 's/.*"Zip": "\(.*\)".*/\1/p')
cp "$tc" "$M/go.zip"
tar czf "$M/gomodcache.tar.gz" -C "$W/env-manual/gopath/pkg" mod
manual_pack=$(since "$t0")
manual_size=$(( $(stat -c %s "$M/gomodcache.tar.gz") + $(stat -c %s "$M/go.zip") ))

echo "== ferry: pack"
t0=$(now)
(cd "$SRC" && $(cleanenv ferry) "$W/ferry" pack . -o "$W/app.ferry" --platform "$PLAT" --toolchain "$GOV" --cache "$W/ferry-cache" -q)
ferry_pack=$(since "$t0")
ferry_size=$(stat -c %s "$W/app.ferry")

echo "== ferry: signed pack (same inputs, download cache warm)"
"$W/ferry" key generate bench --dir "$W" -q >/dev/null
t0=$(now)
(cd "$SRC" && $(cleanenv ferry) "$W/ferry" pack . -o "$W/signed.ferry" --platform "$PLAT" --toolchain "$GOV" --cache "$W/ferry-cache" --sign-key "$W/bench.key" -q)
ferry_repack=$(since "$t0")

# The far side: no network, fresh HOME.
far() { # far NAME: environment of a fresh offline user
  local d="$W/far-$1"
  mkdir -p "$d/home"
  echo env -i PATH="$d/go/bin:$d/ferry/go/bin:/usr/bin:/bin" HOME="$d/home" GOCACHE="$d/gocache" GOFLAGS=-modcacherw CGO_ENABLED=0
}

echo "== manual: install offline"
D="$W/far-manual"
mkdir -p "$D/gopath/pkg"
sync
t0=$(now)
unshare -n sh -c "tar xzf '$M/gomodcache.tar.gz' -C '$D/gopath/pkg' && unzip -q '$M/go.zip' -d '$D/tc' && mv '$D/tc/golang.org/toolchain@v0.0.1-$GOV.$PLATDASH' '$D/go' && find '$D/go' -name _go.mod | while read f; do mv \"\$f\" \"\${f%_go.mod}go.mod\"; done && chmod +x '$D'/go/bin/* '$D'/go/pkg/tool/*/*"
manual_install=$(since "$t0")
t1=$(now)
[ -n "${SKIP_BUILD:-}" ] || (cd "$SRC" && unshare -n $(far manual) GOPATH="$D/gopath" GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go build ${BUILD:-./...})
manual_build=$(since "$t1")
manual_first=$(since "$t0")

echo "== ferry: signed install offline"
D="$W/far-signed"
mkdir -p "$D"
sync
t0=$(now)
unshare -n $(far signed) PATH="$GOBIN_DIR:/usr/bin:/bin" "$W/ferry" install "$W/signed.ferry" --key "$W/bench.pub" --prefix "$D/ferry" --goenv - -q >/dev/null
signed_install=$(since "$t0")

echo "== ferry: install offline"
D="$W/far-ferry"
mkdir -p "$D"
sync
t0=$(now)
unshare -n $(far ferry) PATH="$GOBIN_DIR:/usr/bin:/bin" "$W/ferry" install "$W/app.ferry" --prefix "$D/ferry" --goenv "$D/home/.config/go/env" -q >/dev/null
ferry_install=$(since "$t0")
t1=$(now)
[ -n "${SKIP_BUILD:-}" ] || (cd "$SRC" && unshare -n $(far ferry) GOENV="$D/home/.config/go/env" go build ${BUILD:-./...})
ferry_build=$(since "$t1")
ferry_first=$(since "$t0")
gosumdb=$(cd "$SRC" && unshare -n $(far ferry) GOENV="$D/home/.config/go/env" go env GOSUMDB)
# Name no database host in the results: say whether it is the connected side's.
if [ "$gosumdb" = "$USUMDB" ]; then gosumdb="unchanged (as on the connected side)"; else gosumdb="CHANGED to $gosumdb"; fi

{
  echo "Project: $MOD ($nmods modules in go list -m all), platform $PLAT, toolchain $GOV, $(nproc) cores."
  echo
  echo "| | manual (tar czf of GOMODCACHE + Go archive) | ferry |"
  echo "|---|---|---|"
  echo "| pack (connected, cold caches) | ${manual_pack} s | ${ferry_pack} s |"
  echo "| size carried | $((manual_size/1048576)) MiB | $((ferry_size/1048576)) MiB |"
  echo "| pack again, signed (download cache warm) | | ${ferry_repack} s |"
  echo "| install offline | ${manual_install} s (tar xzf + unzip) | ${ferry_install} s (verify incl. every h1: + install) |"
  echo "| install offline, signed bundle (--key) | | ${signed_install} s (verify + install) |"
  if [ -z "${SKIP_BUILD:-}" ]; then
    echo "| first offline go build ${BUILD:-./...} (fresh GOCACHE) | ${manual_build} s | ${ferry_build} s |"
    echo "| bare machine to first successful build | ${manual_first} s | ${ferry_first} s |"
  fi
  echo "| checksum database offline | GOSUMDB=off | GOSUMDB $gosumdb, verified from the bundle |"
} | tee "$W/results.md"
