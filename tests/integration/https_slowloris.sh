#!/usr/bin/env bash
# Integration test of the HTTPS listener's limits (issue 16, point 4). With the default https.*
# settings, a slowloris from 127.0.0.1 (tests/support/slowloris.py: 1,100 TLS connections, each
# sending the start of a request and then a header byte a second, and for 7 s 20 more a second
# to replace those closed) holds every connection the address may have, and meanwhile
# legitimate fetches of the JWKS from the same address succeed within 2 s; the server's threads
# do not grow with the connections; every slowloris connection is closed by the server, those
# still open at the request deadline (10 s) by the deadline. Then, with https.connections_per_ip = 4 and four connections of the address busy
# (downloads the client does not read), a fifth is refused at once rather than left hanging,
# and gets in once one of the four is gone.
# Usage: https_slowloris.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER

make_test_tls "$tmp"
mkdir -p "$tmp/boot"
truncate -s 1G "$tmp/boot/big.img" # sparse: sent far slower than the test lasts
grpc=$(free_port) https=$(free_port)
# site FILE [HTTPS_SECTION]: the site, with the default https.* unless a section is given.
site() {
  cat >"$1" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "boot-https" ]; };
boot-https = { directory = "$tmp/boot"; };
${2:-}
CONF
}
jwks_url=https://127.0.0.1:$https/.well-known/jwks.json

# ---- a slowloris from 127.0.0.1, with the defaults --------------------------------------------
site "$tmp/site.conf"
check "edgeprovd is ready" start_daemon "$tmp/site.conf" "$tmp/edgeprovd.log"
check "the defaults are logged" contains "$tmp/edgeprovd.log" \
  "4 connection threads, 4 handler threads, at most 1024 connections (256 from one address), requests in within 10 s"

