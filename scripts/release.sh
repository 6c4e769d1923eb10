#!/usr/bin/env bash
# Build ferry's release binaries: static (CGO_ENABLED=0), reproducible, with
# the version stamped in, and a SHA256SUMS file for them.
#
#   scripts/release.sh [-v VERSION] [-p PLATFORMS] [OUTDIR]
#
#   OUTDIR     where the binaries and SHA256SUMS go (default: dist/ in the
#              repository, which .gitignore covers); created if missing.
#   -v VERSION the version to stamp (also $FERRY_VERSION); default: the output
#              of 'git describe --tags --always --dirty' when this is a git
#              checkout. Required otherwise (e.g. from a source tarball).
#   -p LIST    comma-separated GOOS/GOARCH list (also $PLATFORMS); default:
#              linux/amd64,linux/arm64,darwin/arm64,windows/amd64.
#
# Output: ferry-GOOS-GOARCH (ferry-windows-amd64.exe) per platform, and
# SHA256SUMS listing exactly those files in 'sha256sum -c' format.
#
# Reproducible: the same source tree, Go version (go.mod's toolchain rules)
# and version string give the same bytes, in any directory and on any build
# host. What makes it so: -trimpath (no local paths), -buildvcs=false (no
# checkout state, so a tarball and a checkout agree; the version stamp names
# the commit instead), CGO_ENABLED=0 (no C toolchain), and the environment
# below pinned against the caller's go env (GOFLAGS, GOAMD64, GOARM64).
# -s -w drop the symbol table and DWARF to make the binaries smaller; they
# are not needed for reproducibility. The Go build ID is left in: it is
# derived from content hashes and is itself reproducible.
set -euo pipefail

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

version=${FERRY_VERSION:-}
platforms=${PLATFORMS:-linux/amd64,linux/arm64,darwin/arm64,windows/amd64}
while getopts "v:p:h" opt; do
  case $opt in
    v) version=$OPTARG ;;
    p) platforms=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -z "$version" ] && git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  version=$(git -C "$root" describe --tags --always --dirty)
fi
if [ -z "$version" ]; then
  echo "release.sh: no version: not a git checkout; pass -v VERSION or set FERRY_VERSION" >&2
  exit 2
fi
case $version in
  *[!A-Za-z0-9._+-]*) echo "release.sh: version $version: use only letters, digits and . _ + -" >&2; exit 2 ;;
esac

# Pin what would otherwise come from the caller's environment or go env file
# (an empty variable would fall back to the go env file, so set values).
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOAMD64=v1 GOARM64=v8.0
ldflags="-s -w -X github.com/ferry-dev/ferry/internal/buildinfo.version=$version"

# now prints the time in seconds (bash 3.2, as on macOS, has no EPOCHREALTIME).
now() { echo "${EPOCHREALTIME:-$SECONDS}"; }

cd "$root"
echo "ferry $version with $(go version)" >&2
files=()
IFS=, read -r -a plats <<<"$platforms"
for p in "${plats[@]}"; do
  goos=${p%/*} goarch=${p#*/}
  if [ -z "$goos" ] || [ -z "$goarch" ] || [ "$goos" = "$p" ]; then
    echo "release.sh: platform $p: want GOOS/GOARCH" >&2
    exit 2
  fi
  name=ferry-$goos-$goarch
  if [ "$goos" = windows ]; then name=$name.exe; fi
  start=$(now)
  GOOS=$goos GOARCH=$goarch go build -trimpath -buildvcs=false -ldflags "$ldflags" \
    -o "$out/$name" ./cmd/ferry
  printf '%-28s %9d bytes  %6.1f s\n' "$name" "$(wc -c <"$out/$name")" \
    "$(awk "BEGIN{print $(now) - $start}")" >&2
  files+=("$name")
done

sum() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi
}
(
  cd "$out"
  # shellcheck disable=SC2046 # the names have no spaces
  sum $(printf '%s\n' "${files[@]}" | LC_ALL=C sort -u) >SHA256SUMS.tmp
  mv SHA256SUMS.tmp SHA256SUMS
)
echo "wrote $out/SHA256SUMS" >&2
