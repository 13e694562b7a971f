#!/usr/bin/env bash
# Real-browser tests of Gatehouse's hosted pages (headless Chromium via playwright-core).
# Usage: tests/browser/run.sh   (from anywhere; needs target/debug/gatehouse or $GATEHOUSE_BIN)
# Finds Chromium with find-chromium.sh ($CHROMIUM_PATH, /usr/bin/chromium, chromium or Chrome on
# PATH; else installs Debian's chromium: apt-get as root or with passwordless sudo, or unpacked
# into ~/.cache/gatehouse/chromium without root) and exports it as CHROMIUM_PATH, runs `npm ci`
# when node_modules is missing or older than package-lock.json, then `node --test tests/browser/`.
# Works as root and as an ordinary user.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

CHROMIUM_PATH="$(bash "$HERE/find-chromium.sh")"
export CHROMIUM_PATH

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
