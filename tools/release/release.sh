#!/usr/bin/env bash
# Builds the release binaries of bidora for every platform it supports, with
# version, commit and date stamped in, and writes their SHA-256 checksums.
#
#   tools/release/release.sh [-o DIR] [VERSION]
#
# VERSION defaults to `git describe --tags --always --dirty`; DIR to dist/.
# The build is reproducible: the same commit built with the same Go release
# gives byte-identical files on any machine and in any directory (-trimpath,
# no VCS stamping or build id, fixed GOAMD64/GOARM64, the date of the last
# commit instead of the clock; SOURCE_DATE_EPOCH overrides that date).
# BIDORA_RELEASE_TARGETS (e.g. "linux/amd64 windows/arm64") builds a subset.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=dist
while getopts "o:" opt; do
	case $opt in
	o) out=$OPTARG ;;
	*) echo "usage: $0 [-o DIR] [VERSION]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))

version=${1:-$(git describe --tags --always --dirty --abbrev=12)}
commit=$(git rev-parse HEAD)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$epoch" +%Y-%m-%dT%H:%M:%SZ)
targets=${BIDORA_RELEASE_TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}

pkg=github.com/bidora/bidora/internal/cli
ldflags="-buildid= -X $pkg.Version=$version -X $pkg.Commit=$commit -X $pkg.Date=$date"

mkdir -p "$out"
files=()
for t in $targets; do
	goos=${t%/*} goarch=${t#*/}
	name="bidora_${version}_${goos}_${goarch}"
	[ "$goos" = windows ] && name="$name.exe"
	# Only what the build reads from the environment and could differ
	# between machines is pinned; GOFLAGS may still add -mod=readonly.
	env CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" GOAMD64=v1 GOARM64=v8.0 GOEXPERIMENT= \
		go build -trimpath -buildvcs=false -ldflags="$ldflags" -o "$out/$name" ./cmd/bidora
	touch -d "@$epoch" "$out/$name" 2>/dev/null || true
	files+=("$name")
	echo "$out/$name"
done
(cd "$out" && sha256sum "${files[@]}" >SHA256SUMS)
echo "$out/SHA256SUMS ($(go version | cut -d' ' -f3), $version, $commit, $date)"
