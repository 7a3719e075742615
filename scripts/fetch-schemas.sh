#!/usr/bin/env bash
# Puts the official SPDX 2.3 JSON schema under .cache/schemas/ for the SBOM
# encoder tests (internal/sbom). No schema file is committed: the schema comes
# from a pinned Go module (the Syft module ships an unmodified copy of the
# spdx-spec v2.3 schema), fetched through the Go module proxy and checked
# against a pinned SHA-256. The CycloneDX 1.6 schemas need no fetching: the
# tests read them in place from the cyclonedx-go module that go.mod requires.
# Idempotent; works offline once the module is in the module cache.
set -euo pipefail
cd "$(dirname "$0")/.."

MODULE=github.com/anchore/syft
VERSION=v1.57.0
FILE=schema/spdx-json/spdx-schema-2.3.json
SHA256=c2e139546ef93597d3b1214d1d452369d0b536af6c6d6500dbd25c582034aa7c
DEST=.cache/schemas/spdx-schema-2.3.json

if [[ -f $DEST ]] && echo "$SHA256  $DEST" | sha256sum -c --status; then
  exit 0
fi

# Download outside this module so go.mod and go.sum stay untouched.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=$(cd "$tmp" && GOFLAGS= GO111MODULE=on go mod download -json "$MODULE@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [[ -z $dir || ! -f $dir/$FILE ]]; then
  echo "fetch-schemas: $MODULE@$VERSION has no $FILE" >&2
  exit 1
fi

mkdir -p "$(dirname "$DEST")"
cp "$dir/$FILE" "$DEST.tmp"
chmod 0644 "$DEST.tmp"
if ! echo "$SHA256  $DEST.tmp" | sha256sum -c --status; then
  echo "fetch-schemas: $FILE from $MODULE@$VERSION does not match SHA-256 $SHA256" >&2
  rm -f "$DEST.tmp"
  exit 1
fi
mv "$DEST.tmp" "$DEST"
echo "fetch-schemas: wrote $DEST"
