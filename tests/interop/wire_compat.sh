#!/usr/bin/env bash
# Wire compatibility: an independent client (Node.js @grpc/grpc-js, with a .proto written from
# the reference field list) onboards a node against a real edgeprovd. The first attempt finds
# the node unknown (NOT_FOUND, stream kept open); after an operator adds it, it onboards.
# Usage: wire_compat.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
. "$src/tests/interop/npm_install.sh"
cp "$src/tests/interop/onboard.js" "$src/tests/interop/onboarding_client.proto" "$modules/"

port=$(free_port)
cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$port"; https = "127.0.0.1:0"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
plugins = { enabled = [ "storage-sqlite", "auth-local" ]; };
CONF
start_daemon "$tmp/site.conf" "$tmp/daemon.log"

U=33333333-3333-4333-8333-333333333333
node "$modules/onboard.js" "127.0.0.1:$port" $U NODE0001 52:54:00:00:00:33 10.0.2.33 >"$tmp/client.out" 2>&1 &
client=$!
sleep 1
"$build/bin/edgeprov" --config "$tmp/site.conf" host add --uuid $U --serial NODE0001 --auto-onboard >/dev/null
wait $client
check "grpc-js client onboards" test $? -eq 0
check "first attempt: not registered, stream kept open" grep -q '"states":\["NODE_STATE_UNSPECIFIED"' "$tmp/client.out"
check "then onboarded" grep -q 'NODE_STATE_ONBOARDED"\]' "$tmp/client.out"
check "client id" grep -q "\"client_id\":\"edgenode-$U\"" "$tmp/client.out"
check "a secret of 43 characters" grep -q '"secret_length":43' "$tmp/client.out"
check "project" grep -q '"project_id":"edgeprov"' "$tmp/client.out"
"$build/bin/edgeprov" --config "$tmp/site.conf" host show $U >"$tmp/host.out"
check "host is ONBOARDED" grep -q "current ONBOARDED" "$tmp/host.out"
check "registration recorded the reported IP" grep -q "ip:            10.0.2.33" "$tmp/host.out"
cat "$tmp/client.out"
finish
