#!/usr/bin/env bash
# Integration test of provisioning on loopback: a real edgeprovd (storage-sqlite, auth-local,
# actions-core, os-ubuntu, os-microvisor) and real edgeprov-agent processes whose target
# disks are image files. Each node onboards (nZTP), gets its workflow pushed, erases the
# disk, streams its OS image over HTTPS from nginx, writes the cloud-init seed (checked by
# Debian's cloud-init schema) and the installer, sets the boot order in a fake efivars
# directory, asks for a reboot (--no-reboot), and once the "installed OS" reports in the
# Instance is RUNNING. Also: a corrupted image fails the workflow with both hashes, an
# operator re-arms it and it finishes; one node's token cannot reach another's workflow.
# Usage: workflow.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
chmod 755 "$tmp" # nginx workers run as nobody
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
. "$src/tests/interop/npm_install.sh"
cp "$src/tests/interop/workflow_call.mjs" "$modules/"

make_test_tls "$tmp"
cp "$tmp/tls.key" "$tmp/web.key" && chmod 644 "$tmp/web.key" # nginx's workers run as nobody

# The OS images: a GPT disk with an EFI system partition and the OS's own partitions, as the
# real images have (ubuntu: root ext4 "cloudimg-rootfs"; microvisor: a root and the ext4 data
# partition "data" that holds the NoCloud seed).
mkdir -p "$tmp/www"
make_image() { # FILE ROOT_LABEL [SEED_LABEL]
  truncate -s 64M "$1"
  mkfs.vfat -n ESP --offset 2048 "$1" 16384 >/dev/null
  mkfs.ext4 -q -F -L "$2" -E offset=$((18432 * 512)) "$1" 24M
  if [ -n "${3:-}" ]; then
    mkfs.ext4 -q -F -L "$3" -E offset=$((67584 * 512)) "$1" 8M
    sgdisk -n 1:2048:18431 -t 1:ef00 -n 2:18432:67583 -n 3:67584:83967 "$1" >/dev/null 2>&1
  else
    sgdisk -n 1:2048:18431 -t 1:ef00 -n 2:18432:67583 "$1" >/dev/null 2>&1
  fi
  head -c 8M /dev/urandom | dd of="$1" bs=1M seek=48 conv=notrunc 2>/dev/null # "OS content" past the partitions
}
make_image "$tmp/ubuntu.img" cloudimg-rootfs
make_image "$tmp/microvisor.img" microvisor-root data
zstd -q "$tmp/ubuntu.img" -o "$tmp/www/ubuntu.img.zst"
zstd -q "$tmp/microvisor.img" -o "$tmp/www/microvisor.img.zst"
ubuntu_sha=$(sha256sum "$tmp/ubuntu.img" | cut -d' ' -f1)
microvisor_sha=$(sha256sum "$tmp/microvisor.img" | cut -d' ' -f1)

web=$(free_port)
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $tmp/nginx.pid; error_log $tmp/nginx-error.log;
events {}
http { access_log $tmp/access.log; client_body_temp_path $tmp/b; proxy_temp_path $tmp/p; fastcgi_temp_path $tmp/f;
       uwsgi_temp_path $tmp/u; scgi_temp_path $tmp/s;
       server { listen 127.0.0.1:$web ssl; ssl_certificate $tmp/tls.pem; ssl_certificate_key $tmp/web.key; root $tmp/www;
                location = /microvisor.img.zst { limit_rate 3m; } } } # slow enough to kill an agent mid-image
CONF
nginx -c "$tmp/nginx.conf" &
pids+=($!)

