#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine: apt packages, the deb-src
# entry for Debian source packages, and npm dependencies (including Node 24 from the npm registry).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  qemu-system-x86 qemu-utils musl-tools bubblewrap chromium e2fsprogs cpio busybox-static
  pacman-package-manager dpkg-dev apt-utils libarchive-tools zstd nginx-light curl hyperfine
  xz-utils bzip2 file bc patch make gcc jq
  # socat relays each guest TCP connection to the host (restricted guest networking).
  socat
  # aarch64: Debian's cross gcc, musl for arm64 (it ships /usr/bin/aarch64-linux-musl-gcc), the
  # arm64 kernel headers, qemu-user to smoke-test ports, qemu-system-arm and UEFI for the guest.
  gcc-aarch64-linux-gnu musl-dev:arm64 linux-libc-dev-arm64-cross qemu-user-static
  qemu-system-arm qemu-efi-aarch64
  # UEFI boot of the guest (A/B system slots): OVMF firmware, systemd-boot, FAT tools for the ESP, sgdisk to check our GPT writer.
  ovmf systemd-boot-efi mtools dosfstools gdisk
  # A single-node Ceph RADOS Gateway on 127.0.0.1 for the S3 publish tests (scripts/rgw.sh).
  radosgw ceph-mon ceph-osd ceph-common uuid-runtime
  # libmakepkg, which pacman's repo-add sources (bench/catalog/bench-catalog.sh index).
  makepkg
)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
# musl-dev:arm64 is a foreign-arch package: dpkg must know arm64 before apt can see it.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: dpkg --add-architecture arm64"
  "${sudo_cmd[@]}" dpkg --add-architecture arm64
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -x scripts/setup-apt-sources.sh ] || [ -f scripts/setup-apt-sources.sh ]; then
  "${sudo_cmd[@]}" bash scripts/setup-apt-sources.sh
fi

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/node --version | grep -q '^v24\.' || { echo "setup: Node 24 missing from node_modules" >&2; exit 1; }
