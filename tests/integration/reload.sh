#!/usr/bin/env bash
# Integration test of the site config's reload (SIGHUP to edgeprovd, issue 19): a reloadable
# change takes effect in the running daemon (logs.level: the INFO line of an onboarding is no
# longer written; southbound.unknown_streams_max: an unknown node's agent is now refused naming
# the budget); a restart-only change (listen.https) is logged as such and the old listener
# still serves; a config with an error is refused naming the key and nothing of it is applied;
# under a notify socket every reload is framed by RELOADING=1 and READY=1; SIGTERM still stops
# it cleanly. The daemon is started with a relative --config, which it reads again on reload.
# Usage: reload.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch

loopback_site
other_https=$(free_port)
cp "$tmp/site.conf" "$tmp/base.conf"
# site EXTRA...: site.conf = the base site plus the lines given (written in place: a reload
# reads whatever the file holds when the signal arrives).
site() {
  { cat "$tmp/base.conf"; printf '%s\n' "$@"; } >"$tmp/site.conf.new" && mv "$tmp/site.conf.new" "$tmp/site.conf"
}
site 'logs = { level = "info"; };'

# The notify socket systemd would give a Type=notify unit: each datagram one line of $tmp/notify.log.
systemd=0
ldd "$build/bin/edgeprovd" | grep -q libsystemd && systemd=1
if [ $systemd = 1 ]; then
  : >"$tmp/notify.log"
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        f.flush()
' "$tmp/notify.sock" "$tmp/notify.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$tmp/notify.sock" ] && break; sleep 0.05; done
fi

# hup N: SIGHUP, then waits until the reload is done: the Nth READY=1 (the first is startup's)
# under the notify socket; without one (edgeprovd built without libsystemd) nothing says so: 1 s.
hup() {
  kill -HUP "$daemon"
  [ $systemd = 1 ] || { sleep 1; return 0; }
  for _ in $(seq 200); do
    [ "$(grep -c 'READY=1' "$tmp/notify.log")" -ge "$1" ] && return 0
    sleep 0.05
  done
  echo "---- reload $1 did not finish:"; sed 's/^/    /' "$tmp/daemon.log"; return 1
}
# healthz PORT: what GET /healthz on 127.0.0.1:PORT answers (000 when nothing answers).
healthz() {
  curl -s --max-time 5 --cacert "$tmp/ca.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$1/healthz"
}
# The CLI reads a config of its own: site.conf is invalid for a while below.
cp "$tmp/base.conf" "$tmp/cli.conf"
E="$build/bin/edgeprov --config $tmp/cli.conf"
# onboard NAME UUID SERIAL: registers a host that onboards by itself and onboards its node (own
# sysroot and state directory $tmp/NAME; agent log $tmp/NAME.log).
onboard() {
  $E host add --uuid "$2" --serial "$3" --os microvisor --auto-onboard >/dev/null &&
    node_sysroot "$tmp/$1" "$2" "$3" &&
    run_status 0 "$tmp/$1.log" node_agent --sysroot "$tmp/$1" --state-dir "$tmp/$1/state" --onboard-only
}
# first_reload_holds WHEN NODE UUID UNKNOWN_UUID: what the first reload set holds: node NODE onboards
# and, at warn, its onboarding (INFO) is not logged; an unknown node is refused for
# southbound.unknown_streams_max (0).
first_reload_holds() {
  check "$1: node $2 onboards" onboard "$2" "$3" "SERIAL$2"
  check "$1: at warn, its onboarding (INFO) is not logged" lacks "$tmp/daemon.log" "host $3 onboarded as"
  unknown_node "u$2" "$4"
  check "$1: an unknown node is refused for southbound.unknown_streams_max" contains "$tmp/u$2.log" \
    "too many unregistered nodes are waiting (southbound.unknown_streams_max)"
}
# unknown_node NAME UUID: an agent whose node the inventory does not know, for 3 s (log $tmp/NAME.log).
unknown_node() {
  node_sysroot "$tmp/$1" "$2" "SERIAL$1"
  timeout 3 "$build/bin/edgeprov-agent" --orchestrator "127.0.0.1:$grpc" --ca "$tmp/ca.pem" \
    --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot "$tmp/$1" --state-dir "$tmp/$1/state" \
    --backoff-ms 100 --backoff-max-ms 400 --onboard-only >"$tmp/$1.log" 2>&1
  return 0
}

# ---- startup, from a relative --config -------------------------------------------------------
cd "$tmp" || exit 1
NOTIFY_SOCKET=$tmp/notify.sock check "edgeprovd starts with --config site.conf (relative)" \
  start_daemon site.conf "$tmp/daemon.log"
cd / || exit 1
check "it names the config by its absolute path" contains "$tmp/daemon.log" "config=$tmp/site.conf"
[ $systemd = 1 ] && check "it told the notify socket READY=1 once up" grep -q 'READY=1' "$tmp/notify.log"
check "the HTTPS listener serves" test "$(healthz $https)" = 200
check "node A onboards" onboard a 11111111-1111-4111-8111-111111111111 SERIALa
check "at info, its onboarding is logged" contains "$tmp/daemon.log" \
  'host 11111111-1111-4111-8111-111111111111 onboarded as'
