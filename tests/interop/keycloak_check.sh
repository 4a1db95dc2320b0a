#!/usr/bin/env bash
# Proves the Keycloak stand-in (keycloak_server.mjs) with curl alone, before the
# auth-keycloak plugin's integration test relies on it: the Admin REST contract (create,
# duplicate, list, read, secrets, regenerate, delete, 401/403/404), and the OpenID Connect
# side (oidc-provider) handing out RS256 JWT access tokens through client_credentials with
# client_secret_basic and client_secret_post, whose signatures openssl verifies against the
# RSA key served at /certs and whose aud carries the client's oidc-audience-mapper value.
# Usage: keycloak_check.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
. "$src/tests/interop/npm_install.sh"
cp "$src/tests/interop/keycloak_server.mjs" "$modules/"

make_test_tls "$tmp"
realm=edgeprov
admin_id=edgeprov-admin
admin_secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$admin_secret" >"$tmp/admin.secret"
chmod 600 "$tmp/admin.secret"

node "$modules/keycloak_server.mjs" --cert "$tmp/tls.pem" --key "$tmp/tls.key" --realm $realm \
  --admin-client-id $admin_id --admin-secret-file "$tmp/admin.secret" --port-file "$tmp/port" 2>"$tmp/server.log" &
server=$!
pids+=($server)
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; sleep 0.05; done
check "the stand-in writes its port file" test -s "$tmp/port"
[ -s "$tmp/port" ] || { sed 's/^/    /' "$tmp/server.log"; finish; exit 1; }
port=$(cat "$tmp/port")
base=https://127.0.0.1:$port
issuer=$base/realms/$realm
tokens=$issuer/protocol/openid-connect/token
clients=$base/admin/realms/$realm/clients
C="curl -sS --cacert $tmp/ca.pem"

# Small JSON and JWT helpers (python3's standard library; openssl checks the signatures).
cat >"$tmp/kc.py" <<'PY'
import base64, json, subprocess, sys, tempfile, os
def b64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def der_len(n): return bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
def der(tag, body): return bytes([tag]) + der_len(len(body)) + body
def der_int(b): return der(0x02, b"\0" + b if b[0] & 0x80 else b)
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "get":            # get FILE PYTHON-EXPR-ON-j
    j = json.load(open(args[0])); v = eval(args[1], {"j": j})
    print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
elif cmd in ("header", "claims"):  # header|claims TOKEN
    print(json.dumps(json.loads(b64(args[0].split(".")[0 if cmd == "header" else 1])), separators=(",", ":")))
elif cmd == "verify":       # verify TOKEN JWKS-FILE: RS256 signature against the key with the token's kid
    h, p, s = args[0].split(".")
    kid = json.loads(b64(h))["kid"]
    jwk = [k for k in json.load(open(args[1]))["keys"] if k.get("kid") == kid][0]
    assert jwk["kty"] == "RSA"
    rsa = der(0x30, der_int(b64(jwk["n"])) + der_int(b64(jwk["e"])))
    spki = der(0x30, der(0x30, bytes.fromhex("06092a864886f70d0101010500")) + der(0x03, b"\0" + rsa))
    d = tempfile.mkdtemp()
    pem = os.path.join(d, "k.pem"); open(pem, "w").write("-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki).decode() + "-----END PUBLIC KEY-----\n")
    open(os.path.join(d, "sig"), "wb").write(b64(s)); open(os.path.join(d, "data"), "wb").write((h + "." + p).encode())
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pem, "-signature", os.path.join(d, "sig"), os.path.join(d, "data")], capture_output=True)
    sys.exit(r.returncode)
PY
J="python3 $tmp/kc.py"
# code OUTFILE CURL-ARGS...: prints the HTTP status, the body goes to OUTFILE.
code() { local out=$1; shift; $C -o "$out" -w '%{http_code}' "$@"; }
is() { [ "$1" = "$2" ] || { echo "---- got '$1', expected '$2'"; return 1; }; }

