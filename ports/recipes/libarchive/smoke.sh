# Smoke test for libarchive: bsdtar creates and lists archives in every
# compression it was built with (POSIX sh, busybox compatible).
set -eu
v=$(bsdtar --version)
for lib in 'libarchive 3\.6\.2' 'zlib/1\.2\.13' 'liblzma/5\.4\.1' 'bz2lib/1\.0\.8' 'libzstd/1\.5\.4'; do
  echo "$v" | grep -q "$lib" || { echo "bsdtar --version lacks $lib: $v" >&2; exit 1; }
done
mkdir -p tree/sub
echo hello > tree/a.txt
seq 1 5000 > tree/sub/b.txt
printf 'tree/\ntree/a.txt\ntree/sub/\ntree/sub/b.txt\n' > want
for opt in -z -j -J --zstd; do
  bsdtar -c $opt -f t.archive tree
  bsdtar -tf t.archive | sort > got
  cmp want got || { echo "listing differs for $opt" >&2; exit 1; }
  rm -rf out && mkdir out
  bsdtar -xf t.archive -C out
  cmp tree/sub/b.txt out/tree/sub/b.txt
done
bsdtar --format=zip -cf t.zip tree
bsdcat t.zip > /dev/null 2>&1 || true
bsdtar -tf t.zip | grep -q '^tree/sub/b.txt$'
echo "libarchive ok"