# https_threads: the HTTPS server's threads (libmicrohttpd's MHD-*, the server's https-*).
https_threads() { cat /proc/"$daemon"/task/*/comm 2>/dev/null | grep -cE '^(MHD-|https-)'; }
threads() { awk '/^Threads:/ { print $2 }' /proc/"$daemon"/status; }
threads_before=$(threads) https_before=$(https_threads)
( while kill -0 "$daemon" 2>/dev/null; do echo "$(threads) $(https_threads)"; sleep 0.1; done ) >"$tmp/threads.txt" &
pids+=($!)

python3 "$src/tests/support/slowloris.py" --port "$https" --count 1100 --refill-rate 20 --refill-until 7 --duration 19 \
  --cafile "$tmp/ca.pem" --ready "$tmp/slow.ready" --out "$tmp/slow.json" >"$tmp/slowloris.log" 2>&1 &
slowloris=$!
pids+=($slowloris)
for _ in $(seq 300); do [ -s "$tmp/slow.ready" ] && break; sleep 0.05; done
check "the slowloris has opened its 1,100 connections" grep -qx 1100 "$tmp/slow.ready"

# held: the established connections to the HTTPS port, seen from the server's side.
held() { ss -Htn state established "( sport = :$https )" | wc -l; }
# fetch N: the JWKS over TLS within 2 s, while the slowloris holds the address's 256 connections.
fetch() {
  local before status
  before=$(held)
  status=$(curl -sS --max-time 2 --cacert "$tmp/ca.pem" -o "$tmp/jwks$1.json" -w '%{http_code} %{time_total}' \
    "$jwks_url" 2>"$tmp/curl$1.err")
  echo "     fetch $1: HTTP ${status% *} in ${status#* } s, $before connections open before"
  if [ "$before" -lt 250 ]; then echo "---- only $before connections were open: the slowloris did not hold the cap"; return 1; fi
  [ "${status% *}" = 200 ] && contains "$tmp/jwks$1.json" '"keys"' || { echo "---- failed:"; cat "$tmp/curl$1.err"; return 1; }
}
check "a legitimate JWKS fetch from the same address succeeds within 2 s during the slowloris" fetch 1
sleep 2
check "and again 2 s later" fetch 2
sleep 2
check "and again 2 s later still" fetch 3

wait "$slowloris"
# summary KEY: a figure of the slowloris' summary.
summary() {
  python3 -c 'import functools, json, sys
print(functools.reduce(lambda d, k: d[k], sys.argv[2].split("."), json.load(open(sys.argv[1]))))' "$tmp/slow.json" "$1"
}
# at_least/under KEY N: the figure (its whole part) compared, shown when it does not hold.
at_least() { local v; v=$(summary "$1"); [ "${v%.*}" -ge "$2" ] || { echo "---- $1 is $v, expected at least $2"; return 1; }; }
under() { local v; v=$(summary "$1"); [ "${v%.*}" -lt "$2" ] || { echo "---- $1 is $v, expected under $2"; return 1; }; }
echo "     slowloris: $(cat "$tmp/slow.json")"
check "the slowloris replaced closed connections" at_least refilled 50
check "the server closed every slowloris connection" at_least closed_by_server "$(summary opened)"
check "none was left open" under still_open 1
check "none lived past the 10 s deadline by 2 s" under max_age_at_close_s 12
check "those holding the cap were closed by the deadline (at 9 s or later), 200 or more" at_least closed_after.9 200

max_threads=$(awk '$1 > m { m = $1 } END { print m }' "$tmp/threads.txt")
max_https=$(awk '$2 > m { m = $2 } END { print m }' "$tmp/threads.txt")
echo "     threads: $threads_before before (HTTPS server: $https_before), at most $max_threads during (HTTPS server: $max_https)"
check "the HTTPS server has its 9 threads: 4 connection, 4 handler, 1 deadline" test "$https_before" -eq 9
check "they stayed 9 through 1,100 connections" test "$max_https" -eq 9
check "edgeprovd's threads did not grow with the connections" test "$max_threads" -le "$((threads_before + 4))"
check "edgeprovd stayed under 64 threads in all" test "$max_threads" -lt 64
check "edgeprovd serves after the slowloris" sh -c "curl -sf --max-time 2 --cacert '$tmp/ca.pem' '$jwks_url' | grep -q keys"
check "edgeprovd stops cleanly" stop_daemon

# ---- over the per-address cap with every connection busy: refused at once --------------------
site "$tmp/site.conf" "https = { connections_per_ip = 4; };"
check "edgeprovd is ready with https.connections_per_ip = 4" start_daemon "$tmp/site.conf" "$tmp/edgeprovd2.log"
cat >"$tmp/busy.py" <<'PY'
import json, socket, ssl, sys, time
port, ca, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False

def dial(rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return ctx.wrap_socket(s, server_hostname="localhost")

def jwks():
    """Seconds until the server answered the JWKS (True) or closed the connection (False)."""
    start = time.monotonic()
    try:
        t = dial()
        t.sendall(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = t.recv(65536)
            if not chunk:
                break
            data += chunk
        ok = data.startswith(b"HTTP/1.1 200") and b'"keys"' in data
    except (OSError, ssl.SSLError):
        ok = False
    return ok, time.monotonic() - start

busy = []
for _ in range(4):  # downloads of a 1 GiB file, not read: busy, not waiting for a request
    t = dial(rcvbuf=4096)
    t.sendall(b"GET /boot/big.img HTTP/1.1\r\nHost: x\r\n\r\n")
    head = t.recv(4096)
    busy.append((t, head.startswith(b"HTTP/1.1 200")))
time.sleep(0.5)
refused, refused_s = jwks()
busy[0][0].close()
time.sleep(0.5)
admitted, admitted_s = jwks()
json.dump({"busy": sum(ok for _, ok in busy), "fifth_answered": refused, "fifth_s": round(refused_s, 3),
           "after_one_left_answered": admitted, "after_s": round(admitted_s, 3)}, open(out, "w"))
PY
python3 "$tmp/busy.py" "$https" "$tmp/ca.pem" "$tmp/busy.json" >"$tmp/busy.log" 2>&1
echo "     busy: $(cat "$tmp/busy.json" 2>/dev/null || cat "$tmp/busy.log")"
busy() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/busy.json" "$1"; }
check "four downloads hold the address's four connections" test "$(busy busy)" = 4
check "a fifth connection is refused" test "$(busy fifth_answered)" = False
check "at once (under 1 s), not left hanging" python3 -c "import sys; sys.exit(0 if $(busy fifth_s) < 1 else 1)"
check "once one download is gone, a new connection is served" test "$(busy after_one_left_answered)" = True
check "edgeprovd stops cleanly" stop_daemon

finish
