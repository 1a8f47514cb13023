# Smoke test for tzdata: zoneinfo files are present, are TZif, and give the
# right local time (POSIX sh, busybox compatible).
set -eu
zi="$PKG_PREFIX/share/zoneinfo"
[ "$(cat "$zi/+VERSION")" = 2026b ]
for z in UTC Europe/Berlin America/New_York Asia/Tokyo; do
  [ "$(head -c 4 "$zi/$z")" = TZif ] || { echo "$z is not a TZif file" >&2; exit 1; }
done
[ "$(TZ="$zi/Europe/Berlin" date -d @0 '+%Z %H')" = "CET 01" ]
[ "$(TZ="$zi/America/New_York" date -d @1720000000 '+%Z %H')" = "EDT 05" ]
[ "$(TZ="$zi/Asia/Tokyo" date -d @0 '+%H')" = 09 ]
grep -q '^DE	' "$zi/zone.tab"
echo "tzdata ok"
