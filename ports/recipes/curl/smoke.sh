# Smoke test for curl: fetch a page from the harness's HTTP server on
# 127.0.0.1 (SMOKE_HTTP_URL serves /hello.txt) (POSIX sh, busybox compatible).
set -eu
: "${SMOKE_HTTP_URL:?the harness passes an HTTP server URL}"
v=$(curl --version)
echo "$v" | grep -q '^curl 7\.88\.1 ' || { echo "unexpected: $v" >&2; exit 1; }
echo "$v" | grep -q 'OpenSSL/3\.0\.22'
echo "$v" | grep -q 'zlib/1\.2\.13'
body=$(curl -fsS --max-time 20 "$SMOKE_HTTP_URL/hello.txt")
[ "$body" = "swport smoke ok" ] || { echo "curl fetched '$body'" >&2; exit 1; }
code=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' "$SMOKE_HTTP_URL/missing")
[ "$code" = 404 ] || { echo "missing page gave HTTP $code" >&2; exit 1; }
[ -s "$PKG_PREFIX/etc/ssl/certs/ca-certificates.crt" ]
echo "curl ok"
