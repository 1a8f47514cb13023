# Sourced by the bench scripts that compare this tree with a baseline commit in the same run.
# Needs ROOT (the checkout) and ESBUILD set by the caller.

# bench_bundle ENTRY.ts OUT.mjs: one ESM file for Node 24, with require() for CommonJS dependencies.
bench_bundle() {
  "$ESBUILD" "$1" --bundle --platform=node --format=esm --target=node24 --outfile="$2" --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
}

# bench_baseline_tree BASE DEST DRIVER.ts: the baseline's catalog/ (and publishing/, where the
# baseline has it) from git under DEST, the driver copied to DEST/bench/<same folder>, and our
# node_modules linked in. A baseline from before publishing/ existed gets an empty
# publishing/index.ts, so a driver's optional import of it resolves to nothing (as in that commit).
bench_baseline_tree() {
  local base=$1 dest=$2 driver=$3 rel
  rel=${driver#"$ROOT"/}
  mkdir -p "$dest/$(dirname "$rel")"
  if git -C "$ROOT" cat-file -e "$base:publishing" 2>/dev/null; then
    git -C "$ROOT" archive "$base" catalog publishing | tar -x -C "$dest"
  else
    git -C "$ROOT" archive "$base" catalog | tar -x -C "$dest"
    mkdir -p "$dest/publishing"
    echo 'export {};' > "$dest/publishing/index.ts"
  fi
  cp "$driver" "$dest/$rel"
  ln -s "$ROOT/node_modules" "$dest/node_modules"
}
