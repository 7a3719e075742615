#!/usr/bin/env bash
# Installs Microsoft's SARIF SDK multitool (the reference SARIF validator,
# which also ships the official sarif-2.1.0.json schema) from the npm
# registry into .cache/sarif-multitool for the report tests
# (internal/report). npm checks the package's integrity hash. Idempotent;
# works offline once installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=@microsoft/sarif-multitool-linux
VERSION=5.7.0
DEST=.cache/sarif-multitool
TOOL=$DEST/node_modules/$PKG/Sarif.Multitool

if [[ -x $TOOL ]] && grep -q "\"version\": \"$VERSION\"" "$DEST/node_modules/$PKG/package.json"; then
  exit 0
fi
mkdir -p "$DEST"
npm install --prefix "$DEST" --no-audit --no-fund --no-save "$PKG@$VERSION" >/dev/null
chmod 0755 "$TOOL"
echo "fetch-sarif-tools: installed $PKG@$VERSION in $DEST"