unknown_node u1 aaaaaaaa-1111-4111-8111-111111111111
check "an unknown node is not refused for the unknown-node budget (default 1000)" \
  lacks "$tmp/u1.log" "southbound.unknown_streams_max"

# ---- reloadable settings: applied ------------------------------------------------------------
site 'logs = { level = "warn"; };' 'southbound = { unknown_streams_max = 0; };'
check "SIGHUP: the reload ends" hup 2
check "it logs logs.level applied" contains "$tmp/daemon.log" 'msg="logs.level: warn (was info)"'
check "it logs southbound.unknown_streams_max applied" contains "$tmp/daemon.log" \
  'msg="southbound.unknown_streams_max: 0 (was 1000)"'
check "it sums the reload up" contains "$tmp/daemon.log" "$tmp/site.conf reloaded: 2 setting(s) applied, 0 take effect at restart"
check "no setting is said to wait for a restart" lacks "$tmp/daemon.log" "takes effect at restart"
if [ $systemd = 1 ]; then
  check "the reload told systemd RELOADING=1 (with MONOTONIC_USEC)" grep -q '^RELOADING=1 MONOTONIC_USEC=[0-9]' \
    "$tmp/notify.log"
  check "then READY=1" test "$(tail -n1 "$tmp/notify.log")" = "READY=1"
fi
first_reload_holds "applied" b 22222222-2222-4222-8222-222222222222 bbbbbbbb-2222-4222-8222-222222222222

# ---- a restart-only setting: logged, the old listener serves ---------------------------------
sed -e "s|https = \"127.0.0.1:$https\"|https = \"127.0.0.1:$other_https\"|" \
  -e 's|image_url = "https://127.0.0.1:1/|image_url = "https://127.0.0.1:2/|' "$tmp/base.conf" >"$tmp/moved.conf"
check "the moved site names another HTTPS port" contains "$tmp/moved.conf" "127.0.0.1:$other_https"
check "and another OS image URL" contains "$tmp/moved.conf" 'image_url = "https://127.0.0.1:2/'

{ cat "$tmp/moved.conf"; echo 'logs = { level = "warn"; };'; echo 'southbound = { unknown_streams_max = 0; };'
  echo 'onboarding = { tpm_identity = "required"; };'; } >"$tmp/site.conf"
check "SIGHUP again: the reload ends" hup 3
check "it warns that listen.https takes effect at restart" contains "$tmp/daemon.log" \
  'level=warn component=reload msg="listen.https changed: takes effect at restart"'
check "and that the os-microvisor section does too" contains "$tmp/daemon.log" \
  'level=warn component=reload msg="os-microvisor changed: takes effect at restart"'
check "and that onboarding.tpm_identity does too" contains "$tmp/daemon.log" \
  'level=warn component=reload msg="onboarding.tpm_identity changed: takes effect at restart"'
check "provisioning.mode is not said to have changed" lacks "$tmp/daemon.log" "provisioning.mode changed"
check "the old HTTPS listener still serves" test "$(healthz $https)" = 200
check "nothing serves on the new port" test "$(healthz $other_https)" = 000

# ---- an invalid config: refused whole, naming the key ----------------------------------------
lines_before=$(wc -l <"$tmp/daemon.log")
site 'logs = { level = "info"; };' 'southbound = { unknown_streams_max = 1000; unfinished_onboarding_s = 5; };'
check "SIGHUP with an error in the file: the reload ends" hup 4
tail -n +$((lines_before + 1)) "$tmp/daemon.log" >"$tmp/invalid.log"
check "the error names the key and the reason" contains "$tmp/invalid.log" \
  "'southbound.unfinished_onboarding_s': 5 is out of range [10, 3600]"
check "the reload is refused, the daemon goes on" contains "$tmp/invalid.log" \
  "$tmp/site.conf not reloaded: 1 error(s) (above); still running on the previous settings"
check "the HTTPS listener still serves" test "$(healthz $https)" = 200
first_reload_holds "after the refused reload, still" c 33333333-3333-4333-8333-333333333333 \
  cccccccc-3333-4333-8333-333333333333

# ---- back to a valid file, then SIGTERM ------------------------------------------------------
site 'logs = { level = "info"; };'
check "SIGHUP with the file fixed: the reload ends" hup 5
check "node D onboards" onboard d 44444444-4444-4444-8444-444444444444 SERIALd
check "at info again, its onboarding is logged" contains "$tmp/daemon.log" \
  'host 44444444-4444-4444-8444-444444444444 onboarded as'
check "SIGTERM stops it with status 0" stop_daemon
check "it logs that it stopped" contains "$tmp/daemon.log" 'msg="stopped"'
finish
