# Smoke test for sqlite: queries on an in-memory database (POSIX sh, busybox compatible).
set -eu
sqlite3 --version | grep -q '^3\.40\.1 '
out=$(sqlite3 :memory: 'select 6 * 7;')
[ "$out" = 42 ] || { echo "sqlite gave '$out'" >&2; exit 1; }
out=$(sqlite3 :memory: "create table t(name text, n int); insert into t values ('b', 2), ('a', 1), ('c', 3); select group_concat(name, ',') from (select name from t order by n);")
[ "$out" = "a,b,c" ] || { echo "sqlite gave '$out'" >&2; exit 1; }
out=$(sqlite3 :memory: "select json_extract('{\"k\": [1, 2, 3]}', '\$.k[2]');")
[ "$out" = 3 ] || { echo "sqlite json gave '$out'" >&2; exit 1; }
echo "sqlite ok"
