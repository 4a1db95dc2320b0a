#!/usr/bin/env bash
# Integration test: real edgeprov-agent processes on fake sysroots onboard at a real
# edgeprovd (storage-sqlite, auth-local): pre-registered, unknown then added, REGISTERED then
# approved, mismatched serial, nZTP and non-ZTP; the secret shows nowhere but on the node.
# A node's plugins (no site config there): one whose init needs its required setting is named
# with its reason, and a missing action says which plugins did not start.
# Usage: agent.sh SOURCE_DIR BUILD_DIR TEST_PLUGIN_DIR TEST_PLUGIN_REQUIRED_DIR TEST_PLUGIN_NODE_DIR
set -u
src=$1 build=$2 node_plugins=$5
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER

# make_node DIR UUID SERIAL MAC IP: a sysroot as the agent reads it on a real node.
make_node() {
  local d=$tmp/$1
  mkdir -p "$d/sys/class/dmi/id" "$d/sys/class/net/eth0" "$d/sys/class/net/lo" "$d/sys/block/vda" "$d/proc/net"
  echo "$2" >"$d/sys/class/dmi/id/product_uuid"
  echo "$3" >"$d/sys/class/dmi/id/product_serial"
  echo "$4" >"$d/sys/class/net/eth0/address"
  echo up >"$d/sys/class/net/eth0/operstate"
  echo 00:00:00:00:00:00 >"$d/sys/class/net/lo/address"
  echo 67108864 >"$d/sys/block/vda/size"
  echo 0 >"$d/sys/block/vda/removable"
  printf 'processor\t: 0\nprocessor\t: 1\n' >"$d/proc/cpuinfo"
  printf 'MemTotal:        4030464 kB\n' >"$d/proc/meminfo"
  printf 'Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- %s\n        /32 host LOCAL\n' "$5" \
    >"$d/proc/net/fib_trie"
}


start_daemon() { # NAME MODE [EXTRA CONFIG] [SCHEME]: sets NAME_port and NAME_token (the token URL)
  local name=$1 port https
  port=$(free_port) https=$(free_port)
  cat >"$tmp/$name.conf" <<CONF
listen = { management = "unix:$tmp/$name.sock"; grpc = "127.0.0.1:$port"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/$name-data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
plugins = { enabled = [ "storage-sqlite", "auth-local" ]; };
provisioning = { mode = "$2"; };
${3:-}
CONF
  "$build/bin/edgeprovd" --config "$tmp/$name.conf" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do grep -q 'msg="ready' "$tmp/$name.log" && break; sleep 0.05; done
  eval "${name}_port=$port"
  eval "${name}_token=${4:-http}://127.0.0.1:$https/oauth2/token"
}

agent() { # NAME DAEMON NODE_DIR: runs an agent in the background, pid in $agent_pid
  local port token
  eval "port=\$${2}_port token=\$${2}_token"
  "$build/bin/edgeprov-agent" --onboard-only --orchestrator "127.0.0.1:$port" --token-url "$token" --sysroot "$tmp/$3" --state-dir "$tmp/$3/state" \
    --backoff-ms 100 --backoff-max-ms 400 >"$tmp/$1.agent.log" 2>&1 &
  agent_pid=$!
  pids+=($agent_pid)
}

wait_exit() { # PID SECONDS: waits for the process to end with status 0
  for _ in $(seq $(($2 * 20))); do kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }; sleep 0.05; done
  return 124
}

running() { kill -0 "$1" 2>/dev/null; }

start_daemon zt nztp
E="$build/bin/edgeprov --config $tmp/zt.conf"
U1=aaaaaaaa-0000-4000-8000-000000000001
U2=aaaaaaaa-0000-4000-8000-000000000002
U3=aaaaaaaa-0000-4000-8000-000000000003
U4=aaaaaaaa-0000-4000-8000-000000000004
make_node n1 $U1 NODESER01 52:54:00:aa:00:01 10.0.2.11
make_node n2 $U2 NODESER02 52:54:00:aa:00:02 10.0.2.12
make_node n3 $U3 NODESER03 52:54:00:aa:00:03 10.0.2.13
make_node n4 $U4 NODESER04 52:54:00:aa:00:04 10.0.2.14

