#!/usr/bin/env bash
# The OAuth2 token endpoint and JWKS on edgeprovd's embedded HTTPS server, exercised by real
# clients: curl for the client-credentials grant, the jose library (npm) verifying the
# token against the published JWKS independently of edgeprov's own code, and Node's
# @grpc/grpc-js presenting good and bad tokens on the southbound node API.
# Usage: token.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
. "$src/tests/interop/npm_install.sh"
cp "$src/tests/interop/verify_token.mjs" "$src/tests/interop/node_call.mjs" "$src/tests/interop/sign_token.mjs" "$modules/"

make_test_tls "$tmp"
grpc=$(free_port) https=$(free_port)
cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
plugins = { enabled = [ "storage-sqlite", "auth-local" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; };
CONF
start_daemon "$tmp/site.conf" "$tmp/daemon.log"
E="$build/bin/edgeprov --config $tmp/site.conf"
U=cccccccc-0000-4000-8000-000000000001
$E host add --uuid $U --serial TOKENSER1 --auto-onboard >/dev/null
mkdir -p "$tmp/node/sys/class/dmi/id"
echo $U >"$tmp/node/sys/class/dmi/id/product_uuid"
echo TOKENSER1 >"$tmp/node/sys/class/dmi/id/product_serial"
"$build/bin/edgeprov-agent" --onboard-only --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" --sysroot "$tmp/node" \
  --token-url "https://127.0.0.1:$https/oauth2/token" \
  --state-dir "$tmp/node/state" >"$tmp/agent.log" 2>&1
check "the node onboarded" test -s "$tmp/node/state/credentials"
id=$(sed -n 's/^client_id=//p' "$tmp/node/state/credentials")
secret=$(sed -n 's/^client_secret=//p' "$tmp/node/state/credentials")
url=https://127.0.0.1:$https
C="curl -sS --cacert $tmp/ca.pem"

$C -o "$tmp/token.json" -w '%{http_code}' -d grant_type=client_credentials -d "client_id=$id" \
  --data-urlencode "client_secret=$secret" "$url/oauth2/token" >"$tmp/code"
check "token endpoint: 200 for the node's credentials" test "$(cat "$tmp/code")" = 200
check "token response is a Bearer token" grep -q '"token_type":"Bearer"' "$tmp/token.json"
check "token lasts an hour" grep -qE '"expires_in":(3599|3600)' "$tmp/token.json"
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$tmp/token.json")
check "client_secret_basic works too" test "$($C -o /dev/null -w '%{http_code}' -u "$id:$secret" \
  -d grant_type=client_credentials "$url/oauth2/token")" = 200
check "a wrong secret: 401" test "$($C -o "$tmp/err.json" -w '%{http_code}' -d grant_type=client_credentials \
  -d "client_id=$id" -d client_secret=nope "$url/oauth2/token")" = 401
check "a wrong secret: invalid_client" grep -q '"error":"invalid_client"' "$tmp/err.json"
check "another grant: 400 unsupported_grant_type" sh -c "$C -d grant_type=password '$url/oauth2/token' | grep -q unsupported_grant_type"
long=$(head -c 3000 /dev/zero | tr '\0' a)
check "an over-long form field: 400" test "$($C -o "$tmp/err.json" -w '%{http_code}' -d grant_type=client_credentials \
  -d "client_id=$long" -d client_secret=x "$url/oauth2/token")" = 400
check "an over-long form field: invalid_request" grep -q '"error":"invalid_request"' "$tmp/err.json"
check "a JSON body: 400" test "$($C -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
  -d '{"grant_type":"client_credentials"}' "$url/oauth2/token")" = 400
check "a missing secret: 401 invalid_client" sh -c "$C -d grant_type=client_credentials -d client_id=$id '$url/oauth2/token' | grep -q invalid_client"
check "GET on the token path: 405" test "$($C -o /dev/null -w '%{http_code}' "$url/oauth2/token")" = 405
check "unknown path: 404" test "$($C -o /dev/null -w '%{http_code}' "$url/nothing")" = 404
check "JWKS is served" sh -c "$C '$url/.well-known/jwks.json' | grep -q '\"kty\":\"EC\",\"crv\":\"P-256\"'"

