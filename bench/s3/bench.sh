#!/usr/bin/env bash
# Issue 16 benchmarks (bench/s3/bench-s3.ts): publish to Ceph RGW vs a folder, pkg install through a
# dead + live mirror vs the live one. Starts the gateway (scripts/rgw.sh) if it is not running.
#   bash bench/s3/bench.sh [--packages 1000] [--install 100] [--stall 2]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
export PATH="$REPO/node_modules/.bin:$PATH"
bash "$REPO/scripts/rgw.sh" start
npm --prefix "$REPO" run --silent build
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
# Bundled like bench/client: the TypeScript sources run on Node 24 without a loader.
esbuild "$HERE/bench-s3.ts" --bundle --platform=node --format=esm --target=node24 --outfile="$OUT/bench-s3.mjs" --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --define:import.meta.dirname="\"$HERE\""
node "$OUT/bench-s3.mjs" "$@"
