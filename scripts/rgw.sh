#!/usr/bin/env bash
# A single-node Ceph cluster with the RADOS Gateway on 127.0.0.1, for the S3 tests and bench/s3:
# one monitor, one OSD on the in-memory object store (nothing on disk but logs and the monitor's
# small database), cluster auth off (nothing but 127.0.0.1 can reach it), S3 with SigV4 for a
# fixed test user. `start` is idempotent (an answering gateway is left alone), every wait is
# bounded, `stop` ends exactly the daemons this script started (their pid files) and removes the state.
#
#   bash scripts/rgw.sh start|stop|status|env
#
# SWPKG_RGW_DIR (default /tmp/swpkg-rgw) holds the state; SWPKG_RGW_PORT (default 7480) the
# S3 port, SWPKG_RGW_MON_PORT (default 7489) the monitor's. `env` prints the variables a test needs.
set -euo pipefail

DIR="${SWPKG_RGW_DIR:-/tmp/swpkg-rgw}"
PORT="${SWPKG_RGW_PORT:-7480}"
MON_PORT="${SWPKG_RGW_MON_PORT:-7489}"
# Fixed test credentials: this gateway only listens on 127.0.0.1 and holds throwaway data.
ACCESS_KEY="swpkgtestaccesskey01"
SECRET_KEY="swpkgtestsecretkey0000000000000000000001"
CONF="$DIR/ceph.conf"
WAIT="${SWPKG_RGW_WAIT:-90}"

say() { printf 'rgw: %s\n' "$*" >&2; }
die() {
  say "$*"
  for l in "$DIR"/log/*.log; do [ -f "$l" ] && { say "--- tail of $l"; tail -n 15 "$l" >&2; }; done
  exit 1
}

answering() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; }

print_env() {
  cat <<EOF
SWPKG_S3_ENDPOINT=http://127.0.0.1:$PORT
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=us-east-1
EOF
}

wait_for() { # seconds, description, command...
  local limit=$1 what=$2
  shift 2
  local t=0
  until "$@" >/dev/null 2>&1; do
    t=$((t + 1))
    [ "$t" -ge "$((limit * 2))" ] && die "$what did not happen within ${limit}s"
    sleep 0.5
  done
}

stop() {
  local f pid
  for f in "$DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
  done
  for f in "$DIR"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

start() {
  for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph uuidgen curl; do
    command -v "$b" >/dev/null || die "$b is not installed: run scripts/setup.sh (apt: radosgw ceph-mon ceph-osd ceph-common uuid-runtime)"
  done
  if answering && [ -f "$DIR/ready" ]; then
    say "already answering on 127.0.0.1:$PORT"
    return 0
  fi
  # A half-started or dead cluster is cleared first: the state holds nothing worth keeping.
  stop
  mkdir -p "$DIR"/{run,log,mon,osd,rgw}
  local fsid
  fsid=$(uuidgen)
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
keyring = /dev/null
[mon]
mon data = $DIR/mon/\$id
# The monitor refuses to start when its filesystem has under 5% free (a shared CI disk of 250 GB
# at 95% still has 12 GB): its database here is a few MB of throwaway state, so only a nearly
# full disk should stop it.
mon data avail crit = 1
mon data avail warn = 2
[osd]
# The OSD's own crush update at start goes out before it has the monitor map (fsid 0) under auth none; the script places it instead.
osd crush update on start = false
osd class update on start = false
osd data = $DIR/osd/\$id
osd journal = $DIR/osd/\$id/journal
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
EOF
  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" || die "ceph-mon --mkfs failed"
  # Every daemon starts with the lock's descriptor closed (9>&-): a daemon holding it would block every later rgw.sh.
  ceph-mon -c "$CONF" -i a 9>&- 2>>"$DIR/log/mon-start.log" || die "ceph-mon did not start"
  wait_for "$WAIT" "the monitor answering" timeout 5 ceph -c "$CONF" mon stat
  local id uuid
  uuid=$(uuidgen)
  id=$(timeout 30 ceph -c "$CONF" osd new "$uuid") || die "ceph osd new failed"
  mkdir -p "$DIR/osd/$id"
  ceph-osd -c "$CONF" -i "$id" --mkfs --osd-uuid "$uuid" >"$DIR/log/osd-mkfs.log" 2>&1 || die "ceph-osd --mkfs failed"
  timeout 30 ceph -c "$CONF" osd crush add "osd.$id" 1.0 host=localhost root=default >/dev/null 2>&1 || die "ceph osd crush add failed"
  ceph-osd -c "$CONF" -i "$id" 9>&- 2>>"$DIR/log/osd-start.log" || die "ceph-osd did not start"
  wait_for "$WAIT" "the OSD coming up" sh -c "timeout 5 ceph -c '$CONF' osd stat | grep -q '1 up'"
  radosgw -c "$CONF" -n client.rgw.a 9>&- || die "radosgw did not start"
  wait_for "$WAIT" "the gateway answering on 127.0.0.1:$PORT" answering
  timeout 60 radosgw-admin -c "$CONF" user create --uid=swpkg-test --display-name="swpkg tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null || die "radosgw-admin user create failed"
  touch "$DIR/ready"
  say "answering S3 on http://127.0.0.1:$PORT"
}

# Test files start the gateway in parallel: one start or stop at a time.
mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock -w 300 9 || die "another rgw.sh held $DIR.lock for 300s"

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if answering && [ -f "$DIR/ready" ]; then
      echo "running on http://127.0.0.1:$PORT"
    else
      echo "stopped"
      exit 1
    fi
    ;;
  env) print_env ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
