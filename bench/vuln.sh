#!/usr/bin/env bash
# Benchmarks the vulnerability side of mamori (issue 3), with ratios against
# peers measured in the same run:
#   1. `mamori db build` from all of ../shared/data (OSV Go, PyPI, Debian 12
#      and Alpine secdb);
#   2. matching 10,000 packages (Go benchmark in internal/match);
#   3. `mamori scan` of the inventory benchmark image end to end (inventory,
#      matching, JSON report, no cache) against trivy's SBOM-only run on the
#      same image (goal: no slower).
# Uses the image and peers of bench/run.sh (build-image.sh, build-peers.sh).
# Results go to $BENCH_DIR/vuln-results.md.
set -euo pipefail

export BENCH_DIR=${BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench}
RUNS=${RUNS:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${DATA:-$REPO/../shared/data}
BIN=$BENCH_DIR/bin
IMAGE=$BENCH_DIR/image
TIMES=$BENCH_DIR/vuln-times
RESULTS=$BENCH_DIR/vuln-results.md

log() { printf '[vuln] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x /usr/bin/time ]] || die "GNU time is needed (apt-get install -y time)"
[[ -d $DATA/osv ]] || die "no shared data at $DATA"
"$REPO/bench/build-peers.sh"
"$REPO/bench/build-image.sh"
go build -C "$REPO" -o "$BIN/mamori" ./cmd/mamori

NONET=(unshare --net --)
unshare --net -- true 2>/dev/null || NONET=()
rm -rf "$TIMES"
mkdir -p "$TIMES" "$BENCH_DIR/tmp"
export TMPDIR=$BENCH_DIR/tmp

measure() {
	local id=$1
	shift
	if ! "${NONET[@]}" /usr/bin/time -f '%e %M' -o "$TIMES/$id.last" "$@" >"$TIMES/$id.log" 2>&1; then
		tail -20 "$TIMES/$id.log" >&2
		die "$id failed: $*"
	fi
	tail -1 "$TIMES/$id.last" >>"$TIMES/$id"
}
# median ID COLUMN prints the median of a column (1 = seconds, 2 = KiB).
median() { sort -n -k"$2" "$TIMES/$1" | awk -v c="$2" '{a[NR]=$c} END {print a[int((NR+1)/2)]}'; }

DB=$BENCH_DIR/vuln.db
SOURCES=("$DATA/osv/go" "$DATA/osv/pypi" "$DATA/osv/debian" "$DATA/alpine-secdb")
cat "$IMAGE/docker.tar" >/dev/null
for ((i = 1; i <= RUNS; i++)); do
	log "run $i/$RUNS: db build"
	measure db-build "$BIN/mamori" db build -o "$DB" "${SOURCES[@]}"
	log "run $i/$RUNS: trivy SBOM only (cyclonedx output: trivy runs no vulnerability scan)"
	measure scan-trivy "$BIN/trivy" image --input "$IMAGE/docker.tar" --format cyclonedx --output "$BENCH_DIR/tmp/trivy.cdx.json" \
		--cache-backend memory --cache-dir "$BENCH_DIR/trivy-cache" --offline-scan \
		--skip-db-update --skip-java-db-update --skip-check-update --skip-version-check \
		--disable-telemetry --no-progress --quiet
	log "run $i/$RUNS: mamori scan"
	measure scan-mamori "$BIN/mamori" scan -q --no-cache --db "$DB" -f json -o "$BENCH_DIR/tmp/mamori-scan.json" "docker-archive:$IMAGE/docker.tar"
done

log "matching 10,000 packages"
MATCH=$(cd "$REPO" && go test -run '^$' -bench BenchmarkMatch10k -benchtime "${RUNS}x" -benchmem ./internal/match/ | awk '/^BenchmarkMatch10k/ {print $3/1e9, $7/1048576, $5}')

b_t=$(median db-build 1) b_m=$(median db-build 2)
t_t=$(median scan-trivy 1) t_m=$(median scan-trivy 2)
m_t=$(median scan-mamori 1) m_m=$(median scan-mamori 2)
findings=$(jq '.vulnerabilities | length' "$BENCH_DIR/tmp/mamori-scan.json")
pkgs=$(jq '.inventory.packages | length' "$BENCH_DIR/tmp/mamori-scan.json")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
{
	echo "# Vulnerability benchmarks ($(date -u +%F), median of $RUNS runs, $(nproc) cores)"
	echo
	echo "| task | tool | seconds | peak RSS MiB | time ratio | memory ratio |"
	echo "|---|---|---:|---:|---:|---:|"
	echo "| scan of the benchmark image (Docker archive, $pkgs packages, $findings findings) | trivy, SBOM only | $t_t | $((t_m / 1024)) | 1.00 | 1.00 |"
	echo "| | mamori scan (inventory + matching + JSON) | $m_t | $((m_m / 1024)) | **$(ratio "$m_t" "$t_t")** | **$(ratio "$m_m" "$t_m")** |"
	echo "| db build from all of shared/data | mamori | $b_t | $((b_m / 1024)) | $(ratio "$b_t" "$t_t") of the trivy SBOM run | |"
	read -r mt mm mf <<<"$MATCH"
	echo "| matching 10,000 packages (in-process, fresh caches) | mamori | $mt | alloc $(printf '%.0f' "$mm") MiB | $(ratio "$mt" "$t_t") of the trivy SBOM run | |"
} | tee "$RESULTS"
