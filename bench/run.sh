#!/usr/bin/env bash
# run.sh benchmarks mamori's image inventory against trivy and syft on the
# benchmark image, and checks every tool's answer against the image's ground
# truth. It builds whatever is missing first (peers, image, mamori), so one
# command does everything:
#
#   sudo bench/run.sh
#
# Every tool runs RUNS times on each image form (uncompressed Docker archive,
# OCI layout with gzip layers) under /usr/bin/time in a network namespace with
# no network; the table reports the median wall time and the largest peak RSS.
# For scale, it also times gzip, pigz and igzip inflating the largest gzip
# layer. Results go to stdout and to $BENCH_DIR/results.md; SBOMs to
# $BENCH_DIR/out.
#
# Environment:
#   BENCH_DIR  cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench)
#   RUNS       timed runs per tool and image form (default 3)
#   TOOLS      tools to run (default "trivy syft mamori")
set -euo pipefail

export BENCH_DIR=${BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench}
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-trivy syft mamori}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$BENCH_DIR/bin
IMAGE=$BENCH_DIR/image
OUT=$BENCH_DIR/out
RESULTS=$BENCH_DIR/results.md

log() { printf '[run] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

[[ -x /usr/bin/time ]] || die "GNU time is needed (apt-get install -y time)"
for c in gzip pigz igzip sqlite3; do
	command -v "$c" >/dev/null || die "missing $c (apt-get install -y gzip pigz isal sqlite3)"
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS=$RUNS is not a positive number"

"$REPO/bench/build-peers.sh"
"$REPO/bench/build-image.sh"
if has_tool mamori; then
	log "building mamori"
	go build -C "$REPO" -o "$BIN/mamori" ./cmd/mamori
fi
go build -C "$REPO" -o "$BIN/accuracy" ./bench/cmd/accuracy

# Scanners run without network: a fresh network namespace has only a loopback
# interface, and it is down.
NONET=(unshare --net --)
if ! unshare --net -- true 2>/dev/null; then
	log "warning: cannot create a network namespace; running tools with the host network"
	NONET=()
fi

# trivy refuses to identify JAR files without its Java DB (the Maven SHA-1
# index it normally downloads from a container registry), even with
# --offline-scan. An empty database with the same schema stands in: trivy then
# names JARs from their own pom.properties and manifests only, which costs it
# less time than a real lookup would.
JAVA_DB=$BENCH_DIR/trivy-cache/java-db
if [[ ! -e $JAVA_DB/metadata.json ]]; then
	log "creating an empty trivy Java DB in $JAVA_DB"
	mkdir -p "$JAVA_DB"
	rm -f "$JAVA_DB/trivy-java.db"
	sqlite3 "$JAVA_DB/trivy-java.db" <<-'SQL'
		CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT);
		CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT,
			foreign key (artifact_id) references artifacts(id));
		CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id);
		CREATE INDEX indices_artifact_idx ON indices(artifact_id);
		CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1);
	SQL
	echo '{"Version":1,"NextUpdate":"2100-01-01T00:00:00Z","UpdatedAt":"2024-01-01T00:00:00Z","DownloadedAt":"2024-01-01T00:00:00Z"}' \
		>"$JAVA_DB/metadata.json"
fi

mkdir -p "$OUT" "$BENCH_DIR/tmp"
TIMES=$BENCH_DIR/times
rm -rf "$TIMES"
mkdir -p "$TIMES"
# Tools put their scratch files here, not in a shared /tmp.
export TMPDIR=$BENCH_DIR/tmp
# syft: no update check over the network.
export SYFT_CHECK_FOR_APP_UPDATE=false

# measure ID CMD... runs CMD once under GNU time and appends "seconds KiB" to
# $TIMES/ID. A failing command aborts the benchmark with its output.
measure() {
	local id=$1
	shift
	local t=$TIMES/$id.last
	if ! "${NONET[@]}" /usr/bin/time -f '%e %M' -o "$t" "$@" >"$TIMES/$id.log" 2>&1; then
		tail -20 "$TIMES/$id.log" >&2
		die "$id failed: $*"
	fi
	tail -1 "$t" >>"$TIMES/$id"
}

# scan TOOL FORM TARGET SBOM [ARGS...] runs one scanner once.
scan() {
	local tool=$1 form=$2 target=$3 sbom=$4
	shift 4
	case $tool in
	trivy)
		measure "$form-trivy" "$BIN/trivy" image --input "$target" --format cyclonedx --output "$sbom" \
			--cache-backend memory --cache-dir "$BENCH_DIR/trivy-cache" --offline-scan \
			--skip-db-update --skip-java-db-update --skip-check-update --skip-version-check \
			--disable-telemetry --no-progress --quiet
		;;
	syft)
		local scheme=docker-archive
		[[ $form == oci ]] && scheme=oci-dir
		measure "$form-syft" "$BIN/syft" scan "$scheme:$target" -o "cyclonedx-json=$sbom" --quiet
		;;
	mamori)
		local ref=$target
		[[ $form == oci ]] && ref=oci-layout:$target
		measure "$form-mamori$1" "$BIN/mamori" sbom "$ref" --format cyclonedx -o "$sbom" "${@:2}"
		;;
	esac
}

declare -A TARGET=([docker]=$IMAGE/docker.tar [oci]=$IMAGE/oci)
declare -A LABEL=([docker]="Docker archive (uncompressed)" [oci]="OCI layout (gzip)")
FORMS=(docker oci)