V="env NODE_EXTRA_CA_CERTS=$tmp/ca.pem node $modules/verify_token.mjs $url/.well-known/jwks.json"
check "jose verifies the token against the JWKS" run_status 0 "$tmp/out" $V "$token" edgeprov-auth-local edgeprov
check "jose sees the node as subject" contains "$tmp/out" "\"sub\":\"$id\""
check "jose refuses another audience" run_status 1 "$tmp/out" $V "$token" edgeprov-auth-local other
tampered=$(python3 -c 'import sys; t=sys.argv[1].split("."); p=t[1]; t[1]=p[:10]+("A" if p[10]!="A" else "B")+p[11:]; print(".".join(t))' "$token")
check "jose refuses a tampered token" run_status 1 "$tmp/out" $V "$tampered" edgeprov-auth-local edgeprov
# The node API takes the node's token and refuses every other one with UNAUTHENTICATED (16).
N="env NODE_NO_WARNINGS=1 node $modules/node_call.mjs $src/core/proto 127.0.0.1:$grpc $tmp/ca.pem"
kid=$(python3 -c 'import json,sys,base64; h=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"==="))["kid"])' "$token")
key=$tmp/data/auth-local/signing-key.pem
now=$(date +%s)
$N "$token" "Micro-OS: up" >"$tmp/call"
check "node API: the node's token is accepted" contains "$tmp/call" "code=0 "
check "node API: the reply names the node's host" contains "$tmp/call" "\"hostUuid\":\"$U\""
check "node API: the report became the host status" sh -c "$E host show $U | grep -q 'Micro-OS: up'"
$N - "x" >"$tmp/call"
check "node API: no token: UNAUTHENTICATED" contains "$tmp/call" "code=16 a bearer token is required"
$N "$tampered" "x" >"$tmp/call"
check "node API: tampered token: UNAUTHENTICATED" grep -qE "^code=16 token refused: token (signature does not verify|encoding is invalid)" "$tmp/call"
# A node asks for a token of another audience (a service that trusts this issuer): the site
# lists what may be asked for (auth.token_audiences, default only "edgeprov").
check "token endpoint: an audience the site does not list: 400" test "$($C -o "$tmp/err.json" -w '%{http_code}' \
  -d grant_type=client_credentials -d "client_id=$id" --data-urlencode "client_secret=$secret" -d audience=other \
  "$url/oauth2/token")" = 400
check "token endpoint: an unlisted audience is invalid_target, naming the audience" \
  sh -c "grep -q '\"error\":\"invalid_target\"' '$tmp/err.json' && grep -q 'audience' '$tmp/err.json'"
check "token endpoint: no token for an unlisted audience" lacks "$tmp/err.json" "access_token"
check "token endpoint: an explicit audience=edgeprov is still issued" test "$($C -o /dev/null -w '%{http_code}' \
  -d grant_type=client_credentials -d "client_id=$id" --data-urlencode "client_secret=$secret" -d audience=edgeprov \
  "$url/oauth2/token")" = 200
