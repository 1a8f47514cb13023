# nginx's own configure (not autoconf). PCRE2, zlib and OpenSSL are the ports'
# static libraries from the build sysroot ($SYSROOT); user and group are fixed
# so the host's /etc/group cannot change the binary. auth_basic needs libc's
# crypt(), which Debian's musl lacks, so it is left out.
# For aarch64, --crossbuild names the platform instead of the build host's
# uname; NGX_MACHINE (which configure leaves alone when cross-building) picks
# aarch64's alignment and cache line. Feature tests run under qemu-user
# (cross-autotest.patch).
cross=
case "$TARGET" in
  x86_64-*) ;;
  aarch64-*) cross=--crossbuild=Linux::aarch64; NGX_MACHINE=aarch64; export NGX_MACHINE ;;
  *) echo "nginx: unknown target $TARGET" >&2; exit 1 ;;
esac
# shellcheck disable=SC2086
./configure $cross \
  --prefix="$PREFIX" \
  --sbin-path="$PREFIX/bin/nginx" \
  --conf-path="$PREFIX/etc/nginx/nginx.conf" \
  --user=nobody --group=nogroup \
  --with-cc="$CC" \
  --with-cc-opt="$CFLAGS -I$SYSROOT/include" \
  --with-ld-opt="-L$SYSROOT/lib -static" \
  --with-threads \
  --with-pcre --with-pcre-jit \
  --with-http_ssl_module --with-http_v2_module --with-http_gzip_static_module \
  --with-http_stub_status_module --with-http_realip_module \
  --without-http_auth_basic_module
make -j"$JOBS"
make install DESTDIR="$DESTDIR"
