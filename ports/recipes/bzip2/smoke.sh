# Smoke test for bzip2: a round trip with the package's bzip2 (POSIX sh, busybox compatible).
# Debian's busybox runs its own bzip2 applet in preference to PATH, so the
# package's tools are called by their full path.
set -eu
bin="$PKG_PREFIX/bin"
"$bin/bzip2" --help 2>&1 | grep -q 'Version 1\.0\.8'
seq 1 30000 > data.txt
"$bin/bzip2" -9 -k data.txt
[ "$(head -c 3 data.txt.bz2)" = BZh ]
"$bin/bunzip2" -c data.txt.bz2 > back.txt
cmp data.txt back.txt
"$bin/bzcat" data.txt.bz2 | cmp - data.txt
[ -f "$PKG_PREFIX/lib/libbz2.a" ]
echo "bzip2 ok"
