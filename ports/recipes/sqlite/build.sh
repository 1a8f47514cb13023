# configure writes sqlite_cfg.h and sqlite3.pc; make generates the amalgamation
# (sqlite3.c, with tclsh) and shell.c. The amalgamation is then compiled once
# for both libsqlite3.a and the sqlite3 shell, with the features upstream's
# Makefile gives the shell (SHELL_OPT) plus the configure options. Cross
# builds add --build/--host; lemon and the other generators are then compiled
# with the build machine's cc (BUILD_CC), since they run during the build.
# shellcheck disable=SC2086
./configure ${CONFIGURE_CROSS_ARGS:-} --prefix="$PREFIX" --disable-shared --enable-static --disable-tcl --disable-readline --disable-editline \
  --enable-threadsafe --disable-load-extension --enable-fts5 --enable-rtree TCLSH_CMD=tclsh
make -j"$JOBS" sqlite3.c shell.c sqlite3.h sqlite3.pc
opts="-D_HAVE_SQLITE_CONFIG_H -DNDEBUG -DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION=1 -DSQLITE_ENABLE_MATH_FUNCTIONS \
  -DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_EXPLAIN_COMMENTS -DSQLITE_ENABLE_UNKNOWN_SQL_FUNCTION \
  -DSQLITE_ENABLE_STMTVTAB -DSQLITE_ENABLE_DBPAGE_VTAB -DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_ENABLE_BYTECODE_VTAB -DSQLITE_ENABLE_OFFSET_SQL_FUNC"
# shellcheck disable=SC2086
$CC $CFLAGS -I. $opts -c sqlite3.c -o sqlite3.o
ar rc libsqlite3.a sqlite3.o
# shellcheck disable=SC2086
$CC $CFLAGS -I. $opts -DHAVE_READLINE=0 -DHAVE_EDITLINE=0 -o sqlite3 shell.c sqlite3.o -lm
mkdir -p "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/lib/pkgconfig" "$DESTDIR$PREFIX/include"
install -m 0755 sqlite3 "$DESTDIR$PREFIX/bin/sqlite3"
install -m 0644 libsqlite3.a "$DESTDIR$PREFIX/lib/libsqlite3.a"
install -m 0644 sqlite3.h src/sqlite3ext.h "$DESTDIR$PREFIX/include/"
install -m 0644 sqlite3.pc "$DESTDIR$PREFIX/lib/pkgconfig/sqlite3.pc"
