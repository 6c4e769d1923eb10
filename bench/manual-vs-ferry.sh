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
# Usage: [BENCH_DIR=DIR] [BUILD=./cmd/prometheus] [SKIP_BUILD=1] [ROUNDS=3] bench/manual-vs-ferry.sh [MODULE@VERSION]
#   default: github.com/prometheus/prometheus@v0.316.0; BUILD is what the
#   first offline build builds (default ./...); the installs run ROUNDS
#   times each, alternating, into fresh directories, and the medians are
#   compared (the manual extraction alone varies 2x from run to run here)
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

# One offline install of each kind, timed from a synced, quiet page cache.
# Nothing is deleted until the end: on ext4 without a journal, files created
# soon after many deletions are slower to create, for both sides alike.
install_manual() { # install_manual DIR
  local D=$1
  mkdir -p "$D/gopath/pkg"
  sync
  local t0; t0=$(now)
  unshare -n sh -c "tar xzf '$M/gomodcache.tar.gz' -C '$D/gopath/pkg' && unzip -q '$M/go.zip' -d '$D/tc' && mv '$D/tc/golang.org/toolchain@v0.0.1-$GOV.$PLATDASH' '$D/go' && find '$D/go' -name _go.mod | while read f; do mv \"\$f\" \"\${f%_go.mod}go.mod\"; done && chmod +x '$D'/go/bin/* '$D'/go/pkg/tool/*/*"
  since "$t0"
}
install_ferry() { # install_ferry NAME BUNDLE [--key FILE]
  local name=$1 b=$2; shift 2
  local D="$W/far-$name"
  mkdir -p "$D"
  sync
  local t0; t0=$(now)
  unshare -n $(far "$name") PATH="$GOBIN_DIR:/usr/bin:/bin" "$W/ferry" install "$b" "$@" --prefix "$D/ferry" --goenv "$D/home/.config/go/env" -q >/dev/null
  since "$t0"
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# ROUNDS rounds, the order of the three installs turning each round.
ROUNDS=${ROUNDS:-3}
manual_all="" signed_all="" ferry_all=""
for r in $(seq "$ROUNDS"); do
  for k in $(echo "manual signed ferry manual signed" | cut -d' ' -f$(( (r-1)%3 + 1 ))-$(( (r-1)%3 + 3 ))); do
    echo "== round $r: $k install offline"
    case $k in
    manual) t=$(install_manual "$W/far-manual-$r"); manual_all="$manual_all $t" ;;
    signed) t=$(install_ferry "signed-$r" "$W/signed.ferry" --key "$W/bench.pub"); signed_all="$signed_all $t" ;;
    ferry) t=$(install_ferry "ferry-$r" "$W/app.ferry"); ferry_all="$ferry_all $t" ;;
    esac
    echo "   $t s"
  done
done
manual_install=$(echo "$manual_all" | median)
signed_install=$(echo "$signed_all" | median)
ferry_install=$(echo "$ferry_all" | median)
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.1f'; }

# The first offline build, after round 1's installs.
D="$W/far-manual-1"
manual_build=0 ferry_build=0
if [ -z "${SKIP_BUILD:-}" ]; then
  echo "== manual: first offline build"
  t1=$(now)
  (cd "$SRC" && unshare -n $(far manual-1) GOPATH="$D/gopath" GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local go build ${BUILD:-./...})
  manual_build=$(since "$t1")
  echo "== ferry: first offline build"
  t1=$(now)
  (cd "$SRC" && unshare -n $(far ferry-1) GOENV="$W/far-ferry-1/home/.config/go/env" go build ${BUILD:-./...})
  ferry_build=$(since "$t1")
fi
manual_first=$(echo "$(echo "$manual_all" | awk '{print $1}') + $manual_build" | bc -l | xargs printf '%.1f')
ferry_first=$(echo "$(echo "$ferry_all" | awk '{print $1}') + $ferry_build" | bc -l | xargs printf '%.1f')
D="$W/far-ferry-1"
gosumdb=$(cd "$SRC" && unshare -n $(far ferry-1) GOENV="$D/home/.config/go/env" go env GOSUMDB)
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
  echo "| install offline, median of $ROUNDS | ${manual_install} s (tar xzf + unzip) | ${ferry_install} s (verify incl. every h1: + install): $(ratio "$manual_install" "$ferry_install")x faster |"
  echo "| install offline, signed bundle (--key), median of $ROUNDS | | ${signed_install} s (verify + install): $(ratio "$manual_install" "$signed_install")x faster |"
  echo "| every install (s) | ${manual_all# } | unsigned ${ferry_all# }; signed ${signed_all# } |"
  if [ -z "${SKIP_BUILD:-}" ]; then
    echo "| first offline go build ${BUILD:-./...} (fresh GOCACHE) | ${manual_build} s | ${ferry_build} s |"
    echo "| bare machine to first successful build | ${manual_first} s | ${ferry_first} s |"
  fi
  echo "| checksum database offline | GOSUMDB=off | GOSUMDB $gosumdb, verified from the bundle |"
} | tee "$W/results.md"
