#!/usr/bin/env bash
# build-image.sh builds the benchmark image without any container registry or
# daemon and writes it to $BENCH_DIR/image:
#
#   docker.tar   uncompressed Docker archive (docker save format)
#   oci/         OCI image layout with gzip-compressed layers
#   truth.json   ground truth: what the build installed, per ecosystem
#
# The image has four layers, each built as a directory under
# $BENCH_DIR/build/layers:
#
#   0 base    Debian 12 (bookworm) root filesystem from debootstrap, 500+ packages
#   1 npm     node_modules trees of a few real applications, from the npm registry
#   2 python  Python distributions (dist-info / egg-info) not owned by dpkg
#   3 go      Go binaries built with old module versions
#
# Usage: build-image.sh [all|base|npm|python|go|truth]. "all" (the default)
# does nothing when the image exists; "truth" rewrites truth.json from the
# layer directories.
#
# Every stage leaves a stamp file and is skipped when it is already done, so a
# second run is a no-op and an interrupted run resumes. Delete $BENCH_DIR/build
# and $BENCH_DIR/image to rebuild from scratch.
#
# Needs root (debootstrap, chroot) and the Debian packages debootstrap, nodejs
# and npm, jq, and the Go toolchain. Network: only the Debian mirror, the npm
# registry and the Go module proxy.
#
# Environment:
#   BENCH_DIR  cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench)
#   MIRROR     Debian mirror URI (default: the first bookworm URI configured for apt)
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori-bench}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$BENCH_DIR/build
LAYERS=$BUILD/layers
IMAGE=$BENCH_DIR/image
# All files in the image get this modification time, so a rebuild from the same
# inputs produces the same layer digests.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

log() { printf '[build-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
stamp() { [[ -e $BUILD/$1.done ]]; }
mark() { touch "$BUILD/$1.done"; }

stage=${1:-all}
if [[ $stage == all && -e $IMAGE/docker.tar && -d $IMAGE/oci && -e $IMAGE/truth.json ]]; then
	log "image already built in $IMAGE"
	exit 0
fi
[[ $(id -u) == 0 ]] || die "must run as root (debootstrap needs it)"
for c in debootstrap chroot node npm jq go dpkg-query; do
	command -v "$c" >/dev/null || die "missing command $c (apt-get install -y debootstrap nodejs npm jq)"
done
mkdir -p "$LAYERS" "$IMAGE"

# mirror prints the Debian mirror URI that apt is configured with: the first
# URI serving bookworm (not bookworm-security) in deb822 or one-line sources.
mirror() {
	if [[ -n ${MIRROR:-} ]]; then
		echo "$MIRROR"
		return
	fi
	local f uri suites
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -e $f ]] || continue
		# deb822: stanzas separated by blank lines.
		uri=$(awk -v RS= '/Suites:[^\n]*bookworm([ \n]|$)/ && !/-security/ {
			if (match($0, /URIs:[ \t]*[^ \t\n]+/)) { s = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", s); print s; exit } }' "$f")
		if [[ -n $uri ]]; then
			echo "$uri"
			return
		fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -e $f ]] || continue
		uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' "$f")
		if [[ -n $uri ]]; then
			echo "$uri"
			return
		fi
	done
	die "no bookworm mirror configured in /etc/apt; set MIRROR"
}

# Packages on top of debootstrap's default (required + important) set. Without
# Recommends this resolves to about 550 installed packages and 1.3 GB.
BASE_PACKAGES=(
	python3 python3-pip python3-venv python3-requests python3-yaml python3-numpy
	python3-jinja2 python3-cryptography python3-lxml python3-setuptools
	python3-flask python3-pil
	perl libdbi-perl libwww-perl libdatetime-perl libjson-perl libyaml-perl
	libxml-libxml-perl libdbd-sqlite3-perl
	ruby ruby-dev rake ruby-nokogiri
	build-essential git curl wget ca-certificates openssh-client vim less gnupg
	libssl-dev libxml2-dev zlib1g-dev libpq-dev libsqlite3-dev libffi-dev libyaml-dev
	postgresql-client sqlite3 imagemagick openjdk-17-jre-headless
	unzip zip xz-utils bzip2 procps iproute2 jq rsync make patch file tzdata locales
	libgtk-3-0 graphviz ghostscript fonts-dejavu-core
)

