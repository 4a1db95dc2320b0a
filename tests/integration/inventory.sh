#!/usr/bin/env bash
# Integration test: a real edgeprovd (storage-sqlite) and the real CLI over the management
# API, on a UNIX socket and on TCP with TLS and an operator token.
# Usage: inventory.sh SOURCE_DIR BUILD_DIR ...
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
edgeprov=$build/bin/edgeprov
plugins=$build/lib/edgeprov/plugins
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER


cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/run/mgmt.sock"; grpc = "127.0.0.1:0"; https = "127.0.0.1:0"; };
paths = { data = "$tmp/data"; plugins = [ "$plugins" ]; };
plugins = { enabled = [ "storage-sqlite" ]; required = [ "storage-sqlite" ]; };
CONF
E="$edgeprov --config $tmp/site.conf"
U1=123e4567-e89b-12d3-a456-426614174000
U2=123e4567-e89b-12d3-a456-426614174001

check "daemon not running: says how to start it (exit 3: unreachable)" run_status 3 "$tmp/out" $E host list
check "daemon not running: message" contains "$tmp/out" "Is it running? Start it with: edgeprovd"

check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
check "socket is 0660" test "$(stat -c %a "$tmp/run/mgmt.sock")" = 660
$E events --follow >"$tmp/events" 2>&1 &
follower=$!
pids+=($follower)

check "host add" run_status 0 "$tmp/out" $E host add --uuid $U1 --serial ABC12345 --mac 52-54-00-12-34-56 --os ubuntu-22.04
check "host add says desired state" contains "$tmp/out" "host $U1 added (desired REGISTERED)"
check "host add auto-onboard" run_status 0 "$tmp/out" $E host add --uuid $U2 --serial XYZ98765 --auto-onboard --ip 10.1.2.3
check "host list" run_status 0 "$tmp/out" $E host list
check "host list row" grep -qE "^$U1  ABC12345 +REGISTERED +- +ubuntu-22\.04 +Registered" "$tmp/out"
check "host list second row" grep -qE "^$U2  XYZ98765 +ONBOARDED" "$tmp/out"
check "host list --json" run_status 0 "$tmp/out" $E host list --json
check "json has both hosts" test "$(grep -c '"uuid"' "$tmp/out")" -eq 2
check "json normalised mac" contains "$tmp/out" '"52:54:00:12:34:56"'
check "host show by serial" run_status 0 "$tmp/out" $E host show ABC12345
check "host show fields" contains "$tmp/out" "registration:  Pre-registered, waiting for the node"
check "instance create" run_status 0 "$tmp/out" $E instance create $U1
check "instance takes the host's profile" contains "$tmp/out" "os profile:    ubuntu-22.04"
instance=$(sed -n 's/^instance \([0-9a-f-]*\) created.*/\1/p' "$tmp/out")
check "instance list" run_status 0 "$tmp/out" $E instance list
check "instance list row" contains "$tmp/out" "$instance  $U1"
check "second instance refused" run_status 1 "$tmp/out" $E instance create $U1 --os other
check "second instance message" contains "$tmp/out" "host $U1 already has instance $instance"
check "host with instance cannot be deleted" run_status 1 "$tmp/out" $E host delete $U1
check "delete refusal says why" contains "$tmp/out" "delete it first (edgeprov instance delete $instance)"
check "instance delete" run_status 0 "$tmp/out" $E instance delete "$instance"
check "host delete" run_status 0 "$tmp/out" $E host delete $U1
check "deleted host is gone" run_status 1 "$tmp/out" $E host show $U1
check "not found message" contains "$tmp/out" "no host with uuid $U1"

