# Smoke test for pcre2: pcre2grep matches a Perl-style pattern (POSIX sh, busybox compatible).
set -eu
pcre2grep --version | grep -q '10\.42'
printf 'alpha 12\nbeta\ngamma 345\n' > input.txt
out=$(pcre2grep -o '(?<=\s)\d{2,}$' input.txt | tr '\n' ,)
[ "$out" = "12,345," ] || { echo "pcre2grep gave '$out'" >&2; exit 1; }
[ "$(pcre2grep -c '^(?i)BETA$' input.txt)" = 1 ]
[ -f "$PKG_PREFIX/lib/libpcre2-8.a" ] && [ -f "$PKG_PREFIX/include/pcre2.h" ]
echo "pcre2 ok"