build_base() {
	stamp base && return
	local root=$LAYERS/base uri
	uri=$(mirror)
	log "debootstrap bookworm from $uri (${#BASE_PACKAGES[@]} extra packages)"
	# A previous interrupted run may have left proc or sys mounted.
	umount "$root/proc" "$root/sys" 2>/dev/null || true
	if grep -q " $root/" /proc/mounts; then
		die "something is still mounted under $root; unmount it first"
	fi
	rm -rf "$root"
	# debootstrap's own resolver does not follow virtual packages, so it only
	# lays down the default (required + important) set; apt inside the chroot
	# installs the rest.
	debootstrap --arch=amd64 --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
		bookworm "$root" "$uri" >"$BUILD/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $BUILD/debootstrap.log"
	mount -t proc proc "$root/proc"
	trap 'umount "$root/proc" 2>/dev/null || true' EXIT
	log "apt-get install in the chroot; log in $BUILD/apt.log"
	chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \
		sh -c 'apt-get update && apt-get install -y --no-install-recommends "$@" && apt-get clean' \
		sh "${BASE_PACKAGES[@]}" >"$BUILD/apt.log" 2>&1 ||
		die "apt-get install in the chroot failed; see $BUILD/apt.log"
	umount "$root/proc"
	trap - EXIT
	# Leave what a container image build would leave: no downloaded archives,
	# no apt lists, no logs, no host identity.
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
		"$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/* \
		"$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
	echo bench >"$root/etc/hostname"
	: >"$root/etc/resolv.conf"
	: >"$root/etc/machine-id"
	local n
	n=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${db:Status-Abbrev}\n' | grep -c '^ii')
	log "base layer: $n installed packages"
	((n >= 500)) || die "base layer has only $n packages (want >= 500)"
	mark base
}

# npm applications installed from the committed lock files in bench/npm, so a
# rebuild gets the same versions.
NPM_APPS=(express-app webpack-app)

