#!/usr/bin/env bash
# licenses.sh compares license coverage on the benchmark image: how many
# packages trivy, syft and mamori list, and how many of them get a
# license, per ecosystem, and which packages one tool licenses and another
# does not (see docs/licenses.md).
#
#   bench/licenses.sh
#
# trivy runs its license scanner (--scanners license --license-full, which
# also classifies license files), syft its default catalogers; mamori runs
# in process through bench/cmd/licensecov (inventory with the license file
# analyzer, then license.Analyze). All run offline. Results go to stdout
# and $BENCH_DIR/licenses-results.md.
#
# Environment:
#   BENCH_DIR  cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench),
#              shared with bench/run.sh, which creates the trivy Java DB stand-in
#   LIST       packages listed per gap (default 40)
set -euo pipefail

export BENCH_DIR=${BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench}
LIST=${LIST:-40}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$BENCH_DIR/bin
IMAGE=$BENCH_DIR/image/docker.tar
OUT=$BENCH_DIR/licenses
RESULTS=$BENCH_DIR/licenses-results.md

log() { printf '[licenses] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

"$REPO/bench/build-peers.sh"
"$REPO/bench/build-image.sh"
[[ -e $BENCH_DIR/trivy-cache/java-db/metadata.json ]] ||
	die "no trivy Java DB stand-in in $BENCH_DIR/trivy-cache (run bench/run.sh once)"

NONET=(unshare --net --)
unshare --net -- true 2>/dev/null || NONET=()
mkdir -p "$OUT" "$BENCH_DIR/tmp"
export TMPDIR=$BENCH_DIR/tmp
export SYFT_CHECK_FOR_APP_UPDATE=false

log "trivy"
"${NONET[@]}" "$BIN/trivy" image --input "$IMAGE" --scanners license --license-full \
	--format json --output "$OUT/trivy.json" \
	--cache-backend memory --cache-dir "$BENCH_DIR/trivy-cache" --offline-scan \
	--skip-db-update --skip-java-db-update --skip-check-update --skip-version-check \
	--disable-telemetry --no-progress --quiet
log "syft"
"${NONET[@]}" "$BIN/syft" scan "docker-archive:$IMAGE" -o "json=$OUT/syft.json" --quiet
log "mamori"
go build -C "$REPO" -o "$BIN/licensecov" ./bench/cmd/licensecov
"${NONET[@]}" "$BIN/licensecov" -image "$IMAGE" -trivy "$OUT/trivy.json" -syft "$OUT/syft.json" \
	-list "$LIST" | tee "$RESULTS"
log "results in $RESULTS"