# 1. A pre-registered node onboards at once; nZTP creates its instance.
$E host add --uuid $U1 --serial NODESER01 --os ubuntu-22.04 --auto-onboard >/dev/null
agent a1 zt n1
check "pre-registered: agent onboards and exits 0" wait_exit $agent_pid 10
check "agent logged what it discovered" contains "$tmp/a1.agent.log" "node uuid=$U1 serial=NODESER01 mac=52:54:00:aa:00:01 ip=10.0.2.11 nics=1 disks=1 cpus=2 memory=3936MiB"
check "credentials stored 0600" test "$(stat -c %a "$tmp/n1/state/credentials")" = 600
check "credentials hold the client id" grep -q "^client_id=edgenode-$U1$" "$tmp/n1/state/credentials"
$E host show $U1 >"$tmp/out"
check "host is ONBOARDED" contains "$tmp/out" "desired ONBOARDED, current ONBOARDED"
check "reported IP recorded" contains "$tmp/out" "ip:            10.0.2.11"
check "nZTP created the instance" grep -qE "^instance: +[0-9a-f-]{36}$" "$tmp/out"
check "agent obtained a token" contains "$tmp/a1.agent.log" "obtained a bearer token at $zt_token"
check "agent reported in with it" contains "$tmp/a1.agent.log" "reported in on the node API"
check "its report is the host's status" contains "$tmp/out" "Micro-OS: onboarded, token obtained"
check "a second run sees its credentials" run_status 0 "$tmp/out" "$build/bin/edgeprov-agent" --onboard-only --orchestrator "127.0.0.1:$zt_port" \
  --token-url "$zt_token" --sysroot "$tmp/n1" --state-dir "$tmp/n1/state"
check "and does not onboard again" contains "$tmp/out" "already onboarded"
check "but reports in again" contains "$tmp/out" "reported in on the node API"
# A second node with n1's identifiers (a copy, or n1 after losing its disk) gets nothing: n1
# used its credentials, so they can never be on their way still.
cp -r "$tmp/n1" "$tmp/n1copy" && rm -rf "$tmp/n1copy/state"
"$build/bin/edgeprov-agent" --onboard-only --orchestrator "127.0.0.1:$zt_port" --token-url "$zt_token" \
  --sysroot "$tmp/n1copy" --state-dir "$tmp/n1copy/state" --backoff-ms 100 --backoff-max-ms 200 >"$tmp/copy.log" 2>&1 &
copy_pid=$!
pids+=($copy_pid)
for _ in $(seq 100); do grep -q "already has credentials" "$tmp/copy.log" && break; sleep 0.05; done
check "a copy of a node that used its credentials is refused" contains "$tmp/copy.log" "already has credentials"
kill $copy_pid 2>/dev/null
check "... and gets none" test ! -e "$tmp/n1copy/state/credentials"
$E host show $U1 >"$tmp/out"
check "the host's credentials count as used" sh -c "! grep -q '^credentials:' '$tmp/out'"
secret=$(sed -n 's/^client_secret=//p' "$tmp/n1/state/credentials") # checked in 7
$E host invalidate $U1 >/dev/null
check "revoked credentials: the agent fails" run_status 1 "$tmp/out" "$build/bin/edgeprov-agent" --onboard-only --orchestrator "127.0.0.1:$zt_port" \
  --token-url "$zt_token" --sysroot "$tmp/n1" --state-dir "$tmp/n1/state"
check "and says the token endpoint refused them" contains "$tmp/out" "refused the credentials of edgenode-$U1 (HTTP 401)"
check "and removes them, so its next start onboards afresh" test ! -e "$tmp/n1/state/credentials"