# --- discovery and keys
check "discovery: 200" is "$(code "$tmp/disc.json" "$issuer/.well-known/openid-configuration")" 200
check "discovery: Keycloak's issuer" is "$($J get "$tmp/disc.json" 'j["issuer"]')" "$issuer"
check "discovery: Keycloak's token path" is "$($J get "$tmp/disc.json" 'j["token_endpoint"]')" "$tokens"
check "discovery: Keycloak's certs path" is "$($J get "$tmp/disc.json" 'j["jwks_uri"]')" "$issuer/protocol/openid-connect/certs"
check "certs: 200" is "$(code "$tmp/certs.json" "$issuer/protocol/openid-connect/certs")" 200
check "certs: RSA keys only, RS256, each with a kid" is "$($J get "$tmp/certs.json" \
  'len(j["keys"]) > 0 and all(k["kty"] == "RSA" and k["alg"] == "RS256" and k.get("kid") and k["n"] and k["e"] and "d" not in k for k in j["keys"])')" true

# --- the admin service account logs in
check "admin login (client_credentials, basic): 200" is "$(code "$tmp/admin_tok.json" -u "$admin_id:$admin_secret" \
  -d grant_type=client_credentials "$tokens")" 200
check "admin login: a Bearer token for 300 s" is "$($J get "$tmp/admin_tok.json" '[j["token_type"], j["expires_in"]]')" '["Bearer",300]'
admin_token=$($J get "$tmp/admin_tok.json" 'j["access_token"]')
check "admin token: RS256 signature verifies against /certs" $J verify "$admin_token" "$tmp/certs.json"
A=(-H "Authorization: Bearer $admin_token")

# --- admin authentication and realm
check "admin call without a bearer: 401" is "$(code "$tmp/out.json" "$clients")" 401
check "admin call without a bearer: Keycloak's body" contains "$tmp/out.json" '{"error":"HTTP 401 Unauthorized"}'
tampered=$(python3 -c 'import sys; t=sys.argv[1].split("."); p=t[1]; t[1]=p[:10]+("A" if p[10]!="A" else "B")+p[11:]; print(".".join(t))' "$admin_token")
check "admin call with a tampered token: 401" is "$(code "$tmp/out.json" -H "Authorization: Bearer $tampered" "$clients")" 401
check "admin call on another realm: 404" is "$(code "$tmp/out.json" "${A[@]}" "$base/admin/realms/nosuch/clients")" 404
check "admin call on another realm: Realm not found." contains "$tmp/out.json" '{"error":"Realm not found."}'

# --- create
dev=edgeprov-node-0001
body='{"clientId":"'$dev'","enabled":true,"publicClient":false,"serviceAccountsEnabled":true,"standardFlowEnabled":false,
 "directAccessGrantsEnabled":false,"clientAuthenticatorType":"client-secret","attributes":{"edgeprov.host":"h1"},
 "protocolMappers":[{"name":"edgeprov-audience","protocol":"openid-connect","protocolMapper":"oidc-audience-mapper",
 "consentRequired":false,"config":{"included.custom.audience":"edgeprov-api","access.token.claim":"true","id.token.claim":"false"}}]}'
$C -o "$tmp/create.body" -D "$tmp/create.hdr" -w '%{http_code}' "${A[@]}" -H 'Content-Type: application/json' \
  -d "$body" "$clients" >"$tmp/create.code"
