#!/usr/bin/env bash
# The README's first command: from a fresh clone to a package installed and running in the guest.
#
#   bash scripts/main-job.sh [--arch x86_64|aarch64] [PORT...]        (default ports: curl lua)
#
# --arch aarch64 cross-builds the ports for aarch64-linux-musl (smoke-tested under qemu-user) and
# boots the aarch64 guest (qemu-system-aarch64 -M virt, TCG on an x86_64 host). Each arch keeps its
# own packages, web root and images, so the two jobs can alternate without rebuilding each other.
#
# Stages (each prints its wall time; everything is incremental, so a second run only checks):
#   1. setup       bash scripts/setup.sh (apt packages, deb-src entries, npm ci with Node 24)
#   2. build       npm run build (the host CLIs in dist/)
#   3. ports       scripts/build-ports.sh PORT... (fetch pinned sources, sandboxed static builds,
#                  host smoke tests; cached under .cache/). curl brings its runtime dependency
#                  ca-certificates and links openssl and zlib.
#   4. key         root and catalog key pairs in .cache/main-job/keys (0600, created once, never in a web root)
#   5. publish     swpkg repo publish into a fresh .cache/main-job/www, then swpkg repo verify-hosted
#   6. guest       builds the guest images (build/images, incremental), serves the web root with
#                  swpkg serve, boots the guest under QEMU, adds the repository with its root key,
#                  installs the ports (dependencies resolved by name), fetches the repository's
#                  hosted-repo.json with the guest's curl and runs `lua -v`; writes an evidence folder.
# Exit status: 0 when every stage passed; otherwise the failing stage's status.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD

arch=x86_64
ports=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch)
      [ $# -ge 2 ] || { echo "--arch needs a value (x86_64 or aarch64)" >&2; exit 2; }
      arch=$2
      shift
      ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) ports+=("$1") ;;
  esac
  shift
done
case "$arch" in
  x86_64 | aarch64) ;;
  *) echo "--arch is x86_64 or aarch64, not $arch" >&2; exit 2 ;;
esac
[ "${#ports[@]}" -gt 0 ] || ports=(curl lua)
target="$arch-linux-musl"
job="$here/.cache/main-job"
# One key pair for both arches (one publisher); packages and web roots per arch.
keys="$job/keys"
[ "$arch" = x86_64 ] && sub="" || sub="-$arch"
packages="$job/packages$sub"
www="$job/www$sub"
built="$job/built$sub"

declare -a SUMMARY=()
started=$SECONDS
summary() {
  echo
  echo "=== main job: stage times"
  printf '%s\n' "${SUMMARY[@]}"
  echo "total $((SECONDS - started)) s"
}
stage() {
  local name=$1
  shift
  local t0=$SECONDS
  echo
  echo "=== [$(date -u +%H:%M:%S)] stage: $name"
  # A subshell outside any condition, so `set -e` holds inside the stage functions too
  # (bash ignores errexit in functions called from an if or a || list).
  local rc=0
  set +e
  (
    set -e
    "$@"
  )
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    SUMMARY+=("$(printf '%-10s %6ds  ok' "$name" $((SECONDS - t0)))")
  else
    SUMMARY+=("$(printf '%-10s %6ds  FAILED (exit %d)' "$name" $((SECONDS - t0)) "$rc")")
    summary
    exit "$rc"
  fi
}

node="$here/node_modules/.bin/node"

make_key() {
  if [ -f "$keys/root.key" ] && [ -f "$keys/catalog.key" ]; then
    echo "keys: reusing $keys (root.key, catalog.key; 0600)"
    return 0
  fi
  mkdir -p "$keys"
  chmod 700 "$keys"
  bin/swpkg key generate --out "$keys" --name root
  bin/swpkg key generate --out "$keys" --name catalog
}

publish() {
  # A fresh web root per run (same keys): a published NAME-VERSION-ARCH never changes, and
  # a port rebuilt after a recipe change can differ in bytes under the same version, which
  # swpkg repo publish rightly refuses (E_IMMUTABLE) in an existing root.
  rm -rf "$www"
  # Exactly the packages of this job: the catalog lists what the folder holds.
  rm -rf "$packages.tmp"
  mkdir -p "$packages.tmp"
  cp "$built"/*.swpkg "$packages.tmp"/
  rm -rf "$packages"
  mv "$packages.tmp" "$packages"
  bin/swpkg repo publish "$packages" --out "$www" --key "$keys/catalog.key" --root-key "$keys/root.key" --name main
  bin/swpkg repo verify-hosted "$www"
}

build_ports() {
  rm -rf "$built"
  mkdir -p "$built"
  bash scripts/build-ports.sh "${ports[@]}" --target "$target" --out "$built"
}

stage setup bash scripts/setup.sh
export PATH="$here/node_modules/.bin:$PATH"
stage build npm run --silent build
stage ports build_ports
stage key make_key
stage publish publish
stage guest "$node" test/acceptance/run.ts --main-job --arch "$arch" --web-root "$www" --install "${ports[*]}"
summary
echo "evidence: $here/evidence/latest (result.json, manifest.txt, serial.log, scenarios/01-main-job.txt)"
