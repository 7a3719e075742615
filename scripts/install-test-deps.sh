#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine and
# starts the services the tests use. Idempotent; needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  docker.io          # real Docker Engine for the docker: image source
  docker-registry    # real OCI registry (distribution) for registry tests
  apache2-utils      # htpasswd for the registry's basic auth
  rpm                # rpmbuild + rpm to make real sqlite rpmdbs
  ruby               # real installed gemspecs
  python3 python3-pip python3-six  # real dist-info and egg-info trees
  libcommons-lang3-java libcommons-io-java  # real jars with pom.properties
  default-jdk-headless # javac/jar to build test jars
  binutils           # objcopy for cargo-auditable test binaries
  nodejs npm         # npm client builds real node_modules trees
  isal pigz zstd     # inflaters compared by the layer decompressor; zstd bundles
  tar                # GNU tar reads and writes offline DB bundles in tests
  debootstrap        # real Debian 12 root filesystems for the matcher tests
  time               # peak RSS in benchmarks
  jq                 # benchmark scripts read JSON reports
  argon2             # reference argon2 CLI cross-checks the password hashing
  postgresql         # real PostgreSQL for the store tests (scripts/start-postgres.sh runs a private cluster)
  slapd ldap-utils   # real OpenLDAP for the LDAP login tests (started by the tests, never as a service)
  chromium           # headless browser for the web console end-to-end tests (chromedp)
  fonts-noto-cjk     # Japanese glyphs in the console screenshots
  clamav-daemon      # real clamd for the ClamAV engine (started by the tests, never as a service)
  busybox-static     # the static busybox that test container images are made of (testenv.BusyboxImage)
  containerd runc containernetworking-plugins  # a private containerd with its CRI plugin for the CRI discovery tests
  iproute2 util-linux  # ip netns / veth for the multi-host fleet tests; nsenter
  linux-libc-dev     # the kernel's syscall table, checked against the committed seccomp table
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node and npm may come from outside Debian on some machines; only install
# them from apt when the commands are absent.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
# The JDK may already be present outside Debian's packaging.
if command -v javac >/dev/null && command -v jar >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == default-jdk-headless ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Keep package scripts from starting services (freshclam would try to reach
  # the internet); the tests start what they need themselves.
  guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [[ -z $guard ]] || rm -f /usr/sbin/policy-rc.d
fi

# Go tools used by the lint step.
STATICCHECK_VERSION=v0.8.2
if ! command -v staticcheck >/dev/null || ! staticcheck -version | grep -q "${STATICCHECK_VERSION#v}"; then
  GOBIN=/usr/local/bin go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi

scripts/fetch-schemas.sh
scripts/fetch-sarif-tools.sh
# Peers for the vulnerability parity test (bench/parity) and the secret
# scanner comparison (bench/secretcmp), built from the Go module proxy into
# ~/.cache/mamori-bench/bin (trivy takes several minutes the first time).
bench/build-peers.sh osv-scanner govulncheck trivy
# The Debian 12 root filesystem with 500+ packages that the secret and
# malware engines must scan without a false positive (debootstrap, cached).
bench/build-image.sh base
scripts/start-dockerd.sh
# kube-apiserver, etcd and kubectl built from the Go module proxy (cached
# by version; the first build takes 10 to 30 minutes on 2 cores), and the
# helm CLI for the chart tests.
scripts/build-kube.sh
scripts/build-helm.sh
