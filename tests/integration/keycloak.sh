#!/usr/bin/env bash
# Integration test of auth-keycloak: a real edgeprovd with the plugin against the Keycloak
# stand-in (tests/interop/keycloak_server.mjs: oidc-provider, a certified OpenID provider,
# for the token and JWKS side; a contract server written from Keycloak's Admin REST
# documentation for the client side), and a real edgeprov-agent that onboards, gets its
# token from "Keycloak" and reports in with it. Keycloak itself is not in Debian.
# Usage: keycloak.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER
. "$src/tests/interop/npm_install.sh"
cp "$src/tests/interop/keycloak_server.mjs" "$src/tests/interop/node_call.mjs" "$modules/"

make_test_tls "$tmp"
admin_secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$admin_secret" >"$tmp/admin.secret"
chmod 600 "$tmp/admin.secret"

# "Keycloak": tokens live 8 s here so that expiry can be seen.
node "$modules/keycloak_server.mjs" --cert "$tmp/tls.pem" --key "$tmp/tls.key" --realm edgeprov \
  --admin-client-id edgeprov-admin --admin-secret-file "$tmp/admin.secret" --port-file "$tmp/kc.port" \
  --token-ttl 8 2>"$tmp/keycloak.log" &
pids+=($!)
for _ in $(seq 200); do [ -s "$tmp/kc.port" ] && break; sleep 0.05; done
kc=https://127.0.0.1:$(cat "$tmp/kc.port")
token_url=$kc/realms/edgeprov/protocol/openid-connect/token
C="curl -sS --cacert $tmp/ca.pem"
admin_token() { $C -u "edgeprov-admin:$admin_secret" -d grant_type=client_credentials "$token_url" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
kc_clients() { $C -H "Authorization: Bearer $(admin_token)" "$kc/admin/realms/edgeprov/clients?clientId=$1"; }
kc_set() { $C -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d "$1" "$kc/stand-in/settings"; }
node_token() { # CLIENT_ID SECRET: a token from "Keycloak"
  $C -u "$1:$2" -d grant_type=client_credentials "$token_url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
certs_fetches() { grep -c 'GET /realms/edgeprov/protocol/openid-connect/certs ' "$tmp/keycloak.log"; }

grpc=$(free_port) https=$(free_port)
cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
plugins = { enabled = [ "storage-sqlite", "auth-keycloak" ]; required = [ "auth-keycloak" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; };
auth-keycloak = { base_url = "$kc"; realm = "edgeprov"; admin_client_id = "edgeprov-admin";
                  admin_client_secret_file = "$tmp/admin.secret"; ca_file = "$tmp/ca.pem"; };
CONF
start_daemon() { # LOG
  "$build/bin/edgeprovd" --config "$tmp/site.conf" >"$1" 2>&1 &
  daemon=$!
  pids+=($daemon)
  for _ in $(seq 200); do grep -q 'msg="ready' "$1" && break; sleep 0.05; done
}
start_daemon "$tmp/daemon.log"
check "edgeprovd starts with auth-keycloak" grep -q 'msg="ready' "$tmp/daemon.log"
E="$build/bin/edgeprov --config $tmp/site.conf"
$E plugins describe auth-keycloak >"$tmp/out"
check "plugins describe documents the settings" contains "$tmp/out" "admin_client_secret_file"

make_node() { # DIR UUID SERIAL
  mkdir -p "$tmp/$1/sys/class/dmi/id"
  echo "$2" >"$tmp/$1/sys/class/dmi/id/product_uuid"
  echo "$3" >"$tmp/$1/sys/class/dmi/id/product_serial"
}
agent() { # NODE_DIR: onboards, gets a token from Keycloak, reports in
  "$build/bin/edgeprov-agent" --onboard-only --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" --token-url "$token_url" \
    --sysroot "$tmp/$1" --state-dir "$tmp/$1/state" --backoff-ms 100 --backoff-max-ms 200
}
U1=dddddddd-0000-4000-8000-000000000001
U2=dddddddd-0000-4000-8000-000000000002
make_node n1 $U1 KCNODE001
$E host add --uuid $U1 --serial KCNODE001 --auto-onboard >/dev/null
check "a node onboards through Keycloak" run_status 0 "$tmp/a1.log" agent n1
check "it got its token from Keycloak" contains "$tmp/a1.log" "obtained a bearer token at $token_url"
check "edgeprovd accepted Keycloak's token (RS256, via JWKS)" contains "$tmp/a1.log" "reported in on the node API"
check "the credentials are Keycloak's client" grep -q "^client_id=edgenode-$U1$" "$tmp/n1/state/credentials"
kc_clients "edgenode-$U1" >"$tmp/client.json"
check "Keycloak holds a confidential client for the node" python3 -c '
import json,sys; c=json.load(open(sys.argv[1]))[0]
assert c["clientId"]=="edgenode-"+sys.argv[2] and not c["publicClient"] and c["serviceAccountsEnabled"] and not c["standardFlowEnabled"]
m=[m for m in c["protocolMappers"] if m["protocolMapper"]=="oidc-audience-mapper"][0]
assert m["config"]["included.custom.audience"]=="edgeprov"' "$tmp/client.json" $U1
secret=$(sed -n 's/^client_secret=//p' "$tmp/n1/state/credentials")
check "the node's secret is Keycloak's (the stand-in generates 32 alphanumerics)" test ${#secret} -eq 32
check "edgeprovd publishes Keycloak's JWKS" sh -c "$C https://127.0.0.1:$https/.well-known/jwks.json | grep -q '\"kty\":\"RSA\"'"
check "edgeprovd serves no token endpoint of its own" test "$($C -o /dev/null -w '%{http_code}' -d grant_type=client_credentials \
  "https://127.0.0.1:$https/oauth2/token")" = 404

N="env NODE_NO_WARNINGS=1 node $modules/node_call.mjs $src/core/proto 127.0.0.1:$grpc $tmp/ca.pem"
token=$($C -u "edgenode-$U1:$secret" -d grant_type=client_credentials "$token_url" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
$N "$token" "Micro-OS: via Keycloak" >"$tmp/call"
check "node API: Keycloak's token is accepted" contains "$tmp/call" "code=0 "
check "node API: it names the node's host" contains "$tmp/call" "\"hostUuid\":\"$U1\""
tampered=$(python3 -c 'import sys; t=sys.argv[1].split("."); s=t[2]; t[2]=("A" if s[0]!="A" else "B")+s[1:]; print(".".join(t))' "$token")
$N "$tampered" "x" >"$tmp/call"
check "node API: a tampered signature: UNAUTHENTICATED" contains "$tmp/call" "code=16 token refused: token signature does not verify"
$N "$(admin_token)" "x" >"$tmp/call"
check "node API: the admin client's token (another audience): UNAUTHENTICATED" contains "$tmp/call" "code=16 token refused: token: wrong audience"

# A client made in Keycloak by hand, without edgeprov's audience mapper.
$C -o /dev/null -H "Authorization: Bearer $(admin_token)" -H 'content-type: application/json' \
  -d "{\"clientId\":\"edgenode-$U2\",\"secret\":\"handmade-secret-0001\",\"serviceAccountsEnabled\":true,\"publicClient\":false}" \
  "$kc/admin/realms/edgeprov/clients"
other=$($C -u "edgenode-$U2:handmade-secret-0001" -d grant_type=client_credentials "$token_url" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
$N "$other" "x" >"$tmp/call"
check "node API: a node token without edgeprov's audience: UNAUTHENTICATED" contains "$tmp/call" "code=16 token refused: token: wrong audience"

sleep 9
$N "$token" "x" >"$tmp/call"
check "node API: an expired Keycloak token: UNAUTHENTICATED" contains "$tmp/call" "code=16 token refused: token: expired"

# Credentials are issued once; invalidation deletes the client in Keycloak. Tokens live 300 s
# from here on, so that what refuses one below is its revocation, not its expiry.
check "the stand-in issues tokens for 300 s from now on" test "$(kc_set '{"tokenTtl":300}')" = 200
fresh=$(node_token "edgenode-$U1" "$secret")
$E host invalidate $U1 >/dev/null
check "invalidation deletes the node's client in Keycloak" test "$(kc_clients "edgenode-$U1")" = "[]"
check "Keycloak then refuses the node's secret" test "$($C -o /dev/null -w '%{http_code}' -u "edgenode-$U1:$secret" \
  -d grant_type=client_credentials "$token_url")" = 401
$N "$fresh" "x" >"$tmp/call"
check "a token issued before the revocation is refused" contains "$tmp/call" "code=16 token refused: token: the node's credentials were revoked"
# Finding 4 of issue 14: Keycloak's tokens are stateless; the revocation must survive a
# restart of edgeprovd (it is kept in the site's store).
kill "$daemon"
wait "$daemon" 2>/dev/null
start_daemon "$tmp/daemon2.log"
check "edgeprovd starts again" grep -q 'msg="ready' "$tmp/daemon2.log"
$N "$fresh" "x" >"$tmp/call"
check "after a restart of edgeprovd the revoked token is still refused" contains "$tmp/call" \
  "code=16 token refused: token: the node's credentials were revoked"
check "(the token itself is still unexpired and well signed)" python3 -c '
import json,sys,base64,time; p=json.loads(base64.urlsafe_b64decode(sys.argv[1].split(".")[1]+"===")); assert p["exp"]>time.time()+60' "$fresh"
$E host approve $U1 >/dev/null
rm -rf "$tmp/n1/state"
check "approved again, the node onboards with a new client" run_status 0 "$tmp/a2.log" agent n1
check "and reports in with its new token" contains "$tmp/a2.log" "reported in on the node API"
check "the new secret differs" test "$(sed -n 's/^client_secret=//p' "$tmp/n1/state/credentials")" != "$secret"

# Finding 8 of issue 14: a token with an unknown kid makes edgeprovd fetch Keycloak's JWKS;
# while that fetch hangs on a slow Keycloak, tokens whose key is cached must not wait for it.
secret2=$(sed -n 's/^client_secret=//p' "$tmp/n1/state/credentials")
good=$(node_token "edgenode-$U1" "$secret2")
$N "$good" "Micro-OS: keys cached" >"$tmp/call"
check "slow JWKS: the good token is accepted (its key is cached)" contains "$tmp/call" "code=0 "
unknown=$(python3 -c '
import json,sys,base64
t=sys.argv[1].split("."); h=json.loads(base64.urlsafe_b64decode(t[0]+"===")); h["kid"]=sys.argv[2]
t[0]=base64.urlsafe_b64encode(json.dumps(h,separators=(",",":")).encode()).decode().rstrip("="); print(".".join(t))' "$good" unknown-kid-1)
sleep 11 # edgeprovd fetched the JWKS when it restarted: past the 10 s between fetches, it may again
check "slow JWKS: the stand-in now holds /certs back 8 s" test "$(kc_set '{"jwksDelayMs":8000}')" = 200
$N "$unknown" "x" >"$tmp/unknown.call" &
unknown_pid=$!
for _ in $(seq 100); do grep -q 'delaying certs' "$tmp/keycloak.log" && break; sleep 0.05; done
check "slow JWKS: the unknown kid made edgeprovd fetch the JWKS" grep -q 'delaying certs' "$tmp/keycloak.log"
started=$(date +%s%N)
$N "$good" "Micro-OS: during a slow JWKS" >"$tmp/call"
ms=$((($(date +%s%N) - started) / 1000000))
in_flight=$([ -s "$tmp/unknown.call" ] && echo no || echo yes)
echo "     (a good token's call took $ms ms while the JWKS fetch was in flight: $in_flight)"
check "slow JWKS: a good token is accepted while the fetch is in flight" contains "$tmp/call" "code=0 "
check "slow JWKS: ... without waiting for it (${ms} ms, under 4000 of the 8000)" test "$ms" -lt 4000
check "slow JWKS: the fetch was still in flight then" test "$in_flight" = yes
wait "$unknown_pid"
check "slow JWKS: the unknown kid is refused once the JWKS came" contains "$tmp/unknown.call" \
  "code=16 token refused: token signature does not verify"
kc_set '{"jwksDelayMs":0}' >/dev/null
# The unknown kid is cached as unknown: past the 10 s between fetches it is refused at once,
# without another fetch.
sleep 11
before=$(certs_fetches)
$N "$unknown" "x" >"$tmp/call"
check "unknown kid again: refused" contains "$tmp/call" "code=16 token refused: token signature does not verify"
check "unknown kid again: no new JWKS fetch ($before before, $(certs_fetches) after)" test "$(certs_fetches)" = "$before"
unknown2=$(python3 -c '
import json,sys,base64
t=sys.argv[1].split("."); h=json.loads(base64.urlsafe_b64decode(t[0]+"===")); h["kid"]=sys.argv[2]
t[0]=base64.urlsafe_b64encode(json.dumps(h,separators=(",",":")).encode()).decode().rstrip("="); print(".".join(t))' "$good" unknown-kid-2)
$N "$unknown2" "x" >"$tmp/call"
check "another unknown kid: refused after one fetch" test "$(certs_fetches)" = $((before + 1))
$N "$good" "x" >"$tmp/call"
check "the good token is still accepted" contains "$tmp/call" "code=0 "

# Wrong admin credentials: onboarding fails with a message that says what to fix.
printf 'not-the-secret\n' >"$tmp/wrong.secret"
sed "s|$tmp/admin.secret|$tmp/wrong.secret|; s|$tmp/mgmt.sock|$tmp/mgmt2.sock|; s|127.0.0.1:$grpc|127.0.0.1:0|; s|127.0.0.1:$https|127.0.0.1:0|; s|$tmp/data|$tmp/data2|" \
  "$tmp/site.conf" >"$tmp/wrong.conf"
"$build/bin/edgeprovd" --config "$tmp/wrong.conf" --log-level debug >"$tmp/wrong.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q 'msg="ready' "$tmp/wrong.log" && break; sleep 0.05; done
wport=$(sed -n 's/.*southbound=127.0.0.1:0 port=\([0-9]*\).*/\1/p' "$tmp/wrong.log")
W="$build/bin/edgeprov --config $tmp/wrong.conf"
$W host add --uuid $U2 --serial KCNODE002 --auto-onboard >/dev/null
make_node n2 $U2 KCNODE002
timeout 5 "$build/bin/edgeprov-agent" --onboard-only --orchestrator 127.0.0.1:$wport --ca "$tmp/ca.pem" --token-url "$token_url" \
  --sysroot "$tmp/n2" --state-dir "$tmp/n2/state" --backoff-ms 100 --backoff-max-ms 200 >"$tmp/a3.log" 2>&1
check "wrong admin secret: the node is told why" contains "$tmp/a3.log" "Keycloak refused the admin client edgeprov-admin: check admin_client_secret_file"
check "wrong admin secret: nothing issued" test ! -e "$tmp/n2/state/credentials"

# Installed but not set up (no plugins.enabled, no section): left off, and the listing says why.
printf 'paths = { data = "%s/bare"; plugins = [ "%s/lib/edgeprov/plugins" ]; };\n' "$tmp" "$build" >"$tmp/bare.conf"
check "not set up: edgeprov plugins list still works" run_status 0 "$tmp/out" $build/bin/edgeprov --config "$tmp/bare.conf" plugins list
check "not set up: auth-keycloak is left off, with the reason" contains "$tmp/out" "why: not set up: needs setting 'base_url'"
check "not set up: auth-local serves identity" grep -qE "^auth-local +[0-9.]+ +active" "$tmp/out"

check "no secret or token in the daemon logs" absent -F -e "$secret" -e "$admin_secret" -e "$token" -e "$good" \
  "$tmp/daemon.log" "$tmp/daemon2.log" "$tmp/wrong.log"
check "no secret or token in Keycloak's log" absent -F -e "$secret" -e "$admin_secret" -e "$token" "$tmp/keycloak.log"
finish