# Warm the page cache so the first timed run is not the only one reading
# from disk.
cat "$IMAGE/docker.tar" "$IMAGE"/oci/blobs/sha256/* >/dev/null

for form in "${FORMS[@]}"; do
	target=${TARGET[$form]}
	mkdir -p "$OUT/$form"
	for ((i = 1; i <= RUNS; i++)); do
		for tool in $TOOLS; do
			log "$form run $i/$RUNS: $tool"
			if [[ $tool == mamori ]]; then
				# First scan: an empty per-layer cache, which it fills.
				rm -rf "$BENCH_DIR/mamori-cache"
				scan mamori "$form" "$target" "$OUT/$form/mamori.cdx.json" "" --cache-dir "$BENCH_DIR/mamori-cache"
				# Rescan: every layer was seen before.
				log "$form run $i/$RUNS: mamori rescan"
				scan mamori "$form" "$target" "$OUT/$form/mamori-rescan.cdx.json" "-rescan" --cache-dir "$BENCH_DIR/mamori-cache"
			else
				scan "$tool" "$form" "$target" "$OUT/$form/$tool.cdx.json"
			fi
		done
	done
done

# Inflate the largest gzip layer with each decompressor.
LAYER=$(ls -S "$IMAGE"/oci/blobs/sha256/* | head -1)
LAYER_GZ=$(stat -c %s "$LAYER")
LAYER_RAW=$(gzip -dc "$LAYER" | wc -c)
for ((i = 1; i <= RUNS; i++)); do
	for z in gzip pigz igzip; do
		log "inflate run $i/$RUNS: $z"
		measure "inflate-$z" sh -c '"$0" -dc "$1" >/dev/null' "$z" "$LAYER"
	done
done

# summary ID prints "median-seconds max-MiB" of the runs recorded for ID.
summary() {
	sort -n -k1,1 "$TIMES/$1" | awk '{s[NR] = $1; if ($2 > m) m = $2}
		END {med = (NR % 2) ? s[(NR + 1) / 2] : (s[NR / 2] + s[NR / 2 + 1]) / 2; printf "%.2f %.0f\n", med, m / 1024}'
}

# ratio A B prints A/B with two decimals, or – when B is missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0 && a != "") printf "%.2f", a / b; else printf "–"}'; }

{
	echo "## Results"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo);" \
		"median of $RUNS runs; RSS is the largest of them. Image: $(jq -r '.counts | to_entries | map("\(.value) \(.key)") | join(", ")' "$IMAGE/truth.json");" \
		"Docker archive $(($(stat -c %s "$IMAGE/docker.tar") >> 20)) MiB, OCI layout $(($(du -sb "$IMAGE/oci" | cut -f1) >> 20)) MiB."
	echo
	echo "| image form | tool | wall s | peak RSS MiB | wall / trivy | RSS / trivy |"
	echo "|---|---|---:|---:|---:|---:|"
	for form in "${FORMS[@]}"; do
		ref=""
		[[ -e $TIMES/$form-trivy ]] && ref=$(summary "$form-trivy")
		for id in trivy syft mamori mamori-rescan; do
			[[ -e $TIMES/$form-$id ]] || continue
			read -r s m <<<"$(summary "$form-$id")"
			label=$id
			[[ $id == mamori ]] && label="mamori (first scan)"
			[[ $id == mamori-rescan ]] && label="mamori (rescan, warm layer cache)"
			echo "| ${LABEL[$form]} | $label | $s | $m | $(ratio "$s" "${ref% *}") | $(ratio "$m" "${ref#* }") |"
		done
	done
	echo
	for form in "${FORMS[@]}"; do
		[[ -e $TIMES/$form-mamori-rescan ]] || continue
		read -r s1 _ <<<"$(summary "$form-mamori")"
		read -r s2 _ <<<"$(summary "$form-mamori-rescan")"
		echo "mamori rescan / first scan, ${LABEL[$form]}: $(ratio "$s2" "$s1") (goal ≤ 0.10)."
		echo
	done
	echo "Inflating the largest gzip layer ($((LAYER_GZ >> 20)) MiB compressed, $((LAYER_RAW >> 20)) MiB uncompressed) to /dev/null:"
	echo
	echo "| command | wall s | MiB/s (uncompressed) |"
	echo "|---|---:|---:|"
	for z in gzip pigz igzip; do
		read -r s _ <<<"$(summary "inflate-$z")"
		echo "| \`$z -dc\` | $s | $(awk -v b="$LAYER_RAW" -v s="$s" 'BEGIN {if (s > 0) printf "%.0f", b / 1048576 / s; else print "–"}') |"
	done
	echo
	echo "## Accuracy"
	echo
	for form in "${FORMS[@]}"; do
		echo "### ${LABEL[$form]}"
		echo
		args=()
		for tool in $TOOLS; do args+=("$tool=$OUT/$form/$tool.cdx.json"); done
		"$BIN/accuracy" -truth "$IMAGE/truth.json" -require "" "${args[@]}"
		echo
	done
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
cat "$RESULTS"

# Fail when mamori missed part of the ground truth.
if has_tool mamori; then
	for form in "${FORMS[@]}"; do
		"$BIN/accuracy" -truth "$IMAGE/truth.json" -require mamori "mamori=$OUT/$form/mamori.cdx.json" >/dev/null
	done
fi
