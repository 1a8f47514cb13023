# Smoke test for zlib: a minigzip round trip (POSIX sh, busybox compatible).
set -eu
[ -f "$PKG_PREFIX/lib/libz.a" ] && [ -f "$PKG_PREFIX/include/zlib.h" ]
seq 1 20000 > data.txt
minigzip < data.txt > data.txt.gz
[ "$(head -c 2 data.txt.gz | od -An -tx1 | tr -d ' \n')" = 1f8b ] || { echo "not gzip output" >&2; exit 1; }
minigzip -d < data.txt.gz > back.txt
cmp data.txt back.txt
echo "zlib ok"
