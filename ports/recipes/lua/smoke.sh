# Smoke test for lua (POSIX sh, busybox compatible; PATH holds the package's bin).
set -eu
lua -v 2>&1 | grep -q '^Lua 5\.4'
out=$(lua -e 'print(string.format("%d", 6 * 7))')
[ "$out" = 42 ] || { echo "lua arithmetic gave '$out'" >&2; exit 1; }
out=$(lua -e 'local t = {} for w in ("c b a"):gmatch("%a") do t[#t + 1] = w end table.sort(t) print(table.concat(t, ","))')
[ "$out" = "a,b,c" ] || { echo "lua table.sort gave '$out'" >&2; exit 1; }
printf 'print("bytecode " .. (1 + 1))\n' > hello.lua
luac -o hello.luac hello.lua
[ "$(lua hello.luac)" = "bytecode 2" ]
echo "lua ok"
