#!/usr/bin/env bash
# The CI-sized test suite (README's test command): setup, build, static checks, all unit and
# integration tests, a few ports built and smoke-tested, and a subset of the guest scenarios.
# `scripts/test.sh --full` runs every port twice (reproducibility) and every guest scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=0
[ "${1:-}" = "--full" ] && FULL=1

declare -a SUMMARY=()
stage() {
  local name=$1; shift
  local t0=$SECONDS
  echo "=== stage: $name"
  if "$@"; then
    SUMMARY+=("$(printf '%-28s %5ds  ok' "$name" $((SECONDS - t0)))")
  else
    local rc=$?
    SUMMARY+=("$(printf '%-28s %5ds  FAILED (exit %d)' "$name" $((SECONDS - t0)) "$rc")")
    print_summary
    exit "$rc"
  fi
}
print_summary() {
  echo "=== stage times"
  printf '%s\n' "${SUMMARY[@]}"
}

stage setup bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"
stage build npm run --silent build
# The pinned guest kernels, busybox and (aarch64) Node runtime, verified by SHA-256: from
# ../shared/sources, else the download cache (~/.cache/swpkg), else apt-get download / npm pack.
stage "guest kernel fetch" bin/swpkg image fetch
stage "guest kernel fetch aarch64" bin/swpkg image fetch --arch aarch64
stage typecheck npx tsc -p tsconfig.json
stage lint npm run --silent lint
# The S3 publish tests talk to a real Ceph RADOS Gateway on 127.0.0.1 (about 13 s from cold); stopped on exit.
trap 'bash scripts/rgw.sh stop' EXIT
stage "rgw start" bash scripts/rgw.sh start
stage "unit+integration tests" npx vitest run
if [ -f scripts/build-ports.sh ]; then
  if [ "$FULL" = 1 ]; then
    stage "ports (all, twice)" bash scripts/build-ports.sh --all --twice
    stage "ports aarch64 (all, twice, smoke under qemu-user)" bash scripts/build-ports.sh --all --twice --target aarch64-linux-musl
  else
    stage "ports (CI subset)" bash scripts/build-ports.sh lua zlib bzip2
    stage "ports aarch64 (CI subset, smoke under qemu-user)" bash scripts/build-ports.sh lua zlib bzip2 --target aarch64-linux-musl
  fi
fi
if [ -f test/acceptance/run.ts ]; then
  if [ "$FULL" = 1 ]; then
    stage "guest acceptance (all)" npm run --silent test:acceptance -- --all
    stage "guest acceptance aarch64 (all)" npm run --silent test:acceptance -- --arch aarch64 --all
  else
    stage "guest acceptance (CI subset)" npm run --silent test:acceptance -- --ci
    # The aarch64 guest runs under TCG on an x86_64 host: the scenarios that show it boots, installs
    # and runs its own seed ports, and refuses what it must (incompatible arch included), and that a
    # failed health check switches back by itself (health-rollback: 102 s measured, setup included),
    # and that an A/B system update boots through AAVMF and systemd-boot (system-update: 200 s).
    stage "guest acceptance aarch64 (CI subset)" npm run --silent test:acceptance -- --arch aarch64 \
      --scenario boot --scenario install-seed --scenario rejections --scenario local-file --scenario health-rollback \
      --scenario system-update
  fi
fi
print_summary
