#!/usr/bin/env bash
# Real-browser tests of Gatehouse's hosted pages (headless Chromium via playwright-core).
# Usage: tests/browser/run.sh   (from anywhere; needs target/debug/gatehouse or $GATEHOUSE_BIN)
# Installs Debian's chromium when /usr/bin/chromium is missing (root), runs `npm ci` when
# node_modules is missing or older than package-lock.json, then `node --test tests/browser/`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  echo "run.sh: installing chromium (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends chromium; then
    apt-get update
    apt-get install -y --no-install-recommends chromium
  fi
fi

if [ ! -d "$HERE/node_modules" ] || [ "$HERE/package-lock.json" -nt "$HERE/node_modules" ]; then
  echo "run.sh: npm ci in tests/browser" >&2
  (cd "$HERE" && npm ci --no-audit --no-fund)
  touch "$HERE/node_modules"
fi

BIN="${GATEHOUSE_BIN:-$REPO/target/debug/gatehouse}"
if [ ! -x "$BIN" ]; then
  echo "run.sh: no gatehouse binary at $BIN (build it with cargo build -p gatehouse, or set GATEHOUSE_BIN)" >&2
  exit 1
fi

cd "$REPO"
exec node --test tests/browser/
