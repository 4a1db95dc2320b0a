#!/usr/bin/env bash
# Integration test: a site's workflow template with a mistake never takes edgeprovd down.
# Mistakes in a template are found before any node needs it: those the OS plugin sees on its
# own (a wrong type, a value out of range, a parameter that is not text) and those the core's
# check sees against the site's actions (an action no plugin offers, a parameter the action does
# not declare, an unknown ${variable}, a missing required parameter) stop edgeprovd at start,
# fail `edgeprovd --check` and `edgeprov config check`, each with the file, the line and a
# "did you mean". What only a render can see (a site setting the render needs) puts that
# node's Instance in ERROR with a status that names it; the daemon keeps serving, and a restart
# with the failed Instance stored does not crash (it used to abort in protobuf-c, on every
# restart).
# Usage: bad_template.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
make_test_tls "$tmp"
grpc=$(free_port) https=$(free_port)
sha=$(printf x | sha256sum | cut -d' ' -f1)

# site_conf CASE TEMPLATE_FILE [CA_LINE]: the site config of one case, in $tmp/CASE/site.conf.
site_conf() {
  mkdir -p "$tmp/$1"
  local tls="tls = { cert = \"$tmp/tls.pem\"; key = \"$tmp/tls.key\"; ${3-ca = \"$tmp/ca.pem\";} };"
  cat >"$tmp/$1/site.conf" <<CONF
listen = { management = "unix:$tmp/$1/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/$1/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
$tls
provisioning = { mode = "nztp"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "actions-core", "os-microvisor" ]; required = [ "os-microvisor" ]; };
os-microvisor = { image_url = "https://127.0.0.1:1/microvisor.img.zst"; image_sha256 = "$sha"; template_file = "$2"; };
CONF
}
# template FILE ACTION_ENTRY: a one-action template (the entry goes inside actions = ( ... )).
template() { printf '# a site template\nactions = (\n  %s\n);\n' "$2" >"$1"; }
daemon_pid=
start_daemon() { # CASE: (re)starts the case's daemon on ports nobody took meanwhile; its log grows
  local before
  before=$(grep -c 'msg="ready' "$tmp/$1/daemon.log" 2>/dev/null)
  grpc=$(free_port) https=$(free_port)
  sed -i -E "s/grpc = \"127.0.0.1:[0-9]+\"/grpc = \"127.0.0.1:$grpc\"/; s/https = \"127.0.0.1:[0-9]+\"/https = \"127.0.0.1:$https\"/" \
    "$tmp/$1/site.conf"
  "$build/bin/edgeprovd" --config "$tmp/$1/site.conf" >>"$tmp/$1/daemon.log" 2>&1 &
  daemon_pid=$!
  pids+=($daemon_pid)
  for _ in $(seq 200); do
    [ "$(grep -c 'msg="ready' "$tmp/$1/daemon.log")" -gt "${before:-0}" ] && return 0
    kill -0 $daemon_pid 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
stop_daemon() { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; }
instance_state() { # CASE UUID: "STATE STATUS" of the host's Instance
  local E="$build/bin/edgeprov --config $tmp/$1/site.conf"
  $E instance list --json 2>/dev/null | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    if i["host_uuid"] == sys.argv[1]: print(i["current_state"], (i["provisioning_status"] or {}).get("message"))' "$2"
}

# ---- mistakes seen up front: no start, no --check, no config check; each names file and line ----
load_case() { # NAME ENTRY EXPECTED...: the entry is line 3 of the template
  local name=$1 entry=$2 s
  shift 2
  template "$tmp/$name.conf" "$entry"
  site_conf "$name" "$tmp/$name.conf"
  timeout 20 "$build/bin/edgeprovd" --config "$tmp/$name/site.conf" >"$tmp/$name/out" 2>&1
  s=$?
  check "load: $name: edgeprovd refuses to start (exit $s)" test $s -ne 0 -a $s -ne 124
  timeout 20 "$build/bin/edgeprovd" --check --config "$tmp/$name/site.conf" >"$tmp/$name/check.out" 2>&1
  s=$?
  check "load: $name: edgeprovd --check fails (exit $s)" test $s -ne 0 -a $s -ne 124
  check "load: $name: edgeprov config check fails" run_status 1 "$tmp/$name/config-check.out" \
    "$build/bin/edgeprov" config check "$tmp/$name/site.conf"
  local expected
  for expected in "$@"; do
    check "load: $name: the daemon's log names file, line and mistake: $expected" contains "$tmp/$name/out" "$expected"
    check "load: $name: ... and so does --check" contains "$tmp/$name/check.out" "$expected"
    check "load: $name: ... and config check" contains "$tmp/$name/config-check.out" "$expected"
  done
}
# seen by the OS plugin on its own
load_case wrong-type '{ action = "disk.erase"; timeout_s = "300"; params = { target = "/dev/vda"; }; }' \
  "$tmp/wrong-type.conf: line 3: actions[0] (disk.erase): timeout_s must be an integer 1..86400"
load_case out-of-range '{ action = "disk.erase"; retries = 1000; params = { target = "/dev/vda"; }; }' \
  "$tmp/out-of-range.conf: line 3: actions[0] (disk.erase): retries must be an integer 0..100"
load_case list-param '{ action = "disk.erase"; params = { target = [ "/dev/vda" ]; }; }' \
  "$tmp/list-param.conf: line 3: actions[0] (disk.erase)"
# seen by the core, against the site's actions
load_case unknown-action '{ action = "disk.eraze"; params = { target = "${node.target_disk}"; }; }' \
  "$tmp/unknown-action.conf:3:" "actions[0]: no action 'disk.eraze' (did you mean 'disk.erase'?)"
load_case unknown-param '{ action = "disk.erase"; params = { targte = "${node.target_disk}"; }; }' \
  "$tmp/unknown-param.conf:3:" "actions[0] (disk.erase): no parameter 'targte' (did you mean 'target'?)"
load_case bad-variable '{ action = "disk.erase"; params = { target = "${node.target_dsk}"; }; }' \
  "$tmp/bad-variable.conf:3:" 'target: no variable ${node.target_dsk} (did you mean ${node.target_disk}?)'
load_case unknown-instance-variable '{ action = "file.write"; params = { target = "${node.target_disk}"; path = "/x"; content = "${host.uuuid}"; }; }' \
  "$tmp/unknown-instance-variable.conf:3:" 'content: no variable ${host.uuuid} (did you mean ${host.uuid}?)'
load_case missing-param '{ action = "file.write"; params = { target = "${node.target_disk}"; content = "x"; }; }' \
  "$tmp/missing-param.conf:3:" "actions[0] (file.write): missing required parameter 'path' (string)"
load_case bad-literal '{ action = "file.write"; params = { target = "${node.target_disk}"; path = "/x"; content = "x"; uid = "-5"; }; }' \
  "$tmp/bad-literal.conf:3:" "actions[0] (file.write): 'uid': -5 is out of range"
# every mistake at once, each on its line
printf '%s\n' 'actions = (' \
  '  { action = "disk.eraze"; params = { target = "${node.target_disk}"; }; },' \
  '  { action = "disk.erase"; params = { targte = "${node.target_disk}"; }; },' \
  '  { action = "system.reboot"; params = { mode = "reboot"; }; }' ');' >"$tmp/several.conf"
site_conf several "$tmp/several.conf"
check "load: several: config check names every mistake" run_status 1 "$tmp/several/out" \
  "$build/bin/edgeprov" config check "$tmp/several/site.conf"
check "load: several: ... the first on its line" contains "$tmp/several/out" "$tmp/several.conf:2: error: template of profile microvisor: actions[0]: no action 'disk.eraze'"
check "load: several: ... the second on its line" contains "$tmp/several/out" "$tmp/several.conf:3: error: template of profile microvisor: actions[1] (disk.erase): no parameter 'targte'"
check "load: several: ... and counts them" contains "$tmp/several/out" "site.conf: 2 errors"
check "load: several: config check started no storage (no data directory)" test ! -e "$tmp/several/data"
# the fixed template passes all three
template "$tmp/good.conf" '{ action = "disk.erase"; params = { target = "${node.target_disk}"; }; }'
site_conf good "$tmp/good.conf"
check "load: good: config check passes" run_status 0 "$tmp/good/out" "$build/bin/edgeprov" config check "$tmp/good/site.conf"
check "load: good: edgeprovd --check passes" run_status 0 "$tmp/good/check.out" "$build/bin/edgeprovd" --check --config "$tmp/good/site.conf"

# ---- mistakes seen at render: the Instance fails, the daemon serves on ----------------------
n=0
render_case() { # NAME ENTRY EXPECTED_STATUS [CA_LINE]
  local name=$1 uuid
  n=$((n + 1))
  uuid=$(printf 'bbbbbbbb-0000-4000-8000-%012d' $n)
  template "$tmp/$name.conf" "$2"
  site_conf "$name" "$tmp/$name.conf" "${4-ca = \"$tmp/ca.pem\";}"
  local E="$build/bin/edgeprov --config $tmp/$name/site.conf"
  check "render: $name: edgeprovd starts (the check cannot see this mistake)" start_daemon "$name"
  $E host add --uuid $uuid --serial BADTPL$n --os microvisor --auto-onboard >/dev/null
  mkdir -p "$tmp/$name/node/sys/class/dmi/id"
  echo $uuid >"$tmp/$name/node/sys/class/dmi/id/product_uuid"
  echo BADTPL$n >"$tmp/$name/node/sys/class/dmi/id/product_serial"
  truncate -s 1M "$tmp/$name/disk"
  "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" \
    --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot "$tmp/$name/node" --state-dir "$tmp/$name/node/state" \
    --target-disk "$tmp/$name/disk" --backoff-ms 100 --backoff-max-ms 400 --no-reboot >"$tmp/$name/agent.log" 2>&1 &
  local agent=$!
  for _ in $(seq 200); do instance_state "$name" $uuid | grep -q '^ERROR' && break; sleep 0.1; done
  kill $agent 2>/dev/null
  wait $agent 2>/dev/null
  instance_state "$name" $uuid >"$tmp/$name/state"
  check "render: $name: the Instance is in ERROR" grep -q '^ERROR Provisioning Failed: workflow: ' "$tmp/$name/state"
  check "render: $name: ... and its status names the mistake" contains "$tmp/$name/state" "$3"
  check "render: $name: edgeprovd is alive" kill -0 $daemon_pid
  check "render: $name: ... and serves" run_status 0 "$tmp/$name/out" $E host show $uuid
  check "render: $name: nothing aborted" lacks "$tmp/$name/daemon.log" "Assertion"
  stop_daemon
  check "render: $name: a restart with the failed Instance stored comes up" start_daemon "$name"
  sleep 1.5 # longer than a reconciler pass
  check "render: $name: ... and stays up" kill -0 $daemon_pid
  instance_state "$name" $uuid >"$tmp/$name/state2"
  check "render: $name: ... with the Instance still in ERROR, the same status" cmp -s "$tmp/$name/state" "$tmp/$name/state2"
  check "render: $name: the mistake was rendered once, not once per pass" \
    test "$(grep -c 'Provisioning Failed: workflow' "$tmp/$name/daemon.log")" -eq 1
  stop_daemon
}
render_case missing-ca '{ action = "disk.erase"; params = { target = "${node.target_disk}"; }; }' \
  "tls.ca: the site names no CA" ""

# ---- a damaged record in the store: skipped (and named in the log), never the whole listing ----
site=missing-ca
check "damaged: edgeprovd starts" start_daemon $site
E="$build/bin/edgeprov --config $tmp/$site/site.conf"
$E host add --uuid cccccccc-0000-4000-8000-000000000001 --serial GOODHOST1 >/dev/null
stop_daemon
python3 - "$tmp/$site/data/inventory.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE kv SET value = x'ffffffff0a' WHERE key LIKE '%instances/%'").rowcount
db.commit()
assert n == 1, n
PY
check "damaged: a restart with a damaged instance record comes up" start_daemon $site
sleep 1.5 # a reconciler pass
check "damaged: ... and stays up" kill -0 $daemon_pid
check "damaged: hosts are still listed" run_status 0 "$tmp/out" $E host list
check "damaged: ... all of them" contains "$tmp/out" "GOODHOST1"
check "damaged: the instance listing goes on without it" run_status 0 "$tmp/out" $E instance list
check "damaged: the log names the damaged record" grep -q 'instances/.*skipped in listings: record .* is corrupt' "$tmp/$site/daemon.log"
stop_daemon

finish