# Bad input: every invalid field is named, nothing is written.
bad() { # NAME EXPECTED ARGS...
  local name=$1 expected=$2; shift 2
  check "bad input: $name refused" run_status 1 "$tmp/out" $E host add "$@"
  check "bad input: $name named" contains "$tmp/out" "$expected"
}
bad uuid "uuid: 'nope' is not a UUID in RFC 4122 text form" --uuid nope
bad serial "serial: 'AB1' has 3 characters; a serial has 5 to 20" --uuid $U1 --serial AB1
bad "serial charset" "serial: 'ABC_1234' has a character other than A-Z, a-z, 0-9" --uuid $U1 --serial ABC_1234
bad mac "macs[1]: '52:54:00:12:34' is not a MAC address" --uuid $U1 --mac 52:54:00:12:34:57 --mac 52:54:00:12:34
bad ip "ip: '10.0.0.300' is not an IPv4 or IPv6 address" --uuid $U1 --ip 10.0.0.300
bad "os profile" "os_profile: '../../etc' is not a name" --uuid $U1 --os ../../etc
bad "duplicate serial" "serial: XYZ98765 is already registered to host $U2" --uuid $U1 --serial XYZ98765
check "bad input wrote nothing" run_status 0 "$tmp/out" $E host list --json
check "only the second host remains" test "$(grep -c '"uuid"' "$tmp/out")" -eq 1

sleep 0.7
check "events --follow saw every change" test "$(grep -c . "$tmp/events")" -ge 6
check "events: host put" grep -qE "^[0-9]+ host $U1 put: desired REGISTERED" "$tmp/events"
check "events: instance put" grep -qE "^[0-9]+ instance $instance put: host $U1" "$tmp/events"
check "events: host deleted" grep -qE "^[0-9]+ host $U1 deleted" "$tmp/events"
check "events in revision order" sh -c "cut -d' ' -f1 '$tmp/events' | sort -n -c"
check "edgeprovd stops cleanly with a stream open" stop_daemon
wait "$follower"
check "events --follow ends when the daemon stops" test $? -eq 0
pids=()

# Restart: the inventory is still there.
check "edgeprovd restarts" start_daemon "$tmp/site.conf" "$tmp/daemon2.log"
check "inventory survived the restart" run_status 0 "$tmp/out" $E host show $U2
check "events from a revision" run_status 0 "$tmp/out" $E events --after 1
check "events --after skips older ones" lacks "$tmp/out" "1 host $U1 put"
check "stop" stop_daemon

# TCP with TLS and the operator token.
( cd "$tmp" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=edgeprov-test-ca \
    && openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj /CN=localhost \
    && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' >ext \
    && openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 1 -extfile ext ) \
  >/dev/null 2>&1
chmod 600 "$tmp/tls.key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/operator.token"
chmod 600 "$tmp/operator.token"
printf 'not-the-token-00000000' >"$tmp/wrong.token"
chmod 600 "$tmp/wrong.token"
port=$(free_port)
cat >"$tmp/tcp.conf" <<CONF
listen = { management = "127.0.0.1:$port"; grpc = "127.0.0.1:0"; https = "127.0.0.1:0"; };
paths = { data = "$tmp/data"; plugins = [ "$plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; };
auth = { operator_token_file = "$tmp/operator.token"; };
CONF
check "edgeprovd on TCP+TLS" start_daemon "$tmp/tcp.conf" "$tmp/daemon3.log"
R="$edgeprov --server 127.0.0.1:$port --ca $tmp/ca.pem"
check "remote with the token" run_status 0 "$tmp/out" $R --token-file "$tmp/operator.token" host show $U2
check "remote sees the host" contains "$tmp/out" "uuid:          $U2"
check "remote with a wrong token" run_status 1 "$tmp/out" $R --token-file "$tmp/wrong.token" host list
check "wrong token: UNAUTHENTICATED message" contains "$tmp/out" "an operator token is required"
check "remote without --ca" run_status 1 "$tmp/out" $edgeprov --server 127.0.0.1:$port --token-file "$tmp/operator.token" host list
check "token never logged" lacks "$tmp/daemon3.log" "$(cat "$tmp/operator.token")"
check "stop" stop_daemon

finish