check "create client: 201" is "$(cat "$tmp/create.code")" 201
check "create client: empty body" test ! -s "$tmp/create.body"
location=$(tr -d '\r' <"$tmp/create.hdr" | sed -n 's/^[Ll]ocation: //p')
check "create client: Location is the client's admin URL" sh -c "echo '$location' | grep -Eq '^$clients/[0-9a-f-]{36}\$'"
uuid=${location##*/}
check "create again: 409" is "$(code "$tmp/out.json" "${A[@]}" -H 'Content-Type: application/json' -d "$body" "$clients")" 409
check "create again: Keycloak's message" contains "$tmp/out.json" "{\"errorMessage\":\"Client $dev already exists\"}"
check "create with a body that is not JSON: 400" is "$(code "$tmp/out.json" "${A[@]}" -H 'Content-Type: application/json' \
  -d '{not json' "$clients")" 400
check "create without clientId: 400" is "$(code "$tmp/out.json" "${A[@]}" -H 'Content-Type: application/json' \
  -d '{"enabled":true}' "$clients")" 400

# --- read
check "list by clientId: 200" is "$(code "$tmp/list.json" "${A[@]}" "$clients?clientId=$dev")" 200
check "list by clientId: exactly that client" is "$($J get "$tmp/list.json" '[(c["id"], c["clientId"]) for c in j]')" "[[\"$uuid\",\"$dev\"]]"
check "list by clientId: its settings" is "$($J get "$tmp/list.json" \
  '[j[0][k] for k in ("enabled","publicClient","serviceAccountsEnabled","standardFlowEnabled","clientAuthenticatorType")]')" \
  '[true,false,true,false,"client-secret"]'
check "list by clientId: its audience mapper" is "$($J get "$tmp/list.json" \
  '[(m["protocolMapper"], m["config"]["included.custom.audience"]) for m in j[0]["protocolMappers"]]')" '[["oidc-audience-mapper","edgeprov-api"]]'
check "list by clientId: its attributes" is "$($J get "$tmp/list.json" 'j[0]["attributes"]["edgeprov.host"]')" h1
check "list by an unknown clientId: []" is "$(code "$tmp/out.json" "${A[@]}" "$clients?clientId=nosuch")/$(cat "$tmp/out.json")" '200/[]'
check "read by id: 200" is "$(code "$tmp/read.json" "${A[@]}" "$clients/$uuid")" 200
check "read by id: that client" is "$($J get "$tmp/read.json" 'j["clientId"]')" "$dev"
check "read an unknown id: 404" is "$(code "$tmp/out.json" "${A[@]}" "$clients/00000000-0000-0000-0000-000000000000")" 404
check "read an unknown id: Keycloak's body" contains "$tmp/out.json" '{"error":"Could not find client"}'
check "read the secret: 200" is "$(code "$tmp/secret.json" "${A[@]}" "$clients/$uuid/client-secret")" 200
check "read the secret: a CredentialRepresentation" is "$($J get "$tmp/secret.json" 'j["type"]')" secret
secret=$($J get "$tmp/secret.json" 'j["value"]')
check "read the secret: 32 alphanumerics, as Keycloak generates" sh -c "echo '$secret' | grep -Eq '^[A-Za-z0-9]{32}\$'"

# --- the new client's tokens
check "new client, client_secret_basic: 200" is "$(code "$tmp/tok1.json" -u "$dev:$secret" -d grant_type=client_credentials "$tokens")" 200
token=$($J get "$tmp/tok1.json" 'j["access_token"]')
check "its token: a JWS with alg RS256, typ JWT and a kid" is "$($J header "$token" | python3 -c \
  'import json,sys; h=json.load(sys.stdin); print(h["alg"], h["typ"], bool(h.get("kid")))')" "RS256 JWT True"
check "its token: the signature verifies against /certs" $J verify "$token" "$tmp/certs.json"
$J claims "$token" >"$tmp/claims.json"
check "its token: aud holds the mapper's audience" is "$($J get "$tmp/claims.json" \
  '"edgeprov-api" in (j["aud"] if isinstance(j["aud"], list) else [j["aud"]])')" true
check "its token: issuer, azp and client_id" is "$($J get "$tmp/claims.json" '[j["iss"], j["azp"], j["client_id"]]')" \
  "[\"$issuer\",\"$dev\",\"$dev\"]"
check "its token: lives --token-ttl (300 s)" is "$($J get "$tmp/claims.json" 'j["exp"] - j["iat"]')" 300
check "new client, client_secret_post: 200" is "$(code "$tmp/tok2.json" -d grant_type=client_credentials -d "client_id=$dev" \
  --data-urlencode "client_secret=$secret" "$tokens")" 200
check "client_secret_post token: same audience" is "$($J claims "$($J get "$tmp/tok2.json" 'j["access_token"]')" | \
  python3 -c 'import json,sys; a=json.load(sys.stdin)["aud"]; print("edgeprov-api" in (a if isinstance(a, list) else [a]))')" True
check "a wrong secret: 401" is "$(code "$tmp/out.json" -u "$dev:wrong" -d grant_type=client_credentials "$tokens")" 401
check "a wrong secret: invalid_client" contains "$tmp/out.json" '"error":"invalid_client"'
check "an unknown client: 401" is "$(code "$tmp/out.json" -d grant_type=client_credentials -d client_id=nosuch \
  -d client_secret=x "$tokens")" 401

# --- a client without a mapper, and one without a service account
check "create a client without a mapper: 201" is "$(code "$tmp/out" "${A[@]}" -H 'Content-Type: application/json' \
  -d '{"clientId":"plain","serviceAccountsEnabled":true,"secret":"plain-secret-0123456789"}' "$clients")" 201
check "its given secret gets a token" is "$(code "$tmp/tok3.json" -u plain:plain-secret-0123456789 -d grant_type=client_credentials "$tokens")" 200
check "its aud is Keycloak's default (account)" is "$($J claims "$($J get "$tmp/tok3.json" 'j["access_token"]')" | \
  python3 -c 'import json,sys; print(json.load(sys.stdin)["aud"])')" account
plain_token=$($J get "$tmp/tok3.json" 'j["access_token"]')
check "a non-admin client's bearer on the Admin API: 403" is "$(code "$tmp/out.json" -H "Authorization: Bearer $plain_token" "$clients")" 403
check "a non-admin client's bearer: Keycloak's body" contains "$tmp/out.json" '{"error":"HTTP 403 Forbidden"}'
check "create a client without a service account: 201" is "$(code "$tmp/out" "${A[@]}" -H 'Content-Type: application/json' \
  -d '{"clientId":"nosa","secret":"nosa-secret-0123456789"}' "$clients")" 201
check "it gets no client_credentials token: 401 unauthorized_client" is "$(code "$tmp/out.json" -u nosa:nosa-secret-0123456789 \
  -d grant_type=client_credentials "$tokens")/$($J get "$tmp/out.json" 'j["error"]')" 401/unauthorized_client

# --- regenerate the secret
check "regenerate the secret: 200" is "$(code "$tmp/regen.json" "${A[@]}" -X POST "$clients/$uuid/client-secret")" 200
new_secret=$($J get "$tmp/regen.json" 'j["value"]')
check "regenerate the secret: a new value" sh -c "[ '$($J get "$tmp/regen.json" 'j["type"]')' = secret ] && [ -n '$new_secret' ] && [ '$new_secret' != '$secret' ]"
check "the old secret is refused at once: 401" is "$(code "$tmp/out.json" -u "$dev:$secret" -d grant_type=client_credentials "$tokens")" 401
check "the new secret gets a token" is "$(code "$tmp/out.json" -u "$dev:$new_secret" -d grant_type=client_credentials "$tokens")" 200
check "the secret read back is the new one" is "$(code "$tmp/secret2.json" "${A[@]}" "$clients/$uuid/client-secret")/$($J get "$tmp/secret2.json" 'j["value"]')" "200/$new_secret"

# --- delete
check "delete: 204" is "$(code "$tmp/out" "${A[@]}" -X DELETE "$clients/$uuid")" 204
check "after delete, read: 404" is "$(code "$tmp/out.json" "${A[@]}" "$clients/$uuid")" 404
check "after delete, list by clientId: []" is "$(code "$tmp/out.json" "${A[@]}" "$clients?clientId=$dev")/$(cat "$tmp/out.json")" '200/[]'
check "after delete, its token requests fail: 401" is "$(code "$tmp/out.json" -u "$dev:$new_secret" -d grant_type=client_credentials "$tokens")" 401
check "delete again: 404" is "$(code "$tmp/out.json" "${A[@]}" -X DELETE "$clients/$uuid")" 404

# --- the log, and a clean stop
check "the log has one line per request" grep -q "POST /realms/$realm/protocol/openid-connect/token 200" "$tmp/server.log"
check "the admin secret is not in the log" lacks "$tmp/server.log" "$admin_secret"
check "a client secret is not in the log" lacks "$tmp/server.log" "$new_secret"
check "a token is not in the log" lacks "$tmp/server.log" "$token"
kill -TERM "$server"
wait "$server"
status=$?
pids=()
check "SIGTERM: exits 0" is "$status" 0
finish
