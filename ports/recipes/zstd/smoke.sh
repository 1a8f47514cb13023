# Smoke test for zstd: a round trip with the package's zstd (POSIX sh, busybox compatible).
set -eu
zstd --version | grep -q 'v1\.5\.4'
seq 1 30000 > data.txt
zstd -q -19 data.txt -o data.txt.zst
[ "$(head -c 4 data.txt.zst | od -An -tx1 | tr -d ' \n')" = 28b52ffd ]
zstd -q -t data.txt.zst
zstd -q -d -c data.txt.zst | cmp - data.txt
zstdcat data.txt.zst | cmp - data.txt
[ -f "$PKG_PREFIX/lib/libzstd.a" ]
echo "zstd ok"