# Tokens carry the ID of the credentials they were issued with (ep_cid); mint() signs one with
# the site's key and the jose library: ISSUER AUDIENCE EXPIRES_AT CREDENTIAL_ID.
cid=$(python3 -c 'import json,sys,base64; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"==="))["ep_cid"])' "$token")
mint() {
  (cd "$modules" && node --input-type=module -e '
import fs from "node:fs";
import { SignJWT, importPKCS8 } from "jose";
const [keyFile, kid, iss, sub, aud, exp, cid] = process.argv.slice(1);
const key = await importPKCS8(fs.readFileSync(keyFile, "utf8"), "ES256");
console.log(await new SignJWT({ ep_cid: cid }).setProtectedHeader({ alg: "ES256", typ: "JWT", kid }).setIssuer(iss)
  .setSubject(sub).setAudience(aud).setIssuedAt().setExpirationTime(Number(exp)).sign(key));' "$key" "$kid" "$1" "$id" "$2" "$3" "$4")
}
other=$(mint edgeprov-auth-local other $((now + 300)) "$cid")
$N "$other" "x" >"$tmp/call"
check "node API: other-audience token: UNAUTHENTICATED" contains "$tmp/call" "code=16 token refused: token: wrong audience"
expired=$(node "$modules/sign_token.mjs" "$key" "$kid" edgeprov-auth-local "$id" edgeprov $((now - 5)))
$N "$expired" "x" >"$tmp/call"
check "node API: expired token (right key): UNAUTHENTICATED" contains "$tmp/call" "code=16 token refused: token: expired"
fresh=$(mint edgeprov-auth-local edgeprov $((now + 300)) "$cid")
$N "$fresh" "Micro-OS: minted" >"$tmp/call"
check "node API: the same key minting a fresh token is accepted (the signer is sound)" contains "$tmp/call" "code=0 "
nocid=$(node "$modules/sign_token.mjs" "$key" "$kid" edgeprov-auth-local "$id" edgeprov $((now + 300)))
$N "$nocid" "x" >"$tmp/call"
check "node API: a token without the credentials' ID: UNAUTHENTICATED" contains "$tmp/call" \
  "code=16 token refused: token: issued before the node's current credentials"
foreign=$(node "$modules/sign_token.mjs" "$key" "$kid" someone-else "$id" edgeprov $((now + 300)))
$N "$foreign" "x" >"$tmp/call"
check "node API: another issuer: UNAUTHENTICATED" contains "$tmp/call" "code=16 token refused: token: wrong issuer"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/stranger.pem" 2>/dev/null
stranger=$(node "$modules/sign_token.mjs" "$tmp/stranger.pem" "$kid" edgeprov-auth-local "$id" edgeprov $((now + 300)))
$N "$stranger" "x" >"$tmp/call"
check "node API: signed by another key: UNAUTHENTICATED" contains "$tmp/call" "code=16 token refused: token signature does not verify"
$N "$token" "$(printf 'bad\nline')" >"$tmp/call"
check "node API: a status with a control character: INVALID_ARGUMENT" contains "$tmp/call" "code=3 status: control character at byte 3"
check "node API: refusals are logged without the token" sh -c "grep -q 'ReportStatus from 127.0.0.1 refused' '$tmp/daemon.log' && ! grep -qF -- '$expired' '$tmp/daemon.log'"

$E host invalidate $U >/dev/null
$N "$token" "x" >"$tmp/call"
check "node API: after invalidation the token is refused" contains "$tmp/call" "code=16 token refused: token: the node's credentials were revoked"
check "after invalidation the node gets no token" test "$($C -o /dev/null -w '%{http_code}' -d grant_type=client_credentials \
  -d "client_id=$id" --data-urlencode "client_secret=$secret" "$url/oauth2/token")" = 401
# Approved again, the node onboards with new credentials under the same client ID: the token
# from before the invalidation stays refused (it was kept by whoever held it).
$E host approve $U >/dev/null
rm -rf "$tmp/node/state"
"$build/bin/edgeprov-agent" --onboard-only --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" --sysroot "$tmp/node" \
  --token-url "https://127.0.0.1:$https/oauth2/token" --state-dir "$tmp/node/state" >"$tmp/agent2.log" 2>&1
check "approved again, the node onboards and reports in with a new token" contains "$tmp/agent2.log" "reported in on the node API"
check "the new secret differs" test "$(sed -n 's/^client_secret=//p' "$tmp/node/state/credentials")" != "$secret"
$N "$token" "x" >"$tmp/call"
check "node API: the token from before the invalidation is still refused after re-onboarding" contains "$tmp/call" \
  "code=16 token refused: token: issued before the node's current credentials"
$N "$fresh" "x" >"$tmp/call"
check "node API: so is one minted with the old credentials' ID" contains "$tmp/call" \
  "code=16 token refused: token: issued before the node's current credentials"
check "the secret is not in the daemon log" lacks "$tmp/daemon.log" "$secret"
check "the token is not in the daemon log" lacks "$tmp/daemon.log" "$token"
finish
