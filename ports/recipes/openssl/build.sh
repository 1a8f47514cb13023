# Fully static (DESIGN.md "Ports"): no shared libraries, no async (needs
# ucontext, absent in musl), no engines (dlopen), no tests. The kernel headers
# OpenSSL needs (linux/mman.h) come from the toolchain wrapper's -idirafter.
# Only the software and the OPENSSLDIR skeleton are installed (no HTML/man docs).
# OpenSSL names platforms itself; CC, AR and RANLIB come from the environment
# (the target's tools), so no CROSS_COMPILE prefix is needed.
case "$TARGET" in
  x86_64-*) platform=linux-x86_64 ;;
  aarch64-*) platform=linux-aarch64 ;;
  *) echo "openssl: no OpenSSL platform for $TARGET" >&2; exit 1 ;;
esac
./Configure "$platform" no-shared no-async no-engine no-tests -static \
  --prefix="$PREFIX" --openssldir="$PREFIX/etc/ssl" --libdir=lib
make -j"$JOBS"
make install_sw install_ssldirs DESTDIR="$DESTDIR"
