# Smoke test for nginx: version, then serve a page on 127.0.0.1 and fetch it
# with busybox wget (POSIX sh, busybox compatible).
set -eu
nginx -v 2>&1 | grep -q 'nginx/1\.22\.1'
nginx -V 2>&1 | grep -q -- '--with-http_ssl_module'
nginx -V 2>&1 | grep -q 'built with OpenSSL 3\.0\.22'
srv="$PWD/srv"
mkdir -p "$srv/www" "$srv/logs"
echo 'hello from nginx' > "$srv/www/index.html"
started=
for try in 1 2 3 4 5; do
  port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000 ))
  cat > "$srv/nginx.conf" <<CONF
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log;
events { worker_connections 64; }
http {
  include $PKG_PREFIX/etc/nginx/mime.types;
  access_log off;
  server { listen 127.0.0.1:$port; root $srv/www; }
}
CONF
  nginx -p "$srv" -e stderr -c "$srv/nginx.conf" -t
  if nginx -p "$srv" -e stderr -c "$srv/nginx.conf"; then started=1; break; fi
done
[ -n "$started" ] || { echo "nginx did not start" >&2; exit 1; }
ok=
i=0
while [ $i -lt 50 ]; do
  if body=$(wget -q -O - "http://127.0.0.1:$port/index.html" 2>/dev/null); then ok=1; break; fi
  sleep 0.2
  i=$((i + 1))
done
kill "$(cat "$srv/logs/nginx.pid")" 2>/dev/null || true
[ -n "$ok" ] || { echo "no answer from nginx on port $port" >&2; cat "$srv/logs/error.log" >&2 || true; exit 1; }
[ "$body" = "hello from nginx" ] || { echo "nginx served '$body'" >&2; exit 1; }
echo "nginx ok"
