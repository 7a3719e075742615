#!/usr/bin/env bash
# build-peers.sh builds the scanners the benchmark compares mamori with, from
# source through the Go module proxy, into $BENCH_DIR/bin:
#
#   trivy v0.74.0  (github.com/aquasecurity/trivy/cmd/trivy, needs GOEXPERIMENT=jsonv2)
#   syft  v1.57.0  (github.com/anchore/syft/cmd/syft)
#
# The proxy refuses a version-pinned "go install" for these modules (their
# go.mod has replace directives), so each is pinned as a tool of a scratch
# module and installed from there. A binary whose build information already
# names the wanted version is kept. If PEERS_FROM (default /work/peers/bin)
# holds binaries of the right version they are copied instead of rebuilt.
#
# Environment:
#   BENCH_DIR   cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench)
#   PEERS_FROM  directory with prebuilt peers to reuse (default /work/peers/bin)
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench}
PEERS_FROM=${PEERS_FROM:-/work/peers/bin}
BIN=$BENCH_DIR/bin

log() { printf '[build-peers] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# modversion prints the main module version recorded in a Go binary.
modversion() {
	go version -m "$1" 2>/dev/null | awk -F'\t' '$2 == "mod" {print $4; exit}'
}

# peer NAME PACKAGE VERSION [ENV...] makes $BIN/NAME at VERSION.
peer() {
	local name=$1 pkg=$2 version=$3
	shift 3
	local out=$BIN/$name
	if [[ -x $out && $(modversion "$out") == "$version" ]]; then
		log "$name $version: present"
		return
	fi
	if [[ -x $PEERS_FROM/$name && $(modversion "$PEERS_FROM/$name") == "$version" ]]; then
		log "$name $version: copying from $PEERS_FROM"
		cp "$PEERS_FROM/$name" "$out.tmp"
		mv "$out.tmp" "$out"
		return
	fi
	log "$name $version: building from the Go module proxy (several minutes)"
	local work
	work=$(mktemp -d "$BENCH_DIR/build-$name.XXXXXX")
	(
		cd "$work"
		go mod init "bench/peers/$name"
		env "$@" go get -tool "$pkg@$version"
		env "$@" GOBIN="$work/bin" go install "$pkg"
	) >"$BENCH_DIR/build-$name.log" 2>&1 || die "building $name failed; see $BENCH_DIR/build-$name.log"
	mv "$work/bin/$name" "$out"
	rm -rf "$work"
	[[ $(modversion "$out") == "$version" ]] || die "$out does not report $version"
}

command -v go >/dev/null || die "the Go toolchain is needed"
mkdir -p "$BIN"
peer trivy github.com/aquasecurity/trivy/cmd/trivy v0.74.0 GOEXPERIMENT=jsonv2
peer syft github.com/anchore/syft/cmd/syft v1.57.0
