#!/usr/bin/env bash
# Integration test of the HTTPS listener's TLS policy (SECURITY.md finding 5): edgeprovd with an
# RSA certificate (what iPXE needs, and what static-RSA and CBC suites would use) takes TLS 1.3,
# and TLS 1.2 only with forward secrecy (ECDHE, or DHE-RSA for OVMF's HTTP boot) and an AEAD
# cipher; the server refuses TLS 1.0, TLS 1.1, CBC suites and static RSA key exchange. A
# control handshake with openssl s_server shows this client can do each refused handshake, so
# a refusal is edgeprovd's.
# Usage: https_tls.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER

( cd "$tmp" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=edgeprov-tls-ca &&
    openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj /CN=localhost &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' >ext && openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key \
    -CAcreateserial -out tls.pem -days 1 -extfile ext ) >/dev/null 2>&1
chmod 600 "$tmp/tls.key"

grpc=$(free_port) https=$(free_port)
cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
plugins = { enabled = [ "storage-sqlite", "auth-local" ]; };
provisioning = { mode = "nztp"; };
CONF
"$build/bin/edgeprovd" --config "$tmp/site.conf" >"$tmp/edgeprovd.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q 'msg="ready' "$tmp/edgeprovd.log" && break; sleep 0.05; done
check "edgeprovd is ready with TLS" contains "$tmp/edgeprovd.log" 'msg="ready'

# hello OUT PORT S_CLIENT_ARGS...: one handshake with openssl s_client; its status is s_client's.
hello() {
  local out=$1 port=$2
  shift 2
  openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$tmp/ca.pem" "$@" </dev/null >"$out" 2>&1
}

# accepted NAME ARGS...: the handshake succeeds and the session shows the expected protocol.
accepted() {
  local out=$tmp/$1.out want=$2
  shift 2
  hello "$out" "$https" "$@" && contains "$out" "$want" && contains "$out" "Verify return code: 0 (ok)"
}

# refused NAME ARGS...: s_client sent its ClientHello and the server refused it: an alert
# (protocol version, handshake failure) or, as libmicrohttpd does when GnuTLS rejects the
# hello, the connection closed before any byte came back. Not a client-side "no protocols
# available", where nothing is sent.
refused() {
  local out=$tmp/$1.out
  shift
  if hello "$out" "$https" "$@"; then
    echo "---- handshake succeeded: openssl s_client $*"
    sed 's/^/    /' "$out"
    return 1
  fi
  if grep -qiE 'no protocols available|no ciphers available|no cipher match' "$out" ||
    ! grep -qE 'SSL handshake has read [0-9]+ bytes and written [1-9][0-9]* bytes' "$out"; then
    echo "---- the client refused before asking the server: openssl s_client $*"
    sed 's/^/    /' "$out"
    return 1
  fi
  grep -qiE 'alert protocol version|alert handshake failure|unexpected eof while reading' "$out" || {
    echo "---- no refusal by the server in the output: openssl s_client $*"
    sed 's/^/    /' "$out"
    return 1
  }
}

old='DEFAULT:@SECLEVEL=0' # Debian's client would otherwise refuse TLS 1.0/1.1 itself
check "TLS 1.3 is accepted" accepted tls13 "New, TLSv1.3, Cipher is TLS_" -tls1_3
check "TLS 1.2 with ECDHE-RSA-AES128-GCM-SHA256 is accepted" accepted ecdhe_gcm "New, TLSv1.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256" \
  -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
check "TLS 1.2 with ECDHE-RSA-AES256-GCM-SHA384 is accepted" accepted ecdhe_gcm256 \
  "New, TLSv1.2, Cipher is ECDHE-RSA-AES256-GCM-SHA384" -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384
check "TLS 1.2 with ECDHE-RSA-CHACHA20-POLY1305 is accepted" accepted ecdhe_chacha \
  "New, TLSv1.2, Cipher is ECDHE-RSA-CHACHA20-POLY1305" -tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305
# What Debian 12's OVMF offers first for UEFI HTTPS boot (it has no ECDHE).
check "TLS 1.2 with DHE-RSA-AES256-GCM-SHA384 is accepted" accepted dhe_gcm \
  "New, TLSv1.2, Cipher is DHE-RSA-AES256-GCM-SHA384" -tls1_2 -cipher DHE-RSA-AES256-GCM-SHA384
check "TLS 1.1 is refused by the server" refused tls11 -tls1_1 -cipher "$old"
check "TLS 1.0 is refused by the server" refused tls10 -tls1 -cipher "$old"
check "TLS 1.2 with AES128-SHA (static RSA, CBC) is refused" refused aes128sha -tls1_2 -cipher AES128-SHA
check "TLS 1.2 with ECDHE-RSA-AES128-SHA (CBC, SHA-1 MAC) is refused" refused ecdhe_cbc -tls1_2 -cipher ECDHE-RSA-AES128-SHA
check "TLS 1.2 with AES128-GCM-SHA256 (no forward secrecy) is refused" refused rsa_gcm -tls1_2 -cipher AES128-GCM-SHA256
check "TLS 1.2 with DHE-RSA-AES128-SHA256 (CBC) is refused" refused dhe_cbc -tls1_2 -cipher DHE-RSA-AES128-SHA256
check "TLS 1.2 with AES256-SHA256 (static RSA, CBC) is refused" refused aes256sha256 -tls1_2 -cipher AES256-SHA256

# Control: the same client, certificate and arguments against openssl s_server allowing
# everything; these handshakes succeed, so the refusals above are edgeprovd's policy.
ctl=$(free_port)
openssl s_server -accept "127.0.0.1:$ctl" -cert "$tmp/tls.pem" -key "$tmp/tls.key" -cipher 'ALL:@SECLEVEL=0' -quiet \
  </dev/null >"$tmp/s_server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do hello "$tmp/probe.out" "$ctl" -tls1_2 && break; sleep 0.05; done
control() { hello "$tmp/control-$1.out" "$ctl" "${@:2}"; }
check "control: this client does TLS 1.1" control tls11 -tls1_1 -cipher "$old"
check "control: this client does TLS 1.0" control tls10 -tls1 -cipher "$old"
check "control: this client does TLS 1.2 with AES128-SHA" control aes128sha -tls1_2 -cipher AES128-SHA
check "control: this client does TLS 1.2 with DHE-RSA-AES128-SHA256" control dhe_cbc -tls1_2 -cipher DHE-RSA-AES128-SHA256
check "control: this client does TLS 1.2 with AES128-GCM-SHA256" control rsa_gcm -tls1_2 -cipher AES128-GCM-SHA256

# The listener still serves HTTP over the allowed TLS.
check "the JWKS is served over TLS 1.3" sh -c "curl -sf --tlsv1.3 --cacert '$tmp/ca.pem' https://127.0.0.1:$https/.well-known/jwks.json | grep -q keys"

finish
