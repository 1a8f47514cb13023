# zstd's own Makefiles: the static library and the multi-threaded CLI, without
# the optional zlib/lzma/lz4 format support (the host's libraries must not leak in).
make -j"$JOBS" -C lib libzstd.a-mt CC="$CC" CFLAGS="$CFLAGS"
make -j"$JOBS" -C programs zstd CC="$CC" CFLAGS="$CFLAGS" HAVE_ZLIB=0 HAVE_LZMA=0 HAVE_LZ4=0 HAVE_THREAD=1
make -C lib install-static install-includes install-pc PREFIX="$PREFIX" DESTDIR="$DESTDIR"
make -C programs install PREFIX="$PREFIX" DESTDIR="$DESTDIR" HAVE_ZLIB=0 HAVE_LZMA=0 HAVE_LZ4=0
