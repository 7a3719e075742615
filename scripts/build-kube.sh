#!/usr/bin/env bash
# build-kube.sh builds kube-apiserver, kubectl and etcd from the Go module
# proxy into a cache keyed by version, for the kube-enforcer tests
# (internal/testenv.KubeAPIServer) and for controller-runtime's envtest
# (KUBEBUILDER_ASSETS=<cache>/bin).
#
#   scripts/build-kube.sh            # build v1.37.2 (skipped when cached)
#   KUBE_VERSION=v1.36.3 scripts/build-kube.sh
#
# Output: ${MAMORI_KUBE_CACHE:-~/.cache/mamori-kube}/<version>/bin/{kube-apiserver,kubectl,etcd}
#
# The binaries are built in a throwaway module under the cache directory that
# requires k8s.io/kubernetes and replaces every k8s.io/* staging module with
# its matching v0.X.Y tag (kubernetes' own go.mod points them at
# ./staging/src/..., which does not exist outside its repository). etcd is
# built from go.etcd.io/etcd/server/v3 at the version kubernetes requires.
# Only the Go module proxy is needed. With 2 cores a cold build takes
# 10-20 minutes.
set -euo pipefail

version="${KUBE_VERSION:-v1.37.2}"
cache="${MAMORI_KUBE_CACHE:-${HOME}/.cache/mamori-kube}"
dir="${cache}/${version}"
bin="${dir}/bin"

report() {
	echo "kube binaries in ${bin}:"
	"${bin}/kube-apiserver" --version
	# sed reads everything (head could close the pipe early, and the
	# writer's SIGPIPE would fail this script under pipefail).
	"${bin}/kubectl" version --client 2>/dev/null | sed -n 1p
	"${bin}/etcd" --version | sed -n 1p
}

if [[ -x "${bin}/kube-apiserver" && -x "${bin}/kubectl" && -x "${bin}/etcd" ]]; then
	report
	exit 0
fi

command -v go >/dev/null || { echo "build-kube.sh: go not found in PATH" >&2; exit 1; }

mod="${dir}/mod"
mkdir -p "${mod}/etcd" "${bin}"
export GOFLAGS=-mod=mod
export GOWORK=off
export CGO_ENABLED=0

# kubernetes' go.mod, fetched through the module proxy.
k8smod="$(cd "${mod}" && go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[[ -f "${k8smod}" ]] || { echo "build-kube.sh: cannot download go.mod of k8s.io/kubernetes@${version}" >&2; exit 1; }

# Staging modules: the k8s.io/* paths kubernetes replaces with ./staging/...
# and also requires (sample-* modules are replaced but never required and
# have no published tags).
staging_tag="v0.${version#v1.}"
mapfile -t staging < <(awk '/=> \.\/staging\/src\// {print $1}' "${k8smod}" | sort -u)
mapfile -t required < <(awk '/^require \(/{r=1;next} r&&/^\)/{r=0} r{print $1} /^require [^(]/{print $2}' "${k8smod}" | sort -u)
etcd_version="$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "${k8smod}")"
[[ -n "${etcd_version}" ]] || { echo "build-kube.sh: ${k8smod} does not require go.etcd.io/etcd/server/v3" >&2; exit 1; }
go_directive="$(awk '$1=="go"{print $2; exit}' "${k8smod}")"

{
	echo "module mamori.local/kubebuild"
	echo
	echo "go ${go_directive}"
	echo
	echo "godebug default=go1.26"
	echo
	echo "require k8s.io/kubernetes ${version}"
	echo "require go.etcd.io/etcd/server/v3 ${etcd_version}"
	echo
	echo "replace ("
	for m in "${staging[@]}"; do
		if printf '%s\n' "${required[@]}" | grep -qx "${m}"; then
			echo "	${m} => ${m} ${staging_tag}"
		fi
	done
	echo ")"
} >"${mod}/go.mod"

cat >"${mod}/tools.go" <<'EOF'
//go:build tools

// Package tools pins the commands built by scripts/build-kube.sh.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF

cat >"${mod}/etcd/main.go" <<'EOF'
// Command etcd runs the etcd server (go.etcd.io/etcd/server/v3/etcdmain).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF

cd "${mod}"
start=$(date +%s)
# k8s.io/component-base/version is stamped the way kubernetes' own build does,
# so kube-apiserver --version and discovery report the real version.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "${version}" | cut -d. -f2) -X k8s.io/client-go/pkg/version.gitVersion=${version} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$(echo "${version}" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
echo "build-kube.sh: building kube-apiserver, kubectl ${version} and etcd ${etcd_version} in ${mod}"
go build -trimpath -ldflags "${ldflags}" -o "${bin}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "${ldflags}" -o "${bin}/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "-s -w" -o "${bin}/etcd.tmp" ./etcd
for b in kube-apiserver kubectl etcd; do mv "${bin}/${b}.tmp" "${bin}/${b}"; done
echo "build-kube.sh: built in $(( $(date +%s) - start ))s"
report