grpc=$(free_port) https=$(free_port)
cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
provisioning = { mode = "nztp"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "actions-core", "os-ubuntu", "os-microvisor" ]; };
cloudinit = { users = ( { name = "ops"; sudo = true;
                          ssh_keys = [ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEnHaSEbgBO3L4B4CbCjWG4fTuIUXGuhFznBzDUOR4RY ops@site" ]; } );
              fragments = [ "$tmp/site-fragment.yaml" ]; };
os-ubuntu = { image_url = "https://127.0.0.1:$web/ubuntu.img.zst"; image_sha256 = "$ubuntu_sha"; };
os-microvisor = { image_url = "https://127.0.0.1:$web/microvisor.img.zst"; image_sha256 = "$microvisor_sha"; };
CONF
printf 'timezone: Etc/UTC\nwrite_files:\n- path: /etc/motd\n  content: "managed by edgeprov\\n"\n' >"$tmp/site-fragment.yaml"
"$build/bin/edgeprovd" --config "$tmp/site.conf" >"$tmp/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q 'msg="ready' "$tmp/daemon.log" && break; sleep 0.05; done
check "edgeprovd starts with the OS plugins" grep -q 'msg="ready' "$tmp/daemon.log"
E="$build/bin/edgeprov --config $tmp/site.conf"

fake_efivars() { # DIR LABEL: BootOrder 0001,0002 with Boot0002 = LABEL
  mkdir -p "$1"
  /usr/bin/python3 - "$1" "$2" <<'PY'
import struct, sys
d, label = sys.argv[1], sys.argv[2]
g = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
attrs = struct.pack("<I", 7)
def option(desc):
    path = bytes([0x7f, 0xff, 4, 0])  # end of device path
    return struct.pack("<IH", 1, len(path)) + (desc + "\0").encode("utf-16-le") + path
open(f"{d}/Boot0001-{g}", "wb").write(attrs + option("UEFI PXEv4"))
open(f"{d}/Boot0002-{g}", "wb").write(attrs + option(label))
open(f"{d}/BootOrder-{g}", "wb").write(attrs + struct.pack("<HH", 1, 2))
PY
}
boot_order() { /usr/bin/python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read()[4:]; print(",".join("%04X" % x for x in struct.unpack("<%dH" % (len(b)//2), b)))' \
  "$1/BootOrder-8be4df61-93ca-11d2-aa0d-00e098032b8c"; }
node_dir() { # NAME UUID SERIAL
  mkdir -p "$tmp/$1/sys/class/dmi/id"
  echo "$2" >"$tmp/$1/sys/class/dmi/id/product_uuid"
  echo "$3" >"$tmp/$1/sys/class/dmi/id/product_serial"
}
agent() { # NAME [FLAGS...]: the node's agent in the Micro-OS
  local name=$1
  shift
  [ -e "$tmp/$name.disk" ] || truncate -s 64M "$tmp/$name.disk" # a blank disk
  "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" --token-url "https://127.0.0.1:$https/oauth2/token" \
    --sysroot "$tmp/$name" --state-dir "$tmp/$name/state" --target-disk "$tmp/$name.disk" --efivars "$tmp/$name-efivars" \
    --backoff-ms 100 --backoff-max-ms 400 "$@"
}
wait_exit() { for _ in $(seq $(($2 * 10))); do kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }; sleep 0.1; done; return 124; }
partition() { # DISK N OUT: copies partition N out of DISK
  local start size
  start=$(sgdisk -i "$2" "$1" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  size=$(sgdisk -i "$2" "$1" | sed -n 's/^Partition size: \([0-9]*\).*/\1/p')
  dd if="$1" of="$3" bs=512 skip="$start" count="$size" 2>/dev/null
}
instance_of() { $E host show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])'; }

# ---- a: the os-ubuntu workflow from start to RUNNING -----------------------------------------
UA=eeeeeeee-0000-4000-8000-00000000000a
node_dir a $UA WFNODEA01
fake_efivars "$tmp/a-efivars" ubuntu
$E host add --uuid $UA --serial WFNODEA01 --os ubuntu-22.04 --auto-onboard >/dev/null
agent a --no-reboot >"$tmp/a.log" 2>&1 &
apid=$!
pids+=($apid)
check "ubuntu: the agent finishes its workflow" wait_exit $apid 120
check "ubuntu: every action succeeded" sh -c "grep -c 'SUCCESS' '$tmp/a.log' | grep -qx 8"
check "ubuntu: the image was verified as written" contains "$tmp/a.log" "sha256 $ubuntu_sha"
check "ubuntu: the node's action log reached the orchestrator" grep -q "host $UA action 1: .*bytes written from .* received, sha256 $ubuntu_sha" "$tmp/daemon.log"
check "ubuntu: the reboot is the agent's, after reporting" contains "$tmp/a.log" "the workflow asks for a reboot: not restarting (--no-reboot)"
IA=$(instance_of $UA)
$E instance list >"$tmp/out"
check "ubuntu: instance status reads N/M" grep -qE "$IA .*PROVISIONING +8/8: done, rebooting into ubuntu-22.04" "$tmp/out"
check "ubuntu: host status is Rebooting" sh -c "$E host show $UA | grep -q 'Rebooting'"
check "ubuntu: the partition table and ESP are the image's" cmp -s -n $((18432 * 512)) "$tmp/a.disk" "$tmp/ubuntu.img"
check "ubuntu: the OS content past the partitions is the image's" sh -c "cmp -s -i $((48 << 20)) '$tmp/a.disk' '$tmp/ubuntu.img'"
partition "$tmp/a.disk" 2 "$tmp/a-root.img"
debugfs -R 'cat /var/lib/cloud/seed/nocloud/user-data' "$tmp/a-root.img" >"$tmp/a-user-data" 2>/dev/null
debugfs -R 'cat /var/lib/cloud/seed/nocloud/meta-data' "$tmp/a-root.img" >"$tmp/a-meta-data" 2>/dev/null
check "ubuntu: user-data is on the root filesystem" grep -q '^#cloud-config' "$tmp/a-user-data"
check "ubuntu: cloud-init schema accepts it" run_status 0 "$tmp/out" cloud-init schema --config-file "$tmp/a-user-data"
check "ubuntu: user-data is 0600" sh -c "debugfs -R 'stat /var/lib/cloud/seed/nocloud/user-data' '$tmp/a-root.img' 2>/dev/null | grep -q 'Mode:  0600'"
secret=$(sed -n 's/^client_secret=//p' "$tmp/a/state/credentials")
check "ubuntu: the node's own credentials are in its user-data" /usr/bin/python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
f = [w for w in d["write_files"] if w["path"] == "/etc/edgeprov/credentials"][0]
assert f["content"] == "client_id=edgenode-%s\nclient_secret=%s\nproject_id=\n" % (sys.argv[2], sys.argv[3]), f["content"]
assert f["permissions"] == "0600"' "$tmp/a-user-data" $UA "$secret"
check "ubuntu: the site's user and SSH key are in it" /usr/bin/python3 -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
u = [u for u in d["users"] if u["name"] == "ops"][0]
assert u["ssh_authorized_keys"][0].endswith("ops@site") and u["sudo"] == "ALL=(ALL) NOPASSWD:ALL", u
assert d["timezone"] == "Etc/UTC" and any(w["path"] == "/etc/motd" for w in d["write_files"]), d' "$tmp/a-user-data"
check "ubuntu: meta-data names the instance" contains "$tmp/a-meta-data" "instance-id: '$IA'"
check "ubuntu: the installer is there, executable" sh -c "debugfs -R 'stat /usr/local/sbin/edgeprov-install' '$tmp/a-root.img' 2>/dev/null | grep -q 'Mode:  0755'"
check "ubuntu: its unit too" sh -c "debugfs -R 'cat /etc/systemd/system/edgeprov-install.service' '$tmp/a-root.img' 2>/dev/null | grep -q ExecStart"
check "ubuntu: the installed OS boots first" test "$(boot_order "$tmp/a-efivars")" = "0002,0001"
check "ubuntu: the secret is not in the daemon log" lacks "$tmp/daemon.log" "$secret"
check "ubuntu: nor in the store" absent -raF -- "$secret" "$tmp/data"
# fake_mounts DIR ROOT_DM_UUID [DATA_DM_UUID]: the mount table and device-mapper's sysfs of an
# installed OS whose root (and /data) are device-mapper devices, as cryptsetup/veritysetup name them.
fake_mounts() {
  mkdir -p "$1/proc/self" "$1/sys/dev/block/253:0/dm" "$1/sys/dev/block/253:1/dm" "$1/sys/dev/block/254:1"
  printf '22 1 253:0 / / ro,relatime shared:1 - ext4 /dev/mapper/root ro\n' >"$1/proc/self/mountinfo"
  printf '23 22 0:5 / /dev rw,nosuid - devtmpfs udev rw\n24 22 254:1 / /boot/efi rw - vfat /dev/vda1 rw\n' >>"$1/proc/self/mountinfo"
  echo "$2" >"$1/sys/dev/block/253:0/dm/uuid" && echo root >"$1/sys/dev/block/253:0/dm/name"
  if [ -n "${3:-}" ]; then
    printf '26 22 253:1 / /data rw,relatime - ext4 /dev/mapper/data rw\n' >>"$1/proc/self/mountinfo"
    echo "$3" >"$1/sys/dev/block/253:1/dm/uuid" && echo data >"$1/sys/dev/block/253:1/dm/name"
  fi
}
$E host show $UA >"$tmp/a-show0"
check "ubuntu: before the installed OS reports, its disk protection is unknown" contains "$tmp/a-show0" "disk:          - (reported by the installed OS)"
fake_mounts "$tmp/a" CRYPT-LUKS2-0f1e2d3c4b5a69788796a5b4c3d2e1f0-root
check "ubuntu: the installed OS reports in" run_status 0 "$tmp/out" agent a --installed
check "ubuntu: the instance is RUNNING" sh -c "$E instance list | grep -qE '$IA .*RUNNING'"
$E host show $UA >"$tmp/a-show"
check "ubuntu: host show: its root is encrypted, not verified" contains "$tmp/a-show" \
  "disk:          encrypted, root not verified: / on root (dm-crypt LUKS2) (reported "
$E host show $UA --json >"$tmp/a-show.json"
check "ubuntu: host show --json: disk_protection" /usr/bin/python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["disk_protection"]
assert p["encrypted"] is True and p["verified_root"] is False and p["detail"] == "/ on root (dm-crypt LUKS2)", p' "$tmp/a-show.json"

# ---- b: the os-microvisor workflow ------------------------------------------------------------
UB=eeeeeeee-0000-4000-8000-00000000000b
node_dir b $UB WFNODEB01
fake_efivars "$tmp/b-efivars" microvisor
$E host add --uuid $UB --serial WFNODEB01 --os microvisor --auto-onboard >/dev/null
agent b --no-reboot >"$tmp/b.log" 2>&1 &
bpid=$!
pids+=($bpid)
check "microvisor: the agent finishes its workflow" wait_exit $bpid 120
IB=$(instance_of $UB)
check "microvisor: instance status reads N/M" sh -c "$E instance list | grep -qE '$IB .*PROVISIONING +[0-9]+/[0-9]+: done, rebooting into microvisor'"
partition "$tmp/b.disk" 3 "$tmp/b-seed.img"
debugfs -R 'cat /user-data' "$tmp/b-seed.img" >"$tmp/b-user-data" 2>/dev/null
check "microvisor: user-data is on the data partition" grep -q '^#cloud-config' "$tmp/b-user-data"
check "microvisor: cloud-init schema accepts it" run_status 0 "$tmp/out" cloud-init schema --config-file "$tmp/b-user-data"
check "microvisor: no installer on an immutable OS" absent edgeprov-install "$tmp/b.log"
check "microvisor: the installed OS boots first" test "$(boot_order "$tmp/b-efivars")" = "0002,0001"
# The image's baked-in agent reads its seed itself (no cloud-init there): orchestrator, token
# URL, CA and credentials all come from the user-data, nothing from the command line.
chmod 600 "$tmp/b-user-data"
cp "$tmp/b-user-data" "$tmp/b-user-data-0644" && chmod 644 "$tmp/b-user-data-0644"
seeded() { "$build/bin/edgeprov-agent" --installed --sysroot "$tmp/b" --state-dir "$tmp/b/installed" "$@"; }
check "microvisor: --seed wants --installed" run_status 2 "$tmp/out" "$build/bin/edgeprov-agent" --seed "$tmp/b-user-data"
check "microvisor: a seed readable by others is refused" run_status 1 "$tmp/out" seeded --seed "$tmp/b-user-data-0644"
check "microvisor: ... saying why" grep -q -- "--seed: .*b-user-data-0644" "$tmp/out"
fake_mounts "$tmp/b" CRYPT-VERITY-7a6b5c4d3e2f10011223344556677889-root CRYPT-LUKS2-00112233445566778899aabbccddeeff-data
check "microvisor: the installed OS reports in with only its seed" run_status 0 "$tmp/out" seeded --seed "$tmp/b-user-data"
$E host show $UB >"$tmp/b-show"
check "microvisor: host show: data encrypted, root verified" contains "$tmp/b-show" \
  "disk:          encrypted, root verified: / on root (dm-verity); /data on data (dm-crypt LUKS2) (reported "
check "microvisor: the seed's credentials were stored 0600" sh -c "stat -c %a '$tmp/b/installed/credentials' | grep -qx 600"
check "microvisor: the secret is not in the agent's output" lacks "$tmp/out" "$(sed -n 's/^client_secret=//p' "$tmp/b/installed/credentials")"
check "microvisor: RUNNING after its report" sh -c "$E instance list | grep -qE '$IB .*RUNNING'"

# ---- d: the Micro-OS restarts mid-workflow (the agent dies, its RAM state with it); the next ----
# ---- one takes its credentials back from the firmware and resumes at the first unfinished action
UD=eeeeeeee-0000-4000-8000-00000000000d
node_dir d $UD WFNODED01
fake_efivars "$tmp/d-efivars" microvisor
$E host add --uuid $UD --serial WFNODED01 --os microvisor --auto-onboard >/dev/null
agent d --no-reboot >"$tmp/d1.log" 2>&1 &
dpid=$!
pids+=($dpid)
for _ in $(seq 300); do grep -q "action 2/6 image.stream" "$tmp/d1.log" && break; sleep 0.05; done
sleep 0.5
kill -9 $dpid
wait $dpid 2>/dev/null
check "resume: the first agent died during image.stream" sh -c "grep -q 'action 2/6 image.stream' '$tmp/d1.log' && ! grep -q 'action image.stream: SUCCESS' '$tmp/d1.log'"
nv="$tmp/d-efivars/EdgeprovCredentials-6f0d1c52-3b9e-4a51-9f27-8c4e2d7a1b60"
check "resume: the credentials were kept in a firmware variable (NV+BS+RT), 0600" /usr/bin/python3 -c '
import os, stat, struct, sys
b = open(sys.argv[1], "rb").read()
assert struct.unpack("<I", b[:4])[0] == 7 and b"client_secret=" in b[4:], b[:4]
assert stat.S_IMODE(os.stat(sys.argv[1]).st_mode) == 0o600' "$nv"
rm -rf "$tmp/d/state" # the Micro-OS runs from RAM: a restart loses the state directory
agent d --no-reboot >"$tmp/d2.log" 2>&1 &
dpid=$!
pids+=($dpid)
check "resume: the second agent finishes" wait_exit $dpid 120
check "resume: it did not erase the disk again" lacks "$tmp/d2.log" "action 1/6 disk.erase"
check "resume: it went on with image.stream, counting attempts" contains "$tmp/d2.log" "action 2/6 image.stream: attempt 2 of 3"
ID=$(instance_of $UD)
check "resume: the workflow is done" sh -c "$E instance list | grep -qE '$ID .*6/6: done'"
check "resume: without onboarding again (no operator needed)" contains "$tmp/d2.log" "the credentials were in the firmware"
check "resume: the orchestrator issued credentials once" test "$(grep -c "host $UD onboarded as" "$tmp/daemon.log")" -eq 1
check "resume: the firmware variable is gone once the workflow is done" test ! -e "$nv"

# ---- one node's token cannot reach another's workflow ----------------------------------------
tok() { curl -sS --cacert "$tmp/ca.pem" -u "edgenode-$1:$(sed -n 's/^client_secret=//p' "$tmp/$2/state/credentials")" \
  -d grant_type=client_credentials "https://127.0.0.1:$https/oauth2/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
W="env NODE_NO_WARNINGS=1 node $modules/workflow_call.mjs $src/core/proto 127.0.0.1:$grpc $tmp/ca.pem"
$W "$(tok $UB b)" "$IA" >"$tmp/call"
check "isolation: B's token gets B's workflow only" contains "$tmp/call" "workflow=$IB"
check "isolation: B cannot report on A's instance" contains "$tmp/call" "code=7 instance_id: $IA is not this node's instance"
$W "not-a-token" "$IA" >"$tmp/call"
check "isolation: no valid token, no workflow" grep -q "^code=16" "$tmp/call"

# ---- c: a corrupted image fails with both hashes; the operator re-arms; it finishes -------------
UC=eeeeeeee-0000-4000-8000-00000000000c
node_dir c $UC WFNODEC01
fake_efivars "$tmp/c-efivars" ubuntu
cp "$tmp/www/ubuntu.img.zst" "$tmp/good.zst"
zstd -q -f "$tmp/microvisor.img" -o "$tmp/www/ubuntu.img.zst" # another image under the profile's URL
$E host add --uuid $UC --serial WFNODEC01 --os ubuntu-22.04 --auto-onboard >/dev/null
agent c --no-reboot >"$tmp/c.log" 2>&1 &
cpid=$!
pids+=($cpid)
IC=
for _ in $(seq 600); do
  IC=$(instance_of $UC 2>/dev/null)
  [ -n "$IC" ] && $E instance list | grep -qE "$IC .*ERROR" && break
  sleep 0.2
done
$E instance list >"$tmp/out"
check "failure: the instance is in ERROR" grep -qE "$IC .*ERROR +Provisioning Failed: image.stream: sha256 mismatch: expected $ubuntu_sha, got $microvisor_sha" "$tmp/out"
check "failure: the agent tried as often as the template says (3)" sh -c "grep -c 'image.stream: attempt [0-9] failed' '$tmp/c.log' | grep -qx 3"
check "failure: the agent waits for an operator" contains "$tmp/c.log" "waiting for an operator to retry"
cp "$tmp/good.zst" "$tmp/www/ubuntu.img.zst"
check "failure: the operator re-arms it" run_status 0 "$tmp/out" $E instance retry "$IC"
check "failure: then it finishes" wait_exit $cpid 120
check "failure: and its status says done" sh -c "$E instance list | grep -qE '$IC .*8/8: done'"
check "a retry of an instance that did not fail is refused" run_status 1 "$tmp/out" $E instance retry "$IA"
check "with the reason" contains "$tmp/out" "only a failed (ERROR) instance is retried"
finish
