#!/usr/bin/env bash
# Builds the helm CLI from its Go module (through the Go module proxy) into
# a cache directory keyed by version, and prints the binary's path. The
# deploy tests (internal/deploytest) look for it there. Idempotent: an
# existing binary that reports the wanted version is kept.
#
#   scripts/build-helm.sh            # builds HELM_VERSION (default below)
#   HELM_VERSION=v3.22.0 scripts/build-helm.sh
set -euo pipefail

version="${HELM_VERSION:-v3.22.0}"
cache="${MAMORI_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mamori-helm}"
dir="$cache/$version"
bin="$dir/helm"

case "$version" in
  v3.*) module="helm.sh/helm/v3" ;;
  v4.*) module="helm.sh/helm/v4" ;;
  *) echo "build-helm: HELM_VERSION must look like v3.x.y or v4.x.y, got $version" >&2; exit 2 ;;
esac

# The stamp records how the binary was built; a change of recipe rebuilds.
recipe="2 $version $(go env GOVERSION)"
if [[ -x $bin && -f $dir/stamp && "$(cat "$dir/stamp")" == "$recipe" ]] && "$bin" version --short 2>/dev/null | grep -q "^${version}"; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# go install module@version builds with helm's own go.mod. The linker flags
# are those of helm's Makefile: the version helm reports, and the
# Kubernetes version "helm template" and "helm lint" assume (one major
# above the client-go module's, as the Makefile computes it).
cd "$work"
gomod="$(GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
kver="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")"
if [[ -z $kver ]]; then
  echo "build-helm: cannot read the client-go version from $gomod" >&2
  exit 1
fi
pkg="helm.sh/helm/${version%%.*}"
ldflags="-s -w -X $pkg/internal/version.version=$version"
for p in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X $pkg/$p.k8sVersionMajor=1 -X $pkg/$p.k8sVersionMinor=$kver"
done
GOFLAGS=-buildvcs=false GOBIN="$work/bin" CGO_ENABLED=0 go install -p "${BUILD_PARALLEL:-1}" -ldflags "$ldflags" "$module/cmd/helm@$version"
install -m 0755 "$work/bin/helm" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$recipe" >"$dir/stamp"
"$bin" version --short >&2
echo "$bin"
