#!/usr/bin/env bash
# content.sh times a whole `mamori scan` (vulnerabilities, secrets, malware,
# licenses and misconfigurations in one pass, no cache) against trivy doing
# the analyses it has for an image archive offline (secrets, licenses and
# the image-config misconfiguration and secret checks), on the benchmark
# image. Both run RUNS times under GNU time without network.
#
# Environment: BENCH_DIR (default ~/.cache/mamori-bench), RUNS (default 3),
# MAMORI (default: built from this checkout).
set -euo pipefail
export BENCH_DIR=${BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench}
RUNS=${RUNS:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$BENCH_DIR/bin
IMAGE=$BENCH_DIR/image/docker.tar
[[ -f $IMAGE && -x $BIN/trivy ]] || { echo "content.sh: run bench/build-image.sh and bench/build-peers.sh trivy first" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [[ -z ${MAMORI:-} ]]; then
	MAMORI=$TMP/mamori
	go build -C "$REPO" -o "$MAMORI" ./cmd/mamori
fi
"$MAMORI" db build -o "$TMP/mamori.db" "$REPO/../shared/data/osv" "$REPO/../shared/data/alpine-secdb" >/dev/null 2>&1 ||
	"$MAMORI" db build -o "$TMP/mamori.db" "$(cd "$REPO/internal/demo/feed" && pwd)" >/dev/null
NONET=(unshare --net --)
unshare --net -- true 2>/dev/null || NONET=()

run() { # run ID CMD...: prints "wall cpu rss-MiB"
	local id=$1
	shift
	"${NONET[@]}" /usr/bin/time -f '%e %U %S %M' -o "$TMP/$id.time" "$@" >"$TMP/$id.json" 2>"$TMP/$id.log" || {
		tail -20 "$TMP/$id.log" >&2
		exit 1
	}
	awk '{printf "%s %.2f %.0f\n", $1, $2 + $3, $4 / 1024}' "$TMP/$id.time"
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

: >"$TMP/trivy.all"
: >"$TMP/mamori.all"
for ((i = 1; i <= RUNS; i++)); do
	run trivy "$BIN/trivy" image --input "$IMAGE" --scanners secret,license --image-config-scanners misconfig,secret \
		--format json --offline-scan --skip-db-update --skip-java-db-update --skip-check-update \
		--cache-backend memory --cache-dir "$TMP/trivy-cache" --quiet >>"$TMP/trivy.all"
	run mamori "$MAMORI" scan -q --no-cache --db "$TMP/mamori.db" --db-max-age 87600h -f json "$IMAGE" >>"$TMP/mamori.all"
done
for t in trivy mamori; do
	w=$(cut -d' ' -f1 "$TMP/$t.all" | median)
	r=$(cut -d' ' -f3 "$TMP/$t.all" | sort -n | tail -1)
	echo "$t $w $r"
done >"$TMP/summary"
read -r _ tw tr < <(grep '^trivy' "$TMP/summary")
read -r _ mw mr < <(grep '^mamori' "$TMP/summary")
echo "Whole-image scan of $IMAGE, $(nproc) cores, median of $RUNS runs:"
echo
echo "| tool | analyses | wall s | peak RSS MiB |"
echo "|---|---|---:|---:|"
echo "| trivy | secret, license, image-config misconfig+secret | $tw | $tr |"
echo "| mamori | vuln, secret, malware, license, misconfig | $mw | $mr |"
awk -v a="$mw" -v b="$tw" -v c="$mr" -v d="$tr" 'BEGIN {printf "\nmamori / trivy: wall %.2f, RSS %.2f\n", a / b, c / d}'
jq -r '"mamori found: \(.vulnerabilities | length) vulnerabilities, \(.secrets // [] | length) secrets, \(.malware // [] | length) malware, \(.misconfigurations // [] | length) misconfigurations, licenses for \(.licenses.summary.withLicense) of \(.licenses.summary.packages) packages"' "$TMP/mamori.json"