build_npm() {
	stamp npm && return
	local root=$LAYERS/npm app
	rm -rf "$root"
	for app in "${NPM_APPS[@]}"; do
		log "npm ci for /srv/$app"
		mkdir -p "$root/srv/$app"
		cp "$REPO/bench/npm/$app/package.json" "$REPO/bench/npm/$app/package-lock.json" "$root/srv/$app/"
		(cd "$root/srv/$app" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
			>>"$BUILD/npm.log" 2>&1 || die "npm ci failed for $app; see $BUILD/npm.log"
	done
	mark npm
}

# Python distributions that pip would have installed, written by hand because
# PyPI is not reachable from the build machine. Each entry is
# LAYOUT:DIRECTORY:NAME:VERSION:MODULE where LAYOUT is dist-info (a wheel
# install), egg-info (a setuptools install, directory) or egg-info-file (a
# distutils install, a single PKG-INFO file).
PY_LOCAL=/usr/local/lib/python3.11/dist-packages
PY_VENV=/opt/venv/lib/python3.11/site-packages
PYTHON_DISTS=(
	"dist-info:$PY_LOCAL:Django:2.2.0:django"
	"dist-info:$PY_LOCAL:Flask:1.0:flask"
	"dist-info:$PY_LOCAL:requests:2.19.1:requests"
	"dist-info:$PY_LOCAL:urllib3:1.24.1:urllib3"
	"dist-info:$PY_LOCAL:PyYAML:5.1:yaml"
	"dist-info:$PY_LOCAL:Jinja2:2.10:jinja2"
	"dist-info:$PY_LOCAL:MarkupSafe:1.1.0:markupsafe"
	"dist-info:$PY_LOCAL:Werkzeug:0.14.1:werkzeug"
	"dist-info:$PY_LOCAL:numpy:1.16.0:numpy"
	"dist-info:$PY_LOCAL:Pillow:6.0.0:PIL"
	"dist-info:$PY_LOCAL:cryptography:2.5:cryptography"
	"dist-info:$PY_LOCAL:certifi:2019.3.9:certifi"
	"dist-info:$PY_LOCAL:idna:2.7:idna"
	"dist-info:$PY_LOCAL:chardet:3.0.4:chardet"
	"dist-info:$PY_LOCAL:six:1.12.0:six"
	"dist-info:$PY_LOCAL:python-dateutil:2.8.0:dateutil"
	"dist-info:$PY_LOCAL:typing_extensions:3.7.4:typing_extensions"
	"dist-info:$PY_LOCAL:zope.interface:4.6.0:zope"
	"egg-info:$PY_LOCAL:simplejson:3.16.0:simplejson"
	"egg-info-file:$PY_LOCAL:pycrypto:2.6.1:Crypto"
	"dist-info:$PY_VENV:ansible:2.8.0:ansible"
	"dist-info:$PY_VENV:paramiko:2.4.1:paramiko"
	"dist-info:$PY_VENV:PyJWT:1.7.1:jwt"
	"dist-info:$PY_VENV:Jinja2:2.10.1:jinja2"
)

# py_dirname spells a distribution name the way pip names its dist-info
# directory (runs of -_. become _).
py_dirname() { sed -E 's/[-_.]+/_/g' <<<"$1"; }

build_python() {
	stamp python && return
	local root=$LAYERS/python entry layout dir name version module d meta
	rm -rf "$root"
	log "writing ${#PYTHON_DISTS[@]} Python distributions"
	for entry in "${PYTHON_DISTS[@]}"; do
		IFS=: read -r layout dir name version module <<<"$entry"
		mkdir -p "$root$dir/$module"
		printf '__version__ = "%s"\n' "$version" >"$root$dir/$module/__init__.py"
		meta=$(printf 'Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s (benchmark fixture)\nLicense: BSD\n' \
			"$name" "$version" "$name")
		case $layout in
		dist-info)
			d=$root$dir/$(py_dirname "$name")-$version.dist-info
			mkdir -p "$d"
			printf '%s\n\n%s is a benchmark fixture.\n' "$meta" "$name" >"$d/METADATA"
			echo pip >"$d/INSTALLER"
			printf 'Wheel-Version: 1.0\nGenerator: bdist_wheel (0.33.1)\nRoot-Is-Purelib: true\nTag: py3-none-any\n' >"$d/WHEEL"
			echo "$module" >"$d/top_level.txt"
			{
				echo "$module/__init__.py,,"
				for f in METADATA INSTALLER WHEEL top_level.txt RECORD; do
					echo "${d#"$root$dir/"}/$f,,"
				done
			} >"$d/RECORD"
			;;
		egg-info)
			d=$root$dir/$(py_dirname "$name")-$version-py3.11.egg-info
			mkdir -p "$d"
			printf '%s\n' "$meta" >"$d/PKG-INFO"
			echo "$module" >"$d/top_level.txt"
			printf '%s/__init__.py\n' "$module" >"$d/SOURCES.txt"
			;;
		egg-info-file)
			printf '%s\n' "${meta/Metadata-Version: 2.1/Metadata-Version: 1.0}" \
				>"$root$dir/$(py_dirname "$name")-$version.egg-info"
			;;
		*) die "bad PYTHON_DISTS entry $entry" ;;
		esac
	done
	mark python
}

# Go programs built with old module versions. Each entry is
# NAME:LDFLAGS:IMPORTS:MODULES where MODULES are the path@version pairs given to
# "go get" (space separated) and IMPORTS the packages main.go uses.
GO_PROGRAMS=(
	"bench-gin::github.com/gin-gonic/gin:github.com/gin-gonic/gin@v1.6.0"
	"bench-yaml:-s -w:golang.org/x/text/language gopkg.in/yaml.v2:golang.org/x/text@v0.3.0 gopkg.in/yaml.v2@v2.2.1"
	"bench-jwt::github.com/dgrijalva/jwt-go github.com/sirupsen/logrus:github.com/dgrijalva/jwt-go@v3.2.0+incompatible github.com/sirupsen/logrus@v1.4.0"
)

