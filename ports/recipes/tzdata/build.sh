# Compiles the main data files with the host's zic into slim TZif files (no
# leap seconds: the POSIX view every libc expects), plus the tables readers use.
zi="$DESTDIR$PREFIX/share/zoneinfo"
mkdir -p "$zi"
zic -b slim -d "$zi" africa antarctica asia australasia europe northamerica southamerica etcetera backward factory
for f in zone.tab zone1970.tab iso3166.tab leap-seconds.list; do install -m 0644 "$f" "$zi/$f"; done
install -m 0644 version "$zi/+VERSION"
