#!/usr/bin/env bash
# Integration test of an agent given several orchestrator addresses (replicas, or front doors):
# it uses one at a time and moves to the next when one cannot be reached, with its backoff.
# The first address is a port nobody listens on: the node still onboards, reports in and
# runs its workflow on the second. Then the daemon is stopped and started again on another
# port, which the list also names, while a node is trying: the node finds it. Bad lists are
# refused naming the address.
# Usage: agent_failover.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
loopback_site
dead=$(free_port)
check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
E="$build/bin/edgeprov --config $tmp/site.conf"
agent() { # ORCHESTRATORS ARGS...: the agent on this test's node
  local list=$1
  shift
  "$build/bin/edgeprov-agent" --orchestrator "$list" --ca "$tmp/ca.pem" --sysroot "$tmp/node" \
    --state-dir "$tmp/node/state" --backoff-ms 100 --backoff-max-ms 400 "$@"
}

# ---- mistakes in the list -------------------------------------------------------------------------
check "a list with an empty address is refused" run_status 2 "$tmp/out" agent "127.0.0.1:$grpc,,127.0.0.1:1" --onboard-only
check "... naming it" contains "$tmp/out" "--orchestrator: address 2 ('') is not HOST:PORT"
check "an address without a port is refused" run_status 2 "$tmp/out" agent "127.0.0.1:$grpc,127.0.0.1" --onboard-only
check "... naming it" contains "$tmp/out" "address 2 ('127.0.0.1') is not HOST:PORT"
check "nine addresses are too many" run_status 2 "$tmp/out" agent "$(printf '127.0.0.1:1,%.0s' 1 2 3 4 5 6 7 8)127.0.0.1:1" --onboard-only
check "... saying so" contains "$tmp/out" "more than 8 addresses"
check "a remote address still needs --ca" run_status 2 "$tmp/out" \
  "$build/bin/edgeprov-agent" --orchestrator "127.0.0.1:$grpc,orch.example:50051" --sysroot "$tmp/node" --onboard-only
check "... naming the address" contains "$tmp/out" "--ca FILE is required for orch.example:50051"
check "a name that only starts like a loopback address needs --ca too" run_status 2 "$tmp/out" \
  "$build/bin/edgeprov-agent" --orchestrator "127.evil.example:50051" --sysroot "$tmp/node" --onboard-only
check "... naming it" contains "$tmp/out" "--ca FILE is required for 127.evil.example:50051"

# ---- the first address is down: the second serves the whole run -----------------------------------
U=aaaaaaaa-0000-4000-8000-0000000000f1
$E host add --uuid $U --serial FAILOVER1 --os microvisor --auto-onboard >/dev/null
node_sysroot "$tmp/node" $U FAILOVER1
truncate -s 1M "$tmp/disk"
# (--token-url: the default, HOST:8443 of the orchestrator in use, is not this site's port.)
check "the node onboards and runs its workflow through the second address" run_status 0 "$tmp/agent.log" \
  agent "127.0.0.1:$dead,127.0.0.1:$grpc" --token-url "https://127.0.0.1:$https/oauth2/token" \
  --target-disk "$tmp/disk" --no-reboot
check "it said it moved on" contains "$tmp/agent.log" "at 127.0.0.1:$dead failed; trying 127.0.0.1:$grpc next"
$E instance list --json >"$tmp/instances.json"
check "the workflow is done" python3 -c '
import json, sys
i = json.load(open(sys.argv[1]))
assert len(i) == 1 and i[0]["provisioning_status"]["message"].startswith("1/1: done"), i' "$tmp/instances.json"

# ---- the orchestrator moves in the middle: the node follows ----------------------------------------
V=aaaaaaaa-0000-4000-8000-0000000000f2
rm -rf "$tmp/node"
node_sysroot "$tmp/node" $V FAILOVER2
check "edgeprovd stops" stop_daemon
moved=$(free_port)
sed -i -E "s/grpc = \"127.0.0.1:[0-9]+\"/grpc = \"127.0.0.1:$moved\"/" "$tmp/site.conf"
# The agent starts while no orchestrator answers; edgeprovd comes back on the list's third address.
agent "127.0.0.1:$dead,127.0.0.1:$grpc,127.0.0.1:$moved" --onboard-only >"$tmp/agent2.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
sleep 1
check "edgeprovd starts on another address" start_daemon "$tmp/site.conf" "$tmp/daemon2.log"
$E host add --uuid $V --serial FAILOVER2 --os microvisor --auto-onboard >/dev/null
for _ in $(seq 150); do kill -0 $agent_pid 2>/dev/null || break; sleep 0.1; done
wait $agent_pid
check "the node onboarded on the address that answered (exit $?)" test -s "$tmp/node/state/credentials"
check "it went round the list" contains "$tmp/agent2.log" "trying 127.0.0.1:$moved next"

finish