build_go() {
	stamp go && return
	local root=$LAYERS/go entry prog ldflags imports modules work pkg
	rm -rf "$root"
	mkdir -p "$root/usr/local/bin"
	for entry in "${GO_PROGRAMS[@]}"; do
		IFS=: read -r prog ldflags imports modules <<<"$entry"
		log "go build $prog ($modules)"
		work=$BUILD/go/$prog
		rm -rf "$work"
		mkdir -p "$work"
		{
			echo "// Command $prog is a benchmark fixture that links old module versions."
			echo "package main"
			echo
			echo "import ("
			echo '	"fmt"'
			echo
			for pkg in $imports; do echo "	_ \"$pkg\""; done
			echo ")"
			echo
			echo "func main() { fmt.Println(\"$prog\") }"
		} >"$work/main.go"
		# Blank imports are enough to link the packages' init code, which is
		# what puts the modules into the binary's build information.
		(
			cd "$work" &&
				go mod init "example.com/mamori-bench/$prog" &&
				go get $modules &&
				go mod tidy &&
				CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="$ldflags" \
					-o "$root/usr/local/bin/$prog" .
		) >>"$BUILD/go.log" 2>&1 || die "building $prog failed; see $BUILD/go.log"
	done
	mark go
}

# build_truth writes truth.json: every package the build put into the image,
# read from the layer directories with the ecosystems' own tools where they
# exist (dpkg-query, go version -m).
build_truth() {
	local out=$IMAGE/truth.json rows=$BUILD/truth.jsonl base=$LAYERS/base
	: >"$rows"
	# deb: installed packages of the dpkg database.
	dpkg-query --admindir="$base/var/lib/dpkg" -W \
		-f '${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n' |
		awk -F'\t' '$1 ~ /^ii/' |
		jq -R -c 'split("\t") | {type: "deb", name: .[1], version: .[2], arch: .[3],
			sourceName: .[4], sourceVersion: .[5], path: "/var/lib/dpkg/status", layer: 0}' >>"$rows"
	# npm: every package directory directly under a node_modules directory.
	(cd "$LAYERS/npm" && find . -path '*/node_modules/*/package.json' | LC_ALL=C sort |
		grep -E '/node_modules/(@[^/]+/)?[^/@][^/]*/package\.json$' |
		while read -r f; do
			jq -c --arg p "${f#.}" '{type: "npm", name: .name, version: .version, path: $p, layer: 1}' "$f"
		done) >>"$rows"
	# pypi: every dist-info / egg-info in the image; gem: every installed
	# gemspec. Those a Debian package installed carry the owning package.
	local layer dir meta
	for layer in base python; do
		(cd "$LAYERS/$layer" && find . \( -name '*.dist-info' -o -name '*.egg-info' \) \
			-path '*/python3*' | LC_ALL=C sort) | while read -r dir; do
			dir=${dir#.}
			meta=$LAYERS/$layer$dir
			if [[ -d $meta ]]; then
				if [[ -e $meta/METADATA ]]; then meta=$meta/METADATA; else meta=$meta/PKG-INFO; fi
			fi
			[[ -f $meta ]] || continue
			awk -F': ' '/^$/ {exit} $1 == "Name" && !n {n = $2} $1 == "Version" && !v {v = $2}
				END {print n "\t" v}' "$meta" |
				jq -R -c --arg p "${meta#"$LAYERS/$layer"}" --arg d "$dir" \
					--argjson l "$([[ $layer == base ]] && echo 0 || echo 2)" \
					'split("\t") | {type: "pypi", name: .[0], version: .[1], path: $p, layer: $l, dir: $d}'
		done
	done >>"$rows"
	(cd "$base" && find . -path '*/specifications/*' -name '*.gemspec' | LC_ALL=C sort) |
		sed -E 's|^\.||; s|^(.*/)?([^/]+)-([0-9][^-/]*)\.gemspec$|\2\t\3\t&|' |
		jq -R -c 'split("\t") | {type: "gem", name: .[0], version: .[1], path: .[2], layer: 0, dir: .[2]}' >>"$rows"
	# Owners: one pass over dpkg's file lists for the paths recorded as "dir".
	jq -r 'select(.dir) | .dir' "$rows" >"$BUILD/owned.txt"
	awk 'FNR == NR {want[$0] = 1; next} ($0 in want) {f = FILENAME; sub(/.*\//, "", f); sub(/(:[^:]*)?\.list$/, "", f); print $0 "\t" f}' \
		"$BUILD/owned.txt" "$base"/var/lib/dpkg/info/*.list >"$BUILD/owners.tsv"
	jq -c --rawfile owners "$BUILD/owners.tsv" '
		($owners | split("\n") | map(select(. != "") | split("\t") | {key: .[0], value: .[1]}) | from_entries) as $o
		| if .dir then (if $o[.dir] then .ownedBy = "deb:" + $o[.dir] else . end) | del(.dir) else . end' \
		"$rows" >"$rows.tmp"
	mv "$rows.tmp" "$rows"
	# golang: the modules in each binary's build information.
	local bin
	for bin in "$LAYERS"/go/usr/local/bin/*; do
		go version -m "$bin" | awk -F'\t' -v p="/usr/local/bin/${bin##*/}" '
			$2 == "mod" {print "main\t" $3 "\t" $4 "\t" p}
			$2 == "dep" {print "dep\t" $3 "\t" $4 "\t" p}
			$2 == "=>" {print "replace\t" $3 "\t" $4 "\t" p}' |
			jq -R -c 'split("\t") | {type: "golang", name: .[1], version: .[2], path: .[3], layer: 3}
				+ (if .[0] == "main" then {main: true} elif .[0] == "replace" then {replacement: true} else {} end)'
	done >>"$rows"
	jq -s --arg go "$(go env GOVERSION)" '{
		description: "Ground truth of the mamori benchmark image: what bench/build-image.sh installed.",
		os: {id: "debian", versionID: "12"},
		goVersion: $go,
		layers: ["base: debootstrap", "npm", "python", "go"],
		counts: (group_by(.type) | map({key: .[0].type, value: length}) | from_entries),
		packages: .
	}' "$rows" >"$out.tmp"
	mv "$out.tmp" "$out"
	log "ground truth: $(jq -c .counts "$out")"
}

