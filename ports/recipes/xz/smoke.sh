# Smoke test for xz: round trips in .xz and .lzma formats (POSIX sh, busybox compatible).
# Debian's busybox runs its own xz applets in preference to PATH, so the
# package's tools are called by their full path.
set -eu
bin="$PKG_PREFIX/bin"
"$bin/xz" --version | grep -q '^xz (XZ Utils) 5\.4\.1'
seq 1 30000 > data.txt
"$bin/xz" -9 -k -T1 data.txt
"$bin/xz" -t data.txt.xz
"$bin/unxz" -c data.txt.xz | cmp - data.txt
"$bin/xz" --format=lzma -c data.txt > data.lzma
"$bin/xz" -d --format=lzma -c data.lzma | cmp - data.txt
[ -f "$PKG_PREFIX/lib/liblzma.a" ]
echo "xz ok"
