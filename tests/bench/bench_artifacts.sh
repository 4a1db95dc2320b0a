#!/usr/bin/env bash
# Benchmark (not a test): CLIENTS concurrent HTTPS downloads of one SIZE_MIB artifact from
# edgeprovd's embedded server (boot-https on libmicrohttpd + GnuTLS, a thread per connection)
# and from nginx running the config `edgeprov artifacts nginx-conf` writes, side by side in
# one run. Each run starts CLIENTS curl processes at once, each fetching the whole file; every
# client must get exactly the file's size, and one full download per server is checked by
# SHA-256 first (which also warms the page cache). Printed per server: wall time, aggregate
# MiB/s, per-client min/median/max seconds, server CPU seconds, peak RSS (edgeprovd: VmHWM;
# nginx: VmHWM summed over master and workers, so shared pages count more than once), and
# the throughput ratio edgeprovd/nginx (target >= 0.9). With ROUNDS > 1 the order alternates
# and the figures are over all rounds. nginx runs worker_processes auto.
# Caveat: the curl clients run on the same cores as the server, so their TLS decryption
# competes with the server's encryption; both servers pay the same tax, but the figures are
# what this machine can push through loopback, not what the server alone could.
# Usage: bench_artifacts.sh BUILD_DIR [CLIENTS] [SIZE_MIB] [ROUNDS]
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [CLIENTS] [SIZE_MIB] [ROUNDS]" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
clients=${2:-100}
size_mib=${3:-256}
rounds=${4:-1}
size=$((size_mib * 1024 * 1024))
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx workers run as nobody
daemon_pid= nginx_pid= client_pids=()
cleanup() {
  local p
  for p in "${client_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null
  wait 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A throwaway CA and a server certificate for 127.0.0.1 (P-256, as the integration tests).
( cd "$tmp" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 1 \
    -subj /CN=edgeprov-bench-ca && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key \
    -out tls.csr -subj /CN=localhost && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' >ext && openssl x509 -req \
    -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 1 -extfile ext ) >/dev/null 2>&1
chmod 600 "$tmp/tls.key"
cp "$tmp/tls.key" "$tmp/web.key" && chmod 644 "$tmp/web.key" # nginx's workers read it as nobody

mkdir -p "$tmp/artifacts" "$tmp/data"
chmod 755 "$tmp/artifacts"
echo "making the ${size_mib} MiB artifact..."
head -c "$size" /dev/urandom >"$tmp/artifacts/big.img"
chmod 644 "$tmp/artifacts/big.img"
sha=$(sha256sum "$tmp/artifacts/big.img" | cut -d' ' -f1)

grpc=$(free_port) https=$(free_port) web=$(free_port)
cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "boot-https" ]; };
artifacts = { directory = "$tmp/artifacts"; base_url = "https://127.0.0.1:$https/boot"; };
CONF

"$build/bin/edgeprovd" --config "$tmp/site.conf" >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 200); do grep -q 'msg="ready' "$tmp/daemon.log" && break; sleep 0.05; done
grep -q 'msg="ready' "$tmp/daemon.log" || { echo "edgeprovd did not start:"; cat "$tmp/daemon.log"; exit 1; }

"$build/bin/edgeprov" --config "$tmp/site.conf" artifacts nginx-conf --listen "127.0.0.1:$web" --key "$tmp/web.key" \
  --out "$tmp/edgeprov-site.conf" >"$tmp/nginx-conf.out" 2>&1 || { cat "$tmp/nginx-conf.out"; exit 1; }
cat >"$tmp/nginx.conf" <<CONF
worker_processes auto; daemon off; pid $tmp/nginx.pid; error_log $tmp/nginx-error.log;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $tmp/b; proxy_temp_path $tmp/p; fastcgi_temp_path $tmp/f;
       uwsgi_temp_path $tmp/u; scgi_temp_path $tmp/s; include $tmp/edgeprov-site.conf; }
CONF
nginx -c "$tmp/nginx.conf" &
nginx_pid=$!

