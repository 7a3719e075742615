#!/usr/bin/env bash
# build-peers.sh builds the scanners the benchmark compares mamori with, from
# source through the Go module proxy, into $BENCH_DIR/bin:
#
#   trivy        v0.74.0  (github.com/aquasecurity/trivy/cmd/trivy, needs GOEXPERIMENT=jsonv2)
#   syft         v1.57.0  (github.com/anchore/syft/cmd/syft)
#   osv-scanner  v2.5.0   (github.com/google/osv-scanner/v2/cmd/osv-scanner; v2.6.0
#                          needs Go 1.27, newer than the toolchain mamori pins)
#   govulncheck  v1.9.0   (golang.org/x/vuln/cmd/govulncheck)
#
# With arguments, only the named peers are built, for example
# "build-peers.sh osv-scanner govulncheck" for the vulnerability parity test
# (bench/parity), which looks for them in $BENCH_DIR/bin.
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

# build NAME builds one peer by name.
build() {
	case $1 in
	trivy) peer trivy github.com/aquasecurity/trivy/cmd/trivy v0.74.0 GOEXPERIMENT=jsonv2 ;;
	syft) peer syft github.com/anchore/syft/cmd/syft v1.57.0 ;;
	osv-scanner) peer osv-scanner github.com/google/osv-scanner/v2/cmd/osv-scanner v2.5.0 ;;
	govulncheck) peer govulncheck golang.org/x/vuln/cmd/govulncheck v1.9.0 ;;
	*) die "unknown peer $1 (want trivy, syft, osv-scanner or govulncheck)" ;;
	esac
}

command -v go >/dev/null || die "the Go toolchain is needed"
mkdir -p "$BIN"
if (($# == 0)); then
	set -- trivy syft osv-scanner govulncheck
fi
for name in "$@"; do
	build "$name"
done
