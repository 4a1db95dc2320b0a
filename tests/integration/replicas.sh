#!/usr/bin/env bash
# Integration test of two edgeprovd replicas on one PostgreSQL database (a throwaway cluster
# of its own, tests/pg_cluster.sh): each sees the other's writes at once (the store's wait:
# LISTEN/NOTIFY), and a node may use either. A node asking replica A as an unknown host is
# answered within a second of `host add` through B; a node whose workflow stream is held by A
# gets the workflow of an instance created through B and runs it to the end; a token issued
# by A is accepted by B (the replicas read one signing key file); `host invalidate` through B
# is refused by A at once. One replica leads the reconciler; killed, the other takes over
# within 5 s, and HAProxy (the repository's deploy/haproxy/edgeprov.cfg, real) takes the dead
# replica out of rotation: a node provisions through it. Every instance has one workflow.
# Usage: replicas.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
if [ -z "${PG_TEST_DIR:-}" ]; then exec bash "$src/tests/pg_cluster.sh" run bash "$0" "$@"; fi
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
make_test_tls "$tmp"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/signing-key.pem" 2>/dev/null
chmod 600 "$tmp/signing-key.pem"
sha=$(printf x | sha256sum | cut -d' ' -f1)
printf 'actions = (\n  { action = "disk.erase"; params = { target = "${node.target_disk}"; }; }\n);\n' >"$tmp/workflow.conf"