declare -A url pid_of
tls=()
url[edgeprovd]=https://127.0.0.1:$https/boot/big.img
url[nginx]=https://127.0.0.1:$web/boot/big.img
pid_of[edgeprovd]=$daemon_pid
pid_of[nginx]=$nginx_pid
C=(curl -s --cacert "$tmp/ca.pem")
for server in edgeprovd nginx; do
  for _ in $(seq 100); do "${C[@]}" -f -o /dev/null -r 0-0 "${url[$server]}" && break; sleep 0.05; done
  got=$("${C[@]}" -f "${url[$server]}" | sha256sum | cut -d' ' -f1)
  [ "$got" = "$sha" ] || { echo "$server served a wrong file (sha256 $got)"; exit 1; }
  tls[${#tls[@]}]="$server: $("${C[@]}" -v -o /dev/null -r 0-0 "${url[$server]}" 2>&1 | sed -n 's/^\* SSL connection using //p' | head -1)"
done

# The server's processes: edgeprovd, or nginx's master and its workers.
procs() {
  local p=${pid_of[$1]}
  echo "$p"
  [ "$1" = nginx ] && ps -o pid= --ppid "$p" | tr -d ' '
  return 0
}
# Sum of field NAME (kB) of /proc/PID/status over the server's processes.
status_kb() {
  local p sum=0 v
  for p in $(procs "$1"); do
    v=$(awk -v k="$2:" '$1 == k { print $2 }' "/proc/$p/status" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
# CPU seconds (user + system, all threads) used so far by the server's processes.
cpu_ticks() {
  local p sum=0 v
  for p in $(procs "$1"); do
    v=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
hz=$(getconf CLK_TCK)
# Children's user+system seconds so far, from bash's `times` (the clients are waited for);
# `times` must run in this shell, not in a $(...) subshell.
children_cpu() {
  times >"$tmp/times"
  tail -1 "$tmp/times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } printf "%.2f\n", n }'
}
now() { date +%s.%N; }

# run SERVER ROUND: CLIENTS concurrent downloads; appends to the server's result files.
run() {
  local server=$1 round=$2 i p bad=0 t0 t1 c0 c1 u0 u1
  local out=$tmp/res-$server-$round
  mkdir -p "$out"
  for p in $(procs "$server"); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done # reset VmHWM
  c0=$(cpu_ticks "$server")
  children_cpu >"$tmp/u0"
  client_pids=()
  t0=$(now)
  for i in $(seq "$clients"); do
    "${C[@]}" -o /dev/null -w '%{size_download} %{time_total} %{http_code}\n' "${url[$server]}" >"$out/$i" &
    client_pids+=($!)
  done
  for p in "${client_pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
  t1=$(now)
  client_pids=()
  c1=$(cpu_ticks "$server")
  children_cpu >"$tmp/u1"
  u0=$(cat "$tmp/u0") u1=$(cat "$tmp/u1")
  local wrong
  wrong=$(cat "$out"/* | awk -v s="$size" '$1 != s || $3 != 200' | wc -l)
  local got
  got=$(cat "$out"/* | wc -l)
  if [ "$bad" -ne 0 ] || [ "$wrong" -ne 0 ] || [ "$got" -ne "$clients" ]; then
    echo "$server round $round: $bad curl failures, $wrong wrong sizes/statuses, $got results of $clients:"
    cat "$out"/* | sort | uniq -c | head
    exit 1
  fi
  local wall
  wall=$(echo "$t1 - $t0" | bc -l)
  echo "$wall" >>"$tmp/wall-$server"
  cat "$out"/* | awk '{ print $2 }' >>"$tmp/times-$server"
  echo "$(((c1 - c0)))" >>"$tmp/cpu-$server"
  echo "$u1 - $u0" | bc -l >>"$tmp/ccpu-$server"
  status_kb "$server" VmHWM >>"$tmp/hwm-$server"
  printf '  round %d %-10s %8.2f s  %8.1f MiB/s\n' "$round" "$server" "$wall" \
    "$(echo "$clients * $size_mib / $wall" | bc -l)"
}

nginx_workers=$(($(procs nginx | wc -l) - 1))
printf '%d clients x %d MiB over HTTPS on loopback, %d round(s), %d CPUs; nginx worker_processes auto (%d workers)\n' \
  "$clients" "$size_mib" "$rounds" "$(nproc)" "$nginx_workers"
printf 'TLS  %s\n' "${tls[@]}"
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then order="edgeprovd nginx"; else order="nginx edgeprovd"; fi
  for server in $order; do run "$server" "$r"; done
done

declare -A mibs
printf '\n%-10s %9s %10s %28s %10s %11s %12s\n' "" "wall s" "MiB/s" "per client s (min/med/max)" "server CPU" "client CPU" "peak RSS MiB"
for server in edgeprovd nginx; do
  wall=$(paste -sd+ "$tmp/wall-$server" | bc -l)
  mibs[$server]=$(echo "$rounds * $clients * $size_mib / $wall" | bc -l)
  read -r tmin tmed tmax < <(sort -n "$tmp/times-$server" | awk '{ a[NR] = $1 } END { printf "%s %s %s\n", a[1], (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[NR] }')
  cpu=$(echo "($(paste -sd+ "$tmp/cpu-$server")) / $hz" | bc -l)
  ccpu=$(paste -sd+ "$tmp/ccpu-$server" | bc -l)
  hwm=$(sort -n "$tmp/hwm-$server" | tail -1)
  printf '%-10s %9.2f %10.1f %28s %10.1f %11.1f %12.1f\n' "$server" "$wall" "${mibs[$server]}" \
    "$(printf '%.2f / %.2f / %.2f' "$tmin" "$tmed" "$tmax")" "$cpu" "$ccpu" "$(echo "$hwm / 1024" | bc -l)"
done
echo "(every client got $size bytes; CPU in seconds over all rounds; client CPU is the curl processes')"
printf 'ratio edgeprovd/nginx throughput: %.2f (target >= 0.9)\n' "$(echo "${mibs[edgeprovd]} / ${mibs[nginx]}" | bc -l)"
