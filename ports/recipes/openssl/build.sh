# Fully static (DESIGN.md "Ports"): no shared libraries, no async (needs
# ucontext, absent in musl), no engines (dlopen), no tests. The kernel headers
# OpenSSL needs (linux/mman.h) come from the toolchain wrapper's -idirafter.
# Only the software and the OPENSSLDIR skeleton are installed (no HTML/man docs).
./Configure linux-x86_64 no-shared no-async no-engine no-tests -static \
  --prefix="$PREFIX" --openssldir="$PREFIX/etc/ssl" --libdir=lib
make -j"$JOBS"
make install_sw install_ssldirs DESTDIR="$DESTDIR"
