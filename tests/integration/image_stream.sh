#!/usr/bin/env bash
# Integration test of the core actions image.stream and disk.erase (plugin actions-core),
# run with `edgeprov actions run` against a real nginx (HTTP, HTTPS, and as a forward proxy)
# and a TCP proxy that cuts the first download mid-image (tests/support/cut_proxy.py).
# Usage: image_stream.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
loop=
on_exit() { [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null; }
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY

chmod 755 "$tmp" # nginx workers run as nobody
mkdir -p "$tmp/www"
head -c 40M /dev/urandom >"$tmp/www/os.img"
head -c 8M /dev/zero >>"$tmp/www/os.img"
zstd -q -3 "$tmp/www/os.img" -o "$tmp/www/os.img.zst"
gzip -c "$tmp/www/os.img" >"$tmp/www/os.img.gz"
sha=$(sha256sum "$tmp/www/os.img" | cut -d' ' -f1)
size=$(stat -c %s "$tmp/www/os.img.zst")
make_test_tls "$tmp"

http=$(free_port) https=$(free_port) fwd=$(free_port)
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events {}
http {
  access_log $tmp/access.log;
  client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy; fastcgi_temp_path $tmp/fcgi;
  uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;
  server { listen 127.0.0.1:$http; root $tmp/www; }
  server { listen 127.0.0.1:$https ssl; ssl_certificate $tmp/tls.pem; ssl_certificate_key $tmp/tls.key; root $tmp/www; }
  server { listen 127.0.0.1:$fwd; access_log $tmp/forward.log; location / { proxy_pass http://\$http_host\$request_uri; } }
}
CONF
nginx -c "$tmp/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$http/os.img.gz" -r 0-0 && break; sleep 0.05; done

printf 'paths = { data = "%s/data"; plugins = [ "%s/lib/edgeprov/plugins" ]; };\n' "$tmp" "$build" >"$tmp/site.conf"
run() { "$build/bin/edgeprov" --config "$tmp/site.conf" actions run "$@"; }

check "raw over HTTP" run_status 0 "$tmp/out" run image.stream url=http://127.0.0.1:$http/os.img target=$tmp/disk sha256=$sha
check "raw: the disk holds the image" cmp -s "$tmp/disk" "$tmp/www/os.img"
check "progress is reported in bytes" contains "$tmp/out" "progress: 50331648/50331648 (100%) 48 MiB written, sha256 verified"
check "zstd over HTTPS, trusting the test CA" run_status 0 "$tmp/out" run image.stream url=https://127.0.0.1:$https/os.img.zst \
  ca_file=$tmp/ca.pem target=$tmp/disk2 sha256=$sha
check "zstd: the disk holds the image" cmp -s "$tmp/disk2" "$tmp/www/os.img"
check "HTTPS without the CA is refused" run_status 1 "$tmp/out" run image.stream url=https://127.0.0.1:$https/os.img.zst \
  target=$tmp/disk2 sha256=$sha retries=0
check "gzip through an HTTP proxy" run_status 0 "$tmp/out" run image.stream url=http://127.0.0.1:$http/os.img.gz \
  proxy=http://127.0.0.1:$fwd target=$tmp/disk3 sha256=$sha
check "gzip: the disk holds the image" cmp -s "$tmp/disk3" "$tmp/www/os.img"
check "the proxy carried it" grep -q 'GET http://127.0.0.1:'"$http"'/os.img.gz' "$tmp/forward.log"
check "file:// works too" run_status 0 "$tmp/out" run image.stream url=file://$tmp/www/os.img.zst format=zstd target=$tmp/disk4 sha256=$sha

# The connection is cut halfway: the action resumes with a Range request.
python3 "$src/tests/support/cut_proxy.py" 127.0.0.1 $http $((size / 2)) "$tmp/cut.port" "$tmp/cut.log" &
cut_pid=$!
pids+=($cut_pid)
for _ in $(seq 100); do [ -s "$tmp/cut.port" ] && break; sleep 0.05; done
check "cut mid-image: the action still succeeds" run_status 0 "$tmp/out" run image.stream \
  url=http://127.0.0.1:$(cat "$tmp/cut.port")/os.img.zst target=$tmp/disk5 sha256=$sha retry_delay_ms=100
check "cut: the disk holds the image" cmp -s "$tmp/disk5" "$tmp/www/os.img"
check "cut: the action said it resumed" grep -q "download broke after .* bytes .*; resuming at byte" "$tmp/out"
check "cut: the first connection was cut" grep -q "conn 1: cut after" "$tmp/cut.log"
check "cut: the second request asked for a Range" grep -qE "conn 2: GET /os.img.zst HTTP/1.1 Range: bytes=[1-9][0-9]*-" "$tmp/cut.log"
resumed_at=$(sed -n 's/.*resuming at byte \([0-9]*\) .*/\1/p' "$tmp/out" | head -1)
second=$(sed -n 's/^conn 2: carried //p' "$tmp/cut.log")
extra=$((resumed_at + second - size))
echo "     image $size bytes: resumed at byte $resumed_at, then $second bytes (headers included): $extra bytes fetched twice"
check "cut: re-downloaded under 1% of the image" test "$extra" -lt $((size / 100))

# Bad images and dead servers fail with a clear message.
cp "$tmp/www/os.img" "$tmp/www/bad.img"
printf 'X' | dd of="$tmp/www/bad.img" bs=1 seek=1000000 conv=notrunc 2>/dev/null
bad=$(sha256sum "$tmp/www/bad.img" | cut -d' ' -f1)
check "a corrupted image fails" run_status 1 "$tmp/out" run image.stream url=http://127.0.0.1:$http/bad.img target=$tmp/disk6 sha256=$sha
check "and names both hashes" contains "$tmp/out" "sha256 mismatch: expected $sha, got $bad"
head -c $((size / 3)) "$tmp/www/os.img.zst" >"$tmp/www/short.zst"
check "a truncated zstd stream fails" run_status 1 "$tmp/out" run image.stream url=http://127.0.0.1:$http/short.zst target=$tmp/disk6 sha256=$sha
check "and says so" contains "$tmp/out" "the image ends in the middle of its zstd stream"
dead=$(free_port)
check "a dead server fails after the retries" run_status 1 "$tmp/out" run image.stream url=http://127.0.0.1:$dead/os.img \
  target=$tmp/disk6 sha256=$sha retries=2 retry_delay_ms=50
check "and says how often it tried and why" grep -q "gave up after 3 attempts: http://127.0.0.1:$dead/os.img: Couldn't connect to server" "$tmp/out"
check "a missing image fails at once" run_status 1 "$tmp/out" run image.stream url=http://127.0.0.1:$http/nope.img target=$tmp/disk6 sha256=$sha
check "with the HTTP status" contains "$tmp/out" "http://127.0.0.1:$http/nope.img: HTTP 404"
check "a bad sha256 parameter is named" run_status 1 "$tmp/out" run image.stream url=http://127.0.0.1:$http/os.img target=$tmp/disk6 sha256=abc
check "sha256 named" contains "$tmp/out" "sha256: must be 64 hex digits"
check "a relative target is refused" run_status 1 "$tmp/out" run image.stream url=http://127.0.0.1:$http/os.img target=disk sha256=$sha
check "target named" contains "$tmp/out" "target: 'disk' must be an absolute path"

# disk.erase on a real block device: a loop device over an image file with a GPT and an
# ext4 filesystem in its second partition (at 17 MiB).
truncate -s 64M "$tmp/gpt.img"
part2=34816 # sectors: 2048 + 16 MiB
mkfs.ext4 -q -F -E offset=$((part2 * 512)) "$tmp/gpt.img" 32M
sgdisk -n 1:2048:+16M -n 2:$part2:0 "$tmp/gpt.img" >/dev/null 2>&1
loop=$(losetup -f --show -P "$tmp/gpt.img")
check "before: a GPT with two partitions" sh -c "sgdisk -p '$loop' | grep -qE '^ +2 +[0-9]+'"
check "before: an ext4 filesystem in partition 2" sh -c "blkid -p -O $((part2 * 512)) '$loop' | grep -q ext4"
check "disk.erase on a block device" run_status 0 "$tmp/out" run disk.erase target=$loop
check "after: no filesystem in partition 2" sh -c "! blkid -p -O $((part2 * 512)) '$loop' | grep -q ext4"
check "after: no GPT (sgdisk would create a new one)" sh -c "sgdisk -p '$loop' 2>&1 | grep -q 'Creating new GPT entries'"
check "after: nor its backup at the end" sh -c "! sgdisk -v '$loop' 2>&1 | grep -q 'backup header'"
losetup -d "$loop"
loop=
finish
