#!/usr/bin/env bash
# secrets.sh times mamori's secret scanner against trivy's on the benchmark
# image (the uncompressed Docker archive that bench/build-image.sh builds):
#
#   bench/secrets.sh
#
# Both tools scan for secrets only, offline, without a cache, RUNS times
# each under GNU time; the table gives the median wall time, the median CPU
# time (user + system) and the largest peak RSS, and the ratio to trivy.
# The goal is mamori's wall time at most 0.5 × trivy's. Reports go to
# $BENCH_DIR/out/secrets.
#
# Environment:
#   BENCH_DIR  cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench)
#   RUNS       timed runs per tool (default 3)
#   MAMORI     mamori binary (default: built from this checkout into $BENCH_DIR/bin)
#   OUT        report directory (default $BENCH_DIR/out/secrets)
set -euo pipefail

export BENCH_DIR=${BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench}
RUNS=${RUNS:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${MAMORI_PEERS:-$BENCH_DIR/bin}
IMAGE=$BENCH_DIR/image/docker.tar
OUT=${OUT:-$BENCH_DIR/out/secrets}
TIMES=$OUT/times

log() { printf '[secrets] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x /usr/bin/time ]] || die "GNU time is needed (apt-get install -y time)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS=$RUNS is not a positive number"
[[ -f $IMAGE ]] || die "no benchmark image $IMAGE (run bench/build-image.sh)"
[[ -x $BIN/trivy ]] || die "no trivy in $BIN (run bench/build-peers.sh)"
if [[ -z ${MAMORI:-} ]]; then
	MAMORI=$BIN/mamori
	log "building mamori"
	go build -C "$REPO" -o "$MAMORI" ./cmd/mamori
fi
"$MAMORI" scan --help 2>&1 | grep -q -- '--scanners' || die "$MAMORI has no --scanners flag"

mkdir -p "$OUT" "$TIMES"
rm -f "$TIMES"/*
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Tools run without network when a network namespace can be made.
NONET=(unshare --net --)
if ! unshare --net -- true 2>/dev/null; then
	log "warning: cannot create a network namespace; running tools with the host network"
	NONET=()
fi

# measure ID CMD... runs CMD once under GNU time and appends
# "wall-seconds cpu-seconds max-rss-KiB" to $TIMES/ID.
measure() {
	local id=$1
	shift
	local t=$TMP/$id.time
	if ! "${NONET[@]}" /usr/bin/time -f '%e %U %S %M' -o "$t" "$@" >"$OUT/$id.json" 2>"$OUT/$id.log"; then
		tail -20 "$OUT/$id.log" >&2
		die "$id failed: $*"
	fi
	tail -1 "$t" | awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' >>"$TIMES/$id"
}

for ((i = 1; i <= RUNS; i++)); do
	log "run $i/$RUNS: trivy"
	measure trivy "$BIN/trivy" image --input "$IMAGE" --scanners secret --format json \
		--offline-scan --skip-db-update --skip-java-db-update --cache-backend memory \
		--cache-dir "$TMP/trivy-cache" --secret-config "$TMP/no-custom-rules.yaml" --quiet
	log "run $i/$RUNS: mamori"
	measure mamori "$MAMORI" scan --scanners secret --format json --no-cache "$IMAGE"
done

# summary ID prints "median-wall median-cpu max-MiB" of ID's runs.
summary() {
	awk '{w[NR] = $1; c[NR] = $2; if ($3 > m) m = $3}
		function med(a, n,   i, j, t) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		END {printf "%.2f %.2f %.0f\n", med(w, NR), med(c, NR), m / 1024}' "$TIMES/$1"
}

# ratio A B prints A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else printf "–"}'; }

read -r tw tc tm <<<"$(summary trivy)"
read -r mw mc mm <<<"$(summary mamori)"
secrets() { jq '[.. | objects | select(has("ruleID") or has("RuleID"))] | length' "$OUT/$1.json" 2>/dev/null || echo "?"; }
echo "Secret scan of $IMAGE ($(($(stat -c %s "$IMAGE") >> 20)) MiB), $(nproc) cores, median of $RUNS runs:"
echo
echo "| tool | wall s | CPU s | peak RSS MiB | findings | wall / trivy | RSS / trivy |"
echo "|---|---:|---:|---:|---:|---:|---:|"
echo "| trivy | $tw | $tc | $tm | $(secrets trivy) | 1.00 | 1.00 |"
echo "| mamori | $mw | $mc | $mm | $(secrets mamori) | $(ratio "$mw" "$tw") | $(ratio "$mm" "$tm") |"
echo
echo "Goal: mamori wall time ≤ 0.50 × trivy's (now $(ratio "$mw" "$tw"))."
