#!/usr/bin/env bash
# Core formats and publishing, measured as ratios against baselines run in the same script:
#   index  `swpkg repo index` over N corpus packages vs `apt-ftparchive packages`, pacman `repo-add`
#          and `dpkg-scanpackages` over the same content (anchor kit, ../shared/bench), plus a
#          decompress+sha256 floor (zstd -dc reads gzip too); `swpkg repo index --jobs 1` (one thread, as apt-ftparchive) beside it
#   pack   `swpkg pack` of a 200 MiB incompressible folder vs `tar --zstd -cf` (both zstd level 3; packages are zstd)
#   mem    peak RSS of `swpkg pack` / `swpkg verify` on a 1 GiB payload vs the same commands on a
#          small package (flat: the peak does not grow with the payload; the bar is under 200 MiB)
#
#   BENCH_DIR=/tmp/x bench/catalog/bench-catalog.sh [index] [pack] [mem]     (default: all three)
#
# Env: BENCH_DIR (default /tmp/swpkg-bench-catalog), BENCH_KIT (anchor kit, default
# ../shared/bench), KIT_NODE (Node >= 20 for the kit's scripts, default /usr/bin/node),
# N (corpus size, default 1000), RUNS (hyperfine runs, default 3), REPO_ADD_RUNS (default 1: one
# repo-add run of 1000 packages takes tens of minutes), SKIP_BUILD=1 (use dist/ as is),
# SKIP (ids of index baselines not to run, e.g. SKIP='index-repo-add index-dpkg-scanpackages').
# Index pairs (swpkg, then its baseline) alternate run by run, so a change in the machine's load
# reaches both sides: hyperfine runs each command's runs back to back.
# Reused between runs when present: $BENCH_DIR/corpus (gen-corpus.mjs) and $BENCH_DIR/pkgs/small
# (build-formats.sh, ~10 min on 2 cores). The .swpkg set is repacked every run (it is the product).
# Removed on exit: $BENCH_DIR/work-catalog (outputs, the 1 GiB payload and its packages).
# Results: $BENCH_DIR/results-catalog/*.json and summary.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export BENCH_DIR=${BENCH_DIR:-/tmp/swpkg-bench-catalog}
KIT=${BENCH_KIT:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/bench}
KIT_NODE=${KIT_NODE:-/usr/bin/node}
NODE24=$ROOT/node_modules/.bin/node
N=${N:-1000}
RUNS=${RUNS:-3}
export SWPKG=$ROOT/bin/swpkg
export C=$BENCH_DIR/corpus P=$BENCH_DIR/pkgs/small S=$BENCH_DIR/swpkg/small W=$BENCH_DIR/work-catalog
RES=$BENCH_DIR/results-catalog

for tool in hyperfine repo-add dpkg-scanpackages apt-ftparchive gzip jq /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install hyperfine pacman-package-manager dpkg-dev apt-utils gzip jq time)" >&2; exit 1; }
done
# repo-add sources libmakepkg, which Debian ships in the separate `makepkg` package.
[ -f "${LIBRARY:-/usr/share/makepkg}/util/compress.sh" ] || { echo "repo-add needs libmakepkg: apt-get install --no-install-recommends makepkg" >&2; exit 1; }
[ -x "$NODE24" ] || { echo "no $NODE24: run npm ci in $ROOT" >&2; exit 1; }
"$KIT_NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { echo "KIT_NODE must be Node >= 20" >&2; exit 1; }

cleanup() { rm -rf "$W"; }
trap cleanup EXIT
rm -rf "$W"
mkdir -p "$W" "$RES"
META=$RES/meta.json
[ -f "$META" ] || echo '{}' > "$META"
MEM=$RES/mem.json
[ -f "$MEM" ] || echo '{}' > "$MEM"
# put FILE KEY JSON_VALUE: results of separate sections accumulate in one file.
put() { local tmp; tmp=$(mktemp "$RES/.XXXXXX"); jq --arg k "$2" --argjson v "$3" '.[$k] = $v' "$1" > "$tmp" && mv "$tmp" "$1"; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== build (tsc -p tsconfig.build.json)"
  # Other folders may be mid-edit; tsc still emits, and a broken swpkg shows up in the checks below.
  (cd "$ROOT" && npx tsc -p tsconfig.build.json) || echo "warning: tsc reported errors; benchmarking dist/ as emitted" >&2
fi
[ -f "$ROOT/dist/cli/swpkg/main.js" ] || { echo "no dist/cli/swpkg/main.js: build failed" >&2; exit 1; }

corpus_n() { [ -f "$C/$1/index.json" ] && jq -r "$2" "$C/$1/index.json" || echo none; }
count() { find "$1/" -maxdepth 1 -type f -name "$2" 2>/dev/null | wc -l; }

skipped() { case " ${SKIP:-} " in *" $1 "*) echo "== $1: skipped (SKIP)"; return 0 ;; esac; return 1; }

