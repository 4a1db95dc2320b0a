#!/usr/bin/env bash
# Benchmark (not a test): image.stream against the standard pipeline
#   curl -s URL | zstd -dc | dd of=FILE bs=4M
# on the same 1 GiB zstd image served by a local nginx, side by side in one run, each run
# ROUNDS times (best time kept), printed with MiB/s and the ratio (pipeline time / ours:
# >= 1.0 means image.stream is at least as fast). image.stream also hashes what it writes
# (SHA-256) and fsyncs; the pipeline does neither, so dd gets conv=fsync to be fair on the
# disk side. The image is half random data, half zeros (an OS image's free space), made once
# and kept in BUILD_DIR/bench-image.
# Usage: bench_image_stream.sh BUILD_DIR [ROUNDS]
set -euo pipefail
build=$(cd "$1" && pwd)
rounds=${2:-3}
cache=$build/bench-image
mkdir -p "$cache"
if [ ! -s "$cache/os.img.zst" ]; then
  echo "making the 1 GiB image (once)..."
  { head -c 512M /dev/urandom; head -c 512M /dev/zero; } >"$cache/os.img"
  sha256sum "$cache/os.img" | cut -d' ' -f1 >"$cache/os.img.sha256"
  zstd -q -T0 -3 "$cache/os.img" -o "$cache/os.img.zst"
  rm -f "$cache/os.img"
fi
sha=$(cat "$cache/os.img.sha256")
tmp=$(mktemp -d)
chmod 755 "$tmp"
nginx_pid=
trap '[ -n "$nginx_pid" ] && kill $nginx_pid 2>/dev/null; rm -rf "$tmp"' EXIT
ln -s "$cache/os.img.zst" "$tmp/os.img.zst"
chmod 755 "$cache"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $tmp/nginx.pid; error_log $tmp/nginx-error.log;
events {}
http { access_log off; sendfile on; client_body_temp_path $tmp/b; proxy_temp_path $tmp/p; fastcgi_temp_path $tmp/f;
       uwsgi_temp_path $tmp/u; scgi_temp_path $tmp/s; server { listen 127.0.0.1:$port; root $tmp; } }
CONF
nginx -c "$tmp/nginx.conf" &
nginx_pid=$!
url=http://127.0.0.1:$port/os.img.zst
for _ in $(seq 100); do curl -fs -o /dev/null -r 0-0 "$url" && break; sleep 0.05; done
printf 'paths = { data = "%s/data"; plugins = [ "%s/lib/edgeprov/plugins" ]; };\n' "$tmp" "$build" >"$tmp/site.conf"

best() { sort -n | head -1; }
time_of() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
ours=() theirs=()
for i in $(seq "$rounds"); do
  rm -f "$tmp/out-ours" "$tmp/out-pipe"
  sync # each run starts with no dirty pages of the last
  theirs+=("$(time_of sh -c "curl -s '$url' | zstd -dc | dd of='$tmp/out-pipe' bs=4M conv=fsync")")
  rm -f "$tmp/out-pipe"
  sync
  ours+=("$(time_of "$build/bin/edgeprov" --config "$tmp/site.conf" actions run image.stream url="$url" target="$tmp/out-ours" sha256="$sha")")
  [ "$(sha256sum "$tmp/out-ours" | cut -d' ' -f1)" = "$sha" ] || { echo "image.stream wrote a wrong image"; exit 1; }
  rm -f "$tmp/out-ours"
done
t_ours=$(printf '%s\n' "${ours[@]}" | best)
t_theirs=$(printf '%s\n' "${theirs[@]}" | best)
compressed=$(stat -L -c %s "$tmp/os.img.zst")
printf '1 GiB image (%d MiB zstd) from nginx on loopback, best of %d\n' $((compressed >> 20)) "$rounds"
printf '%-44s %10s %12s\n' "" "seconds" "MiB/s out"
printf '%-44s %10.2f %12.0f\n' "curl | zstd -dc | dd bs=4M conv=fsync" "$t_theirs" "$(echo "1024 / $t_theirs" | bc -l)"
printf '%-44s %10.2f %12.0f\n' "edgeprov image.stream (+ SHA-256, fsync)" "$t_ours" "$(echo "1024 / $t_ours" | bc -l)"
printf 'ratio (pipeline time / image.stream time): %.2f (target >= 1.0)\n' "$(echo "$t_theirs / $t_ours" | bc -l)"