# 2. An unknown node waits, then onboards once an operator adds it.
agent a2 zt n2
sleep 1
check "unknown node keeps waiting" running $agent_pid
check "it was told it is not registered" contains "$tmp/a2.agent.log" "not registered yet"
$E host add --uuid $U2 --serial NODESER02 --auto-onboard >/dev/null
check "once added it onboards" wait_exit $agent_pid 10
check "no profile, no instance" sh -c "$E host show $U2 | grep -q '^instance: *-$'"

# 3. A REGISTERED node waits until an operator approves it.
$E host add --uuid $U3 --serial NODESER03 >/dev/null
agent a3 zt n3
sleep 1
check "registered node keeps waiting" running $agent_pid
check "it waits for approval" contains "$tmp/a3.agent.log" "waiting for approval"
check "host shows REGISTERED" sh -c "$E host show $U3 | grep -q 'desired REGISTERED, current REGISTERED'"
$E host approve $U3 >/dev/null
check "approved, it onboards" wait_exit $agent_pid 10

# 4. A mismatched serial is refused and recorded; the node hears what an unknown node hears
#    (SECURITY.md finding 1: no enumeration oracle).
$E host add --uuid $U4 --serial OTHERSER4 --auto-onboard >/dev/null
agent a4 zt n4
sleep 1
check "mismatched node is not onboarded" running $agent_pid
kill $agent_pid
check "agent was told it is not registered (with these identifiers)" contains "$tmp/a4.agent.log" "is not registered (or not with these identifiers)"
check "mismatch recorded on the host" sh -c "$E host show $U4 | grep -q \"registration:  Onboarding refused: the node's serial is not the registered one\""
check "and logged with what the node sent" grep -q "host $U4: refused a node from 127.0.0.1: serial NODESER04" "$tmp/zt.log"
check "no credentials on the node" test ! -e "$tmp/n4/state/credentials"

# 5. Non-ZTP: onboarding does not create the instance; the operator does.
start_daemon nz non-ztp
N="$build/bin/edgeprov --config $tmp/nz.conf"
make_node n5 $U1 NODESER01 52:54:00:aa:00:01 10.0.2.11
$N host add --uuid $U1 --serial NODESER01 --os ubuntu-22.04 --auto-onboard >/dev/null
agent a5 nz n5
check "non-ZTP: onboards" wait_exit $agent_pid 10
check "non-ZTP: no instance yet" sh -c "$N host show $U1 | grep -q '^instance: *-$'"
check "non-ZTP: operator creates it" run_status 0 "$tmp/out" $N instance create $U1