# hf ID PREPARE CMD [WARMUP] [RUNS]: one hyperfine per command so each keeps its own prepare step.
hf() {
  skipped "$1" && return 0
  local a=(--shell bash --style basic --runs "${5:-$RUNS}" --warmup "${4:-0}" --export-json "$RES/$1.json" -n "$1")
  [ -n "$2" ] && a+=(--prepare "$2")
  echo "== $1"
  hyperfine "${a[@]}" "$3"
}

# hf_turns IDS CMDS: the commands taken in turn (A B C A B C ...), one hyperfine run each time, so a
# change in the machine's load reaches every side alike; the first round (page cache, V8's compile
# cache) is not counted. Writes one hyperfine-shaped $RES/ID.json per command with the runs merged.
hf_turns() {
  local -n turn_ids=$1 turn_cmds=$2
  local k r
  echo "== in turn: ${turn_ids[*]} (1 warm-up round, then $RUNS)"
  for k in "${!turn_ids[@]}"; do rm -f "$RES/${turn_ids[$k]}".run-*.json; done
  for ((r = 0; r <= RUNS; r++)); do
    for k in "${!turn_ids[@]}"; do
      hyperfine --shell bash --style none --runs 1 --export-json "$RES/${turn_ids[$k]}.run-$r.json" -n "${turn_ids[$k]}" "${turn_cmds[$k]}" >/dev/null
    done
  done
  for k in "${!turn_ids[@]}"; do
    rm -f "$RES/${turn_ids[$k]}.run-0.json"
    jq -s '[.[].results[0]] as $r | ($r | map(.times[0]) | sort) as $t | ($t | length) as $n | {results: [$r[0] + {
        times: ($r | map(.times[0])), user: ($r | map(.user) | add / $n), system: ($r | map(.system) | add / $n),
        mean: ($t | add / $n), min: $t[0], max: $t[-1],
        median: (if $n % 2 == 1 then $t[($n - 1) / 2] else ($t[$n / 2 - 1] + $t[$n / 2]) / 2 end)}]}' \
      "$RES/${turn_ids[$k]}".run-*.json > "$RES/${turn_ids[$k]}.json"
    rm -f "$RES/${turn_ids[$k]}".run-*.json
    jq -r '.results[0] | "   \(.command): wall median \(.median) s (\(.min)–\(.max)), CPU mean \(.user + .system) s"' "$RES/${turn_ids[$k]}.json"
  done
}