build_image() {
	log "assembling the image"
	go build -C "$REPO" -o "$BUILD/mkimage" ./bench/cmd/mkimage
	"$BUILD/mkimage" -tar-dir "$BUILD/tars" -docker "$IMAGE/docker.tar" -oci "$IMAGE/oci" \
		-layer "$LAYERS/base=debootstrap --arch=amd64 bookworm && apt-get install --no-install-recommends ${BASE_PACKAGES[*]}" \
		-layer "$LAYERS/npm=npm ci in /srv/{$(IFS=,; echo "${NPM_APPS[*]}")}" \
		-layer "$LAYERS/python=pip install (${#PYTHON_DISTS[@]} distributions, hand-written metadata)" \
		-layer "$LAYERS/go=go build ${GO_PROGRAMS[*]%%:*} into /usr/local/bin"
	# The tars are only intermediate: the archive and the layout hold copies.
	rm -rf "$BUILD/tars"
}

case $stage in
base) build_base ;;
npm) build_npm ;;
python) build_python ;;
go) build_go ;;
truth) build_truth ;;
all)
	build_base
	build_npm
	build_python
	build_go
	build_truth
	build_image
	log "done: $IMAGE"
	;;
*) die "unknown stage $stage (base, npm, python, go, truth or all)" ;;
esac