# 6. Over TLS: the agent trusts the orchestrator's CA and nothing else.
( cd "$tmp" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 1 \
    -subj /CN=edgeprov-test-ca && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key \
    -out tls.csr -subj /CN=localhost && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' >ext && openssl x509 -req \
    -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 1 -extfile ext \
    && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.pem -days 1 \
    -subj /CN=other ) >/dev/null 2>&1
chmod 600 "$tmp/tls.key"
start_daemon tl nztp "tls = { cert = \"$tmp/tls.pem\"; key = \"$tmp/tls.key\"; };" https
T="$build/bin/edgeprov --config $tmp/tl.conf"
make_node n6 $U2 NODESER02 52:54:00:aa:00:02 10.0.2.12
$T host add --uuid $U2 --serial NODESER02 --auto-onboard >/dev/null
"$build/bin/edgeprov-agent" --onboard-only --orchestrator "127.0.0.1:$tl_port" --ca "$tmp/other.pem" --sysroot "$tmp/n6" \
  --state-dir "$tmp/n6/state" --backoff-ms 100 --backoff-max-ms 200 >"$tmp/a6.agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
sleep 1
check "TLS: a wrong CA is not trusted" running $agent_pid
kill $agent_pid
check "TLS: nothing was issued to it" test ! -e "$tmp/n6/state/credentials"
"$build/bin/edgeprov-agent" --onboard-only --orchestrator "127.0.0.1:$tl_port" --token-url "$tl_token" --ca "$tmp/ca.pem" --sysroot "$tmp/n6" \
  --state-dir "$tmp/n6/state" --backoff-ms 100 --backoff-max-ms 200 >"$tmp/a7.agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
check "TLS: with the orchestrator's CA it onboards" wait_exit $agent_pid 10
check "TLS: and gets its token over HTTPS" contains "$tmp/a7.agent.log" "obtained a bearer token at https://"
check "agent refuses plaintext off loopback" run_status 2 "$tmp/out" "$build/bin/edgeprov-agent" --onboard-only --orchestrator 10.0.0.1:7443 \
  --sysroot "$tmp/n6"

# 7. The secret is on the node only.
check "secret is 43 characters" test ${#secret} -eq 43
$E host show $U1 --json >"$tmp/show.json"
$E events --json >"$tmp/events.json"
check "not in host show" lacks "$tmp/show.json" "$secret"
check "not in events" lacks "$tmp/events.json" "$secret"
check "not in any daemon or agent log" absent -rF -- "$secret" "$tmp"/*.log
check "not in the store" absent -raF -- "$secret" "$tmp/zt-data"

# 8. A node's plugins run without the site's settings. The orchestrator has osact (an OS profile
#    and actions, its image_url set); the node has only needy, whose init wants its required
#    setting: the agent names the file and the reason, and the workflow's action that is not
#    there says which plugin did not start, in the instance's status too.
np_port=$(free_port) np_https=$(free_port)
cat >"$tmp/np.conf" <<CONF
listen = { management = "unix:$tmp/np.sock"; grpc = "127.0.0.1:$np_port"; https = "127.0.0.1:$np_https"; };
paths = { data = "$tmp/np-data"; plugins = [ "$build/lib/edgeprov/plugins", "$node_plugins" ]; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "osact" ]; };
provisioning = { mode = "nztp"; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
osact = { image_url = "file:///srv/osact.img"; };
CONF
"$build/bin/edgeprovd" --config "$tmp/np.conf" >"$tmp/np.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q 'msg="ready' "$tmp/np.log" && break; sleep 0.05; done
np_token=https://127.0.0.1:$np_https/oauth2/token
P="$build/bin/edgeprov --config $tmp/np.conf"
mkdir -p "$tmp/nodeplugins" && cp "$node_plugins/needy.so" "$tmp/nodeplugins/"
U8=aaaaaaaa-0000-4000-8000-000000000008
make_node n8 $U8 NODESER08 52:54:00:aa:00:08 10.0.2.18
$P host add --uuid $U8 --serial NODESER08 --os osact-1 --auto-onboard >/dev/null
"$build/bin/edgeprov-agent" --orchestrator "127.0.0.1:$np_port" --ca "$tmp/ca.pem" --token-url "$np_token" --sysroot "$tmp/n8" \
  --state-dir "$tmp/n8/state" --plugins "$tmp/nodeplugins" --no-reboot --backoff-ms 100 --backoff-max-ms 200 \
  >"$tmp/a8.agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
for _ in $(seq 200); do grep -qs "waiting for an operator" "$tmp/a8.agent.log" && break; sleep 0.05; done
kill $agent_pid 2>/dev/null
check "node: the plugin that cannot start is named with its reason" contains "$tmp/a8.agent.log" \
  "warning: plugin $tmp/nodeplugins/needy.so: init failed: setting 'endpoint' is required"
check "node: the workflow's action is missing, and why" contains "$tmp/a8.agent.log" \
  "no action 'test.count' in the loaded plugins (see: edgeprov actions list); not usable on this node: plugin $tmp/nodeplugins/needy.so: init failed: setting 'endpoint' is required"
$P instance list --json >"$tmp/out" 2>&1
check "node: the instance's status says so too" contains "$tmp/out" "not usable on this node: plugin $tmp/nodeplugins/needy.so: init failed"

finish