# timed ID CMD...: /usr/bin/time -v, recording peak RSS (KiB) and wall seconds into mem.json.
timed() {
  local id=$1; shift
  echo "== $id: $*"
  /usr/bin/time -v -o "$RES/$id.time.txt" "$@" >"$RES/$id.log" 2>&1 || { cat "$RES/$id.log" >&2; exit 1; }
  local rss el
  rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$RES/$id.time.txt")
  el=$(sed -n 's/^[[:space:]]*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$RES/$id.time.txt" |
    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  echo "   peak RSS ${rss} KiB, ${el} s"
  put "$MEM" "$id" "{\"maxRssKiB\":$rss,\"elapsedS\":$el}"
}

sec_index() {
  if [ "$(corpus_n small .n)" != "$N" ]; then
    echo "== corpus: $N small packages"
    "$KIT_NODE" "$KIT/gen-corpus.mjs" --out "$C" --n "$N" --only small
  fi
  if [ "$(count "$P/arch" '*.pkg.tar.zst')" != "$N" ] || [ "$(count "$P/deb-gz" '*.deb')" != "$N" ]; then
    echo "== anchor packages (build-formats.sh small arch deb-gz; ~10 min on 2 cores)"
    # The kit's scripts call `node` and need Node >= 20; put KIT_NODE first on PATH for them.
    PATH="$(dirname "$KIT_NODE"):$PATH" "$KIT/build-formats.sh" small arch deb-gz
  fi
  echo "== pack the corpus as .swpkg (in-process packPackage)"
  local packed; packed=$("$NODE24" "$HERE/pack-corpus.mjs" "$C/small" "$S")
  echo "   $packed"
  put "$META" packCorpus "$packed"
  put "$META" packages "$N"

  # apt-ftparchive reads each .deb's control member and hashes the whole file (MD5, SHA1, SHA256,
  # SHA512), on one thread; `repo index` also inflates every package and checks every file's hash.
  # By default it verifies on every core (one worker thread each); --jobs 1 is the one-thread figure.
  local ids=(index-swpkg index-apt-ftparchive index-swpkg-jobs1)
  local cmds=('"$SWPKG" repo index "$S" --name bench --out "$W/catalog.json" >/dev/null'
    'cd "$P" && apt-ftparchive packages deb-gz > "$W/Packages.ftp"'
    '"$SWPKG" repo index "$S" --name bench --jobs 1 --out "$W/catalog1.json" >/dev/null')
  hf_turns ids cmds
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "   load average after the index pairs: $load"
  put "$META" indexLoad "\"$load\""
  # repo-add forks several tools per package and took 12 to 30 min per run on the shared 2-core box,
  # ~40x the swpkg time: one run (REPO_ADD_RUNS) is enough for a ratio that size.
  hf index-repo-add 'rm -rf "$W/repo" && mkdir -p "$W/repo"' 'repo-add -q "$W/repo/bench.db.tar.gz" "$P"/arch/*.pkg.tar.zst' 0 "${REPO_ADD_RUNS:-1}"
  hf index-dpkg-scanpackages '' 'cd "$P" && dpkg-scanpackages deb-gz /dev/null > "$W/Packages" 2>/dev/null'
  # What `repo index` cannot avoid doing: read and hash every archive and inflate it.
  hf index-floor '' 'sha256sum "$S"/*.swpkg >/dev/null && zstd -dcq "$S"/*.swpkg | sha256sum >/dev/null'
  # The catalog is a DSSE envelope: the entries are in its base64 payload.
  local got=() f
  got+=("swpkg=$(jq -r .payload "$W/catalog.json" | base64 -d | jq '.packages | length')")
  got+=("swpkg-jobs1=$(jq -r .payload "$W/catalog1.json" | base64 -d | jq '.packages | length')")
  got+=("apt-ftparchive=$(grep -c '^Package:' "$W/Packages.ftp")")
  skipped index-repo-add >/dev/null || got+=("repo-add=$(tar -tzf "$W/repo/bench.db.tar.gz" | grep -c '/desc$')")
  skipped index-dpkg-scanpackages >/dev/null || got+=("dpkg-scanpackages=$(grep -c '^Package:' "$W/Packages")")
  echo "check: entries ${got[*]}"
  for f in "${got[@]}"; do [ "${f#*=}" = "$N" ] || { echo "index outputs disagree with N=$N: $f" >&2; exit 1; }; done
}

# Large payloads come from the kit's generator (deterministic, incompressible AES-CTR bytes).
large_payload() { # OUT MIB -> prints the payload folder
  local out=$1 mib=$2
  if [ "$(jq -r '"\(.n) \(.mib)"' "$out/large/index.json" 2>/dev/null || true)" != "1 $mib" ]; then
    "$KIT_NODE" "$KIT/gen-corpus.mjs" --out "$out" --only large --large 1 --large-mib "$mib" >&2
  fi
  echo "$out/large/src/swl-0/payload"
}

sec_pack() {
  # Reuses the kit corpus's first large package when it is 200 MiB; a corpus with other sizes is left alone.
  local dir
  if [ "$(jq -r '.mib' "$C/large/index.json" 2>/dev/null || true)" = 200 ]; then dir=$C/large/src/swl-0/payload; else dir=$(large_payload "$W/corpus-200" 200); fi
  export PACK_DIR=$dir
  # Both sides read the folder from the page cache after the warmup run; zstd -3 is the level packPackage uses.
  hf pack200-swpkg 'rm -f "$W/p200.swpkg"' \
    '"$SWPKG" pack "$PACK_DIR" --name swl-0 --version 1.0.0 --arch any --summary large --license MIT --out "$W/p200.swpkg" >/dev/null' 1
  hf pack200-tar 'rm -f "$W/p200.tar.zst"' 'tar -c -C "$PACK_DIR" . | zstd -3 -q -o "$W/p200.tar.zst"' 1
  put "$META" pack200 "{\"mib\":200,\"payloadBytes\":$(du -sb --apparent-size "$dir" | cut -f1),\"swpkgBytes\":$(stat -c %s "$W/p200.swpkg"),\"tarBytes\":$(stat -c %s "$W/p200.tar.zst")}"
  rm -f "$W/p200.swpkg" "$W/p200.tar.zst"
}

sec_mem() {
  local tiny=$C/small/src/swb-0000/payload big
  [ -d "$tiny" ] || "$KIT_NODE" "$KIT/gen-corpus.mjs" --out "$C" --n "$N" --only small
  big=$(large_payload "$W/corpus-1g" 1024)
  local meta=(--name swl-0 --version 1.0.0 --arch any --summary large --license MIT)
  timed pack-tiny "$SWPKG" pack "$tiny" "${meta[@]}" --out "$W/tiny.swpkg"
  timed verify-tiny "$SWPKG" verify "$W/tiny.swpkg"
  timed pack-1g "$SWPKG" pack "$big" "${meta[@]}" --out "$W/p1g.swpkg"
  timed verify-1g "$SWPKG" verify "$W/p1g.swpkg"
  timed tar-1g bash -c 'tar -c -C "$0" . | zstd -3 -q -o "$1"' "$big" "$W/p1g.tar.zst"
  rm -f "$W/p1g.tar.zst"
  export BIG_PKG=$W/p1g.swpkg
  timed unpack-1g bash -c 'sha256sum "$BIG_PKG" >/dev/null && zstd -dcq "$BIG_PKG" | sha256sum >/dev/null'
  rm -rf "$W/corpus-1g" "$W/p1g.swpkg"
}

[ $# -gt 0 ] || set -- index pack mem
for s in "$@"; do case $s in
  index) sec_index ;; pack) sec_pack ;; mem) sec_mem ;;
  *) echo "unknown section $s (index pack mem)" >&2; exit 2 ;;
esac; done

{
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), node $("$NODE24" --version), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
  echo
  "$NODE24" "$HERE/summarize.mjs" "$RES"
} | tee "$RES/summary.md"