# The replicas listen on addresses of their own with the same ports, as on separate machines.
g=$(free_port) h=$(free_port)
# replica NAME ADDRESS: the site config of one replica in $tmp/NAME.
replica() {
  local dir=$tmp/$1
  mkdir -p "$dir"
  echo "$2" >"$dir/address"
  cat >"$dir/site.conf" <<CONF
listen = { management = "unix:$dir/mgmt.sock"; grpc = "$2:$g"; https = "$2:$h"; };
paths = { data = "$dir/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
provisioning = { mode = "nztp"; };
plugins = { enabled = [ "storage-postgres", "auth-local", "actions-core", "os-microvisor" ];
            required = [ "storage-postgres" ]; };
storage-postgres = { conninfo = "host=$PG_TEST_DIR dbname=edgeprov user=edgeprov"; passfile = "$PG_TEST_DIR/passfile"; };
auth-local = { key_file = "$tmp/signing-key.pem"; };
os-microvisor = { image_url = "https://127.0.0.1:1/microvisor.img.zst"; image_sha256 = "$sha"; template_file = "$tmp/workflow.conf"; };
CONF
}
replica a 127.0.0.2
replica b 127.0.0.3
"$build/bin/edgeprovd" --config "$tmp/a/site.conf" >"$tmp/a/daemon.log" 2>&1 &
pid_a=$!
pids+=($pid_a)
"$build/bin/edgeprovd" --config "$tmp/b/site.conf" >"$tmp/b/daemon.log" 2>&1 &
pid_b=$!
pids+=($pid_b)
for r in a b; do
  ok=0
  for _ in $(seq 200); do grep -q 'msg="ready' "$tmp/$r/daemon.log" && { ok=1; break; }; sleep 0.05; done
  check "replica $r starts" test $ok -eq 1
  check "replica $r is ready (GET /healthz)" run_status 0 "$tmp/$r/health" \
    curl -sf --cacert "$tmp/ca.pem" "https://$(cat "$tmp/$r/address"):$h/healthz"
  check "... with the store's revision" grep -q '^ready revision [0-9]' "$tmp/$r/health"
done
# The front door: HAProxy with the repository's configuration; its third replica is down.
fg=$(free_port) fh=$(free_port)
EDGEPROV_FRONT_GRPC=127.0.0.1:$fg EDGEPROV_FRONT_HTTPS=127.0.0.1:$fh EDGEPROV_R1=127.0.0.2 EDGEPROV_R2=127.0.0.3 \
  EDGEPROV_R3=127.0.0.4 EDGEPROV_GRPC_PORT=$g EDGEPROV_HTTPS_PORT=$h \
  haproxy -db -f "$src/deploy/haproxy/edgeprov.cfg" >"$tmp/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null --cacert "$tmp/ca.pem" "https://127.0.0.1:$fh/healthz" && break; sleep 0.05; done
check "HAProxy passes /healthz through to a replica" run_status 0 "$tmp/out" \
  curl -sf --cacert "$tmp/ca.pem" "https://127.0.0.1:$fh/healthz"
A="$build/bin/edgeprov --config $tmp/a/site.conf"
B="$build/bin/edgeprov --config $tmp/b/site.conf"
# agent GRPC HTTPS NODE_DIR ARGS...: the node of NODE_DIR against one replica or the front door
# (GRPC and HTTPS are ADDRESS:PORT); an agent retries for ever, the test gives it a minute.
agent() {
  local grpc=$1 https=$2 node=$3
  shift 3
  timeout 60 "$build/bin/edgeprov-agent" --orchestrator "$grpc" --ca "$tmp/ca.pem" \
    --token-url "https://$https/oauth2/token" --sysroot "$node" --state-dir "$node/state" \
    --backoff-ms 100 --backoff-max-ms 200 "$@"
}
ga=127.0.0.2:$g ha=127.0.0.2:$h gb=127.0.0.3:$g hb=127.0.0.3:$h

# ---- an unknown node waiting on A is answered as soon as B registers it ---------------------------
U1=cccccccc-0000-4000-8000-000000000001
node_sysroot "$tmp/n1" $U1 REPLICA01
agent $ga $ha "$tmp/n1" --onboard-only >"$tmp/n1.log" 2>&1 &
n1=$!
pids+=($n1)
for _ in $(seq 100); do grep -qs "not registered yet" "$tmp/n1.log" && break; sleep 0.05; done
check "the node is waiting on A as an unknown host" grep -q "not registered yet" "$tmp/n1.log"
added=$(date +%s.%N)
$B host add --uuid $U1 --serial REPLICA01 --os microvisor --auto-onboard >/dev/null
wait $n1
answered=$(date +%s.%N)
check "A onboarded the node B registered" test -s "$tmp/n1/state/credentials"
check "... within a second of the host add through B ($(python3 -c "print(round($answered - $added, 2))") s)" \
  python3 -c "import sys; sys.exit(0 if $answered - $added < 1.0 else 1)"

# ---- a token issued by A is accepted by B; a workflow B made is pushed by A ------------------------
check "B reports in with a token A issued" run_status 0 "$tmp/n1-b.log" agent $gb $ha "$tmp/n1" --onboard-only
check "... (a token from A's endpoint, B's node API)" contains "$tmp/n1-b.log" "reported in on the node API"
truncate -s 1M "$tmp/n1.disk"
check "the node runs its workflow on A to the end" run_status 0 "$tmp/n1-run.log" \
  agent $ga $ha "$tmp/n1" --target-disk "$tmp/n1.disk" --no-reboot
instance=$($B host show $U1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')
check "B sees the workflow A ran as done" run_status 0 "$tmp/out" $B instance show "$instance"
check "... 1/1: done" contains "$tmp/out" "1/1: done"

# A node whose workflow stream A holds gets the workflow of an instance created through B.
U2=cccccccc-0000-4000-8000-000000000002
$A host add --uuid $U2 --serial REPLICA02 >/dev/null
node_sysroot "$tmp/n2" $U2 REPLICA02
$B host approve $U2 >/dev/null
check "a second node onboards on A" run_status 0 "$tmp/n2-onboard.log" agent $ga $ha "$tmp/n2" --onboard-only
truncate -s 1M "$tmp/n2.disk"
agent $ga $ha "$tmp/n2" --target-disk "$tmp/n2.disk" --no-reboot >"$tmp/n2-run.log" 2>&1 &
n2=$!
pids+=($n2)
sleep 1 # its workflow stream on A waits: the host has no instance yet
check "an instance is created through B" run_status 0 "$tmp/out" $B instance create $U2 --os microvisor
for _ in $(seq 100); do kill -0 $n2 2>/dev/null || break; sleep 0.1; done
wait $n2
status=$?
check "A pushed B's workflow to the node, which ran it (agent exit $status)" test $status -eq 0
instance=$($A host show $U2 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')
check "... to the end" run_status 0 "$tmp/out" $A instance show "$instance"
check "... 1/1: done" contains "$tmp/out" "1/1: done"

# ---- invalidation through B is refused by A at once -----------------------------------------------
check "B invalidates the first node" run_status 0 "$tmp/out" $B host invalidate $U1
check "A refuses its credentials at once" run_status 1 "$tmp/n1-after.log" agent $ga $ha "$tmp/n1" --installed
check "... saying so" contains "$tmp/n1-after.log" "refused the credentials"

# ---- one reconciler: the leader is killed, the other takes over within 5 s ------------------------
leads() { grep -c 'reconciler: this replica leads it now' "$tmp/$1/daemon.log"; }
check "exactly one replica leads the reconciler" test $(($(leads a) + $(leads b))) -eq 1
if [ "$(leads a)" -eq 1 ]; then leader=a survivor=b pid=$pid_a; else leader=b survivor=a pid=$pid_b; fi
kill -KILL $pid
killed=$(date +%s.%N)
wait $pid 2>/dev/null
for _ in $(seq 100); do [ "$(leads $survivor)" -eq 1 ] && break; sleep 0.1; done
took=$(python3 -c "import time; print(round(time.time() - $killed, 2))")
check "replica $survivor leads the reconciler once $leader is killed ($took s)" test "$(leads $survivor)" -eq 1
check "... within 5 s" python3 -c "import sys; sys.exit(0 if $took < 5 else 1)"
S="$build/bin/edgeprov --config $tmp/$survivor/site.conf"
U3=cccccccc-0000-4000-8000-000000000003
$S host add --uuid $U3 --serial REPLICA03 --os microvisor --auto-onboard >/dev/null
node_sysroot "$tmp/n3" $U3 REPLICA03
truncate -s 1M "$tmp/n3.disk"
sleep 2.5 # HAProxy's checks (a second apart, two to fail) take the killed replica out
check "a node provisions through HAProxy: the survivor serves it, its reconciler rendered the workflow" \
  run_status 0 "$tmp/n3.log" agent 127.0.0.1:$fg 127.0.0.1:$fh "$tmp/n3" --target-disk "$tmp/n3.disk" --no-reboot
check "HAProxy saw the killed replica go down" grep -qE "Server replicas_grpc/r[12] is DOWN" "$tmp/haproxy.log"
check "... and the one that never came up" grep -q "Server replicas_grpc/r3 is DOWN" "$tmp/haproxy.log"

# ---- one of each, whoever wrote it -----------------------------------------------------------------
check "each instance has one workflow and each host one credential" python3 - "$PG_TEST_DIR" <<'PY'
import subprocess, sys
def q(sql):
    return subprocess.run(["psql", "-h", sys.argv[1], "-U", "postgres", "-d", "edgeprov", "-Atc", sql],
                          check=True, capture_output=True, text=True).stdout.split()
instances = q("SELECT count(*) FROM edgeprov_kv WHERE key LIKE 'instances/%'")
workflows = q("SELECT count(*) FROM edgeprov_kv WHERE key LIKE 'workflows/%'")
assert instances == workflows == ["3"], (instances, workflows)
PY

# ---- the database goes away and comes back: the replica answers UNAVAILABLE and recovers -------
hs=$(cat "$tmp/$survivor/address"):$h
bash "$src/tests/pg_cluster.sh" halt "$PG_TEST_DIR"
for _ in $(seq 30); do curl -sf -o /dev/null --cacert "$tmp/ca.pem" "https://$hs/healthz" || break; sleep 0.1; done
check "with the database gone, /healthz says not ready (within its 0.5 s cache)" run_status 22 "$tmp/out" \
  curl -sf --cacert "$tmp/ca.pem" "https://$hs/healthz"
curl -s --cacert "$tmp/ca.pem" "https://$hs/healthz" >"$tmp/out"
check "... saying nothing of the database (the answer is public)" lacks "$tmp/out" 'database'
check "... which the replica's log names" grep -q 'component=health msg="not ready: .*database' "$tmp/$survivor/daemon.log"
check "... never with its password" lacks "$tmp/$survivor/daemon.log" "$(cat "$PG_TEST_DIR/password")"
check "an operator's call fails at once, not a hang" run_status 1 "$tmp/out" timeout 30 $S host list
check "... naming the database" contains "$tmp/out" 'database "edgeprov"'
node_sysroot "$tmp/n4" cccccccc-0000-4000-8000-000000000004 REPLICA04
agent 127.0.0.1:$fg 127.0.0.1:$fh "$tmp/n4" --onboard-only >"$tmp/n4.log" 2>&1 &
n4=$!
for _ in $(seq 100); do grep -qs "UNAVAILABLE" "$tmp/n4.log" && break; sleep 0.1; done
kill $n4 2>/dev/null
wait $n4 2>/dev/null
check "a node is answered UNAVAILABLE (it backs off and asks again)" grep -q "onboarding at .*: UNAVAILABLE: .*database" "$tmp/n4.log"
check "the replica keeps running" kill -0 $( [ $survivor = a ] && echo $pid_a || echo $pid_b )
bash "$src/tests/pg_cluster.sh" resume "$PG_TEST_DIR"
for _ in $(seq 100); do curl -sf -o /dev/null --cacert "$tmp/ca.pem" "https://$hs/healthz" && break; sleep 0.1; done
check "once it is back the replica is ready again by itself" run_status 0 "$tmp/out" \
  curl -sf --cacert "$tmp/ca.pem" "https://$hs/healthz"
check "... and serves" run_status 0 "$tmp/out" $S host list
check "... all the hosts" contains "$tmp/out" REPLICA03

# ---- a replica that cannot reach its database does not start, and says why in one line ---------
sed -e "s|host=$PG_TEST_DIR|host=$tmp/nowhere|" -e "s|unix:$tmp/a/mgmt.sock|unix:$tmp/c.sock|" "$tmp/a/site.conf" >"$tmp/c.conf"
check "no database: edgeprovd refuses to start" run_status 1 "$tmp/c.out" timeout 30 "$build/bin/edgeprovd" --config "$tmp/c.conf"
check "... in one line naming the host and database" grep -qE "not starting: .*cannot connect to database .*edgeprov.* on host $tmp/nowhere port" "$tmp/c.out"
printf '*:*:*:edgeprov:wrong-password\n' >"$tmp/wrong.pass"
chmod 600 "$tmp/wrong.pass"
sed -e "s|passfile = \"$PG_TEST_DIR/passfile\"|passfile = \"$tmp/wrong.pass\"|" -e "s|unix:$tmp/a/mgmt.sock|unix:$tmp/c.sock|" \
  "$tmp/a/site.conf" >"$tmp/c.conf"
check "a wrong password: edgeprovd refuses to start" run_status 1 "$tmp/c.out" timeout 30 "$build/bin/edgeprovd" --config "$tmp/c.conf"
check "... saying the password was refused" grep -qi "password" "$tmp/c.out"
check "... never the password itself" lacks "$tmp/c.out" "wrong-password"

check "the survivor logged no error" lacks "$tmp/$survivor/daemon.log" "level=error"

finish
