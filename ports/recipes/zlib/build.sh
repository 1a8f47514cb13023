# zlib's configure is not autoconf; --static builds only libz.a. minigzip is
# zlib's own test tool and the port's smoke-testable binary, so it is installed too.
CFLAGS="$CFLAGS" ./configure --prefix="$PREFIX" --static
make -j"$JOBS" libz.a minigzip
make install DESTDIR="$DESTDIR"
install -m 0755 minigzip "$DESTDIR$PREFIX/bin/minigzip" 2>/dev/null || {
  mkdir -p "$DESTDIR$PREFIX/bin"
  install -m 0755 minigzip "$DESTDIR$PREFIX/bin/minigzip"
}
