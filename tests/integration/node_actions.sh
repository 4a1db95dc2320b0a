#!/usr/bin/env bash
# Integration test of the core actions file.write, efi.boot_order and system.reboot (plugin
# actions-core), run with `edgeprov actions run` against a GPT image file (its partitions
# reached through loop devices, read back with debugfs and mtools), a directory of hand-made
# EFI variables, and the CLI's report of a requested restart.
# Usage: node_actions.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
loop=
# Detaches whatever a failed run might have left on the test's images (the checks below
# already counted it as a failure).
on_exit() {
  local dev
  for dev in $(losetup -a | grep -F "$tmp/" | cut -d: -f1); do
    grep -q "^$dev " /proc/mounts && umount "$(grep "^$dev " /proc/mounts | cut -d' ' -f2)"
    losetup -d "$dev" 2>/dev/null
  done
}
unset EDGEPROV_CONFIG EDGEPROV_SERVER

printf 'paths = { data = "%s/data"; plugins = [ "%s/lib/edgeprov/plugins" ]; };\n' "$tmp" "$build" >"$tmp/site.conf"
run() { "$build/bin/edgeprov" --config "$tmp/site.conf" actions run "$@"; }

# nothing_left: no loop device is attached to the test's images, and no private mount point
# of file.write is mounted or left on disk. (Other loop devices on this machine belong to
# others and are not counted.)
nothing_left() {
  local loops mounts dirs
  loops=$(losetup -a | grep -F "$tmp/")
  mounts=$(grep -E ' /(run|tmp)/edgeprov-mnt\.' /proc/mounts)
  dirs=$(ls -d /run/edgeprov-mnt.* /tmp/edgeprov-mnt.* 2>/dev/null)
  [ -z "$loops$mounts$dirs" ] && return 0
  echo "---- left behind: loops [$loops] mounts [$mounts] mount points [$dirs]"
  return 1
}

# ---- file.write ---------------------------------------------------------------------------
# A 96 MiB image: partition 1 a 32 MiB ESP (vfat, LABEL ESP, PARTLABEL EFI), partition 2 ext4
# (LABEL cloudimg-rootfs, PARTLABEL root) made at its offset. The kernel is never told about
# the partitions.
img=$tmp/disk.img
truncate -s 96M "$img"
sgdisk -n 1:2048:+32M -t 1:ef00 -c 1:EFI -n 2:0:0 -t 2:8300 -c 2:root "$img" >/dev/null
first() { sgdisk -i "$1" "$img" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }
last() { sgdisk -i "$1" "$img" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p'; }
esp_off=$(($(first 1) * 512)) root_off=$(($(first 2) * 512))
truncate -s 32M "$tmp/esp.img"
mkfs.vfat -n ESP "$tmp/esp.img" >/dev/null
dd if="$tmp/esp.img" of="$img" bs=1M seek=$((esp_off >> 20)) conv=notrunc status=none
mkfs.ext4 -q -F -L cloudimg-rootfs -E offset=$root_off "$img" $((($(last 2) - $(first 2) + 1) / 2))k
# Inside the root filesystem: /usr/lib, a relative symlink /lib -> usr/lib, an absolute one
# /etc2 -> /etc, and /escape -> a directory that exists on the host but not in the image.
mkdir -p "$tmp/outside"
printf 'mkdir /etc\nmkdir /usr\nmkdir /usr/lib\nsymlink /lib usr/lib\nsymlink /etc2 /etc\nsymlink /escape %s\n' "$tmp/outside" >"$tmp/debugfs.cmd"
debugfs -w -f "$tmp/debugfs.cmd" "$img?offset=$root_off" >/dev/null 2>&1
rootfs="$img?offset=$root_off"
fs_cat() { debugfs -R "cat $1" "$rootfs" 2>/dev/null; }
# fs_stat PATH: "MODE UID GID" of PATH in the root filesystem
fs_stat() {
  debugfs -R "stat $1" "$rootfs" 2>/dev/null | awk '/Mode:/ {for (i = 1; i < NF; i++) if ($i == "Mode:") m = $(i + 1)}
    /^User:/ {u = $2; g = $4} END {print m, u, g}'
}
same() { [ "$1" = "$2" ] && return 0; echo "---- got '$1', expected '$2'"; return 1; }

check "by partition number" run_status 0 "$tmp/out" run file.write target=$img partition=2 path=/etc/hostname \
  content=node-7 mode=0600 uid=1000 gid=100
check "  the file holds the content" same "$(fs_cat /etc/hostname)" node-7
check "  with mode 0600, owner 1000:100" same "$(fs_stat /etc/hostname)" "0600 1000 100"
check "  one progress report" contains "$tmp/out" "progress: 6/6 (100%) /etc/hostname written"
check "  nothing left attached or mounted" nothing_left

printf '#cloud-config\nhostname: "node-7"\nruncmd:\n  - [ sh, -c, "echo $HOME > /tmp/x" ]\n' >"$tmp/cfg"
check "by filesystem label, parents created" run_status 0 "$tmp/out" run file.write target=$img \
  partition_label=cloudimg-rootfs path=/etc/cloud/cloud.cfg.d/99-edgeprov.cfg "content=$(cat "$tmp/cfg")"
fs_cat /etc/cloud/cloud.cfg.d/99-edgeprov.cfg >"$tmp/got"
printf '\n' >>"$tmp/got" # $(...) dropped the trailing newline of the expected file
check "  the file holds the content byte for byte" cmp -s "$tmp/got" "$tmp/cfg"
check "  default mode 0644, owner 0:0" same "$(fs_stat /etc/cloud/cloud.cfg.d/99-edgeprov.cfg)" "0644 0 0"
check "  new directories are 0755" same "$(fs_stat /etc/cloud/cloud.cfg.d | cut -d' ' -f1)" 0755
check "  nothing left attached or mounted" nothing_left

python3 -c 'import random; random.seed(7); print("".join(random.choice("abcdefghij \n") for _ in range(100000)), end="")' >"$tmp/big"
check "replacing a file, 100000 bytes" run_status 0 "$tmp/out" run file.write target=$img partition=2 path=/etc/hostname \
  "content=$(cat "$tmp/big")" uid=0 gid=0
fs_cat /etc/hostname >"$tmp/got"
check "  the new content replaced the old" cmp -s "$tmp/got" "$tmp/big"
check "  no temporary file left in /etc" sh -c "! debugfs -R 'ls /etc' '$rootfs' 2>/dev/null | grep -q edgeprov"
check "  nothing left attached or mounted" nothing_left

check "by GPT PARTLABEL" run_status 0 "$tmp/out" run file.write target=$img partition_label=root path=/by-partlabel content=yes
check "  landed in partition 2" same "$(fs_cat /by-partlabel)" yes
check "through a relative symlink (/lib -> usr/lib)" run_status 0 "$tmp/out" run file.write target=$img partition=2 \
  path=/lib/edgeprov.conf content=rel
check "  landed in the image's /usr/lib" same "$(fs_cat /usr/lib/edgeprov.conf)" rel
check "through an absolute symlink (/etc2 -> /etc)" run_status 0 "$tmp/out" run file.write target=$img partition=2 \
  path=/etc2/via-abs content=abs
check "  resolved inside the image, not on the host" same "$(fs_cat /etc/via-abs)" abs
check "a symlink to a host path does not escape" run_status 1 "$tmp/out" run file.write target=$img partition=2 \
  path=/escape/pwned content=x
check "  nothing written on the host" test ! -e "$tmp/outside/pwned"
check "  nothing left attached or mounted" nothing_left

check "a failure after mounting (a parent is a file)" run_status 1 "$tmp/out" run file.write target=$img partition=2 \
  path=/etc/hostname/sub content=x
check "  says why" contains "$tmp/out" "path: cannot open directory /etc/hostname in partition 2 of $img (ext4): Not a directory"
check "  unmounted and detached all the same" nothing_left

check "an unknown label is refused" run_status 1 "$tmp/out" run file.write target=$img partition_label=nope path=/x content=x
check "  naming the label and listing what is there" contains "$tmp/out" \
  "partition_label: no filesystem labelled 'nope' on $img (partitions: 1 vfat 'ESP' (PARTLABEL 'EFI'), 2 ext4 'cloudimg-rootfs' (PARTLABEL 'root'))"
check "  nothing left attached or mounted" nothing_left
check "a missing partition number is refused" run_status 1 "$tmp/out" run file.write target=$img partition=5 path=/x content=x
check "  naming it" contains "$tmp/out" "partition: $img has no partition 5 (it has: 1 vfat"
check "'..' in path is refused" run_status 1 "$tmp/out" run file.write target=$img partition=2 path=/etc/../../x content=x
check "  naming path" contains "$tmp/out" "path: '/etc/../../x' must not contain '.' or '..' components"
check "a relative path is refused" run_status 1 "$tmp/out" run file.write target=$img partition=2 path=etc/x content=x
check "  naming path" contains "$tmp/out" "path: 'etc/x' must be an absolute path"
check "a bad mode is refused" run_status 1 "$tmp/out" run file.write target=$img partition=2 path=/x mode=0999
check "  naming mode" contains "$tmp/out" "mode: '0999' is not octal permissions like 0644"
check "partition and partition_label together are refused" run_status 1 "$tmp/out" run file.write target=$img partition=2 \
  partition_label=root path=/x
check "  naming both" contains "$tmp/out" "partition and partition_label: give one of them"
check "  nothing left attached or mounted" nothing_left

# The ESP: this sandbox's kernel may lack vfat; then the refusal must be clear and clean.
if grep -qw vfat /proc/filesystems; then
  check "into the vfat ESP by label" run_status 0 "$tmp/out" run file.write target=$img partition_label=ESP \
    path=/EFI/edgeprov/boot.txt content=esp
  check "  mtools reads it back" same "$(mcopy -n -i "$img@@$esp_off" ::/EFI/edgeprov/boot.txt - 2>/dev/null)" esp
else
  echo "     (this kernel cannot mount vfat: checking the refusal instead)"
  check "into the vfat ESP by label" run_status 1 "$tmp/out" run file.write target=$img partition_label=ESP \
    path=/EFI/edgeprov/boot.txt content=esp
  check "  says the kernel lacks vfat" contains "$tmp/out" "partition_label: partition 1 of $img holds vfat, which this kernel cannot mount"
fi
check "  nothing left attached or mounted" nothing_left

# A block device as the target: the image on a loop device (no partition scan).
loop=$(losetup -f --show "$img")
check "on a block device ($loop)" run_status 0 "$tmp/out" run file.write target=$loop partition=2 path=/on-block content=blk
losetup -d "$loop"
loop=
check "  landed in partition 2" same "$(fs_cat /on-block)" blk
check "  nothing left attached or mounted" nothing_left
check "the root filesystem is clean (e2fsck)" sh -c "e2fsck -fn '$rootfs' >/dev/null 2>&1"

mkdir -p "$tmp/dir"
check "into a directory" run_status 0 "$tmp/out" run file.write directory=$tmp/dir path=/a/b/c.conf content=plain mode=0640 \
  uid=1234 gid=5678
check "  the file holds the content" same "$(cat "$tmp/dir/a/b/c.conf")" plain
check "  with mode 0640, owner 1234:5678" same "$(stat -c '%a %u %g' "$tmp/dir/a/b/c.conf")" "640 1234 5678"
check "  new directories are 0755" same "$(stat -c '%a' "$tmp/dir/a" "$tmp/dir/a/b" | tr '\n' ' ')" "755 755 "
check "directory with a partition is refused" run_status 1 "$tmp/out" run file.write directory=$tmp/dir partition=2 path=/x
check "  naming directory" contains "$tmp/out" "directory: give directory, or partition/partition_label on a target, not both"
check "  nothing left attached or mounted" nothing_left

# ---- efi.boot_order ---------------------------------------------------------------------------
# make_efivars DIR ORDER|- NUMBER=DESCRIPTION[@PARTITION-GUID]...: writes efivarfs-style files
# (4 bytes of attributes, then the payload): BootOrder (unless -) and one load option per
# entry, a hard-drive node when a GUID is given, else a PXE-like MAC node.
make_efivars() {
  python3 - "$@" <<'PY'
import os, struct, sys, uuid
d, order, entries = sys.argv[1], sys.argv[2], sys.argv[3:]
G = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
os.makedirs(d, exist_ok=True)
def var(name, payload):
    with open(f"{d}/{name}-{G}", "wb") as f:
        f.write(struct.pack("<I", 7) + payload)
end = struct.pack("<BBH", 0x7F, 0xFF, 4)
if order != "-":
    var("BootOrder", b"".join(struct.pack("<H", int(n, 16)) for n in order.split(",")))
for e in entries:
    number, rest = e.split("=", 1)
    desc, _, guid = rest.partition("@")
    if guid:
        path = struct.pack("<BBH", 4, 1, 42) + struct.pack("<IQQ", 1, 2048, 65536) + uuid.UUID(guid).bytes_le + bytes([2, 2])
        file = "\\EFI\\debian\\shimx64.efi\0".encode("utf-16-le")
        path += struct.pack("<BBH", 4, 4, 4 + len(file)) + file
    else:
        path = struct.pack("<BBH", 3, 11, 37) + bytes(33)
    path += end
    var("Boot" + number, struct.pack("<IH", 1, len(path)) + (desc + "\0").encode("utf-16-le") + path + b"optional")
PY
}
# boot_order DIR: "ATTRIBUTES ORDER" of DIR's BootOrder, "0x7 0003,0001,0002"
boot_order() {
  python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1] + "/BootOrder-8be4df61-93ca-11d2-aa0d-00e098032b8c", "rb").read()
assert len(data) >= 4 and len(data) % 2 == 0, "odd size"
attributes, = struct.unpack("<I", data[:4])
print(hex(attributes), ",".join("%04X" % n for n in struct.unpack("<%dH" % ((len(data) - 4) // 2), data[4:])))
PY
}

new_guid() { python3 -c "import uuid; print(uuid.uuid4())"; }
ev=$tmp/efivars
make_efivars "$ev" 0001,0002,0003 "0001=UEFI PXEv4 (MAC:525400123456)" "0002=UEFI HTTPv4" "0003=ubuntu@$(new_guid)"
check "by label" run_status 0 "$tmp/out" run efi.boot_order efivars_dir=$ev entry_label=ubuntu
check "  BootOrder is 0003,0001,0002, attributes kept" same "$(boot_order "$ev")" "0x7 0003,0001,0002"
check "again: nothing to change" run_status 0 "$tmp/out" run efi.boot_order efivars_dir=$ev entry_label=ubuntu
check "  BootOrder is still 0003,0001,0002" same "$(boot_order "$ev")" "0x7 0003,0001,0002"
# No match: by default a warning (after image.stream no installer has made an entry yet; the
# firmware's removable-media path boots the disk), an error with fail_if_missing.
missing="entry_label: no Boot entry in $ev is labelled 'windows' (found: Boot0001 'UEFI PXEv4 (MAC:525400123456)', Boot0002 'UEFI HTTPv4', Boot0003 'ubuntu')"
check "a missing label warns" run_status 0 "$tmp/out" run efi.boot_order efivars_dir=$ev entry_label=windows
check "  listing the entries found" contains "$tmp/out" "$missing; BootOrder left as it is"
check "  naming the removable-media path" grep -qE 'removable-media loader .*EFI.*BOOT.*BOOT(X64|AA64)\.EFI' "$tmp/out"
check "  BootOrder untouched" same "$(boot_order "$ev")" "0x7 0003,0001,0002"
check "a missing label with fail_if_missing fails" run_status 1 "$tmp/out" run efi.boot_order efivars_dir=$ev entry_label=windows \
  fail_if_missing=true
check "  listing the entries found" contains "$tmp/out" "$missing"
check "  BootOrder untouched" same "$(boot_order "$ev")" "0x7 0003,0001,0002"

# By device path: Boot0002 boots the image's ESP, Boot0005 (not in BootOrder) its root
# partition, Boot0003 another disk.
esp_guid=$(sgdisk -i 1 "$img" | sed -n 's/^Partition unique GUID: //p')
root_guid=$(sgdisk -i 2 "$img" | sed -n 's/^Partition unique GUID: //p')
ev2=$tmp/efivars2
make_efivars "$ev2" 0001,0003,0002 "0001=UEFI PXEv4" "0002=debian@$esp_guid" "0003=ubuntu@$(new_guid)" "0005=fallback@$root_guid"
check "by the target's partitions (no entry_label)" run_status 0 "$tmp/out" run efi.boot_order efivars_dir=$ev2 target=$img
check "  its entries first, the missing one added: 0002,0005,0001,0003" same "$(boot_order "$ev2")" "0x7 0002,0005,0001,0003"
truncate -s 8M "$tmp/other.img"
sgdisk -n 1:2048:0 "$tmp/other.img" >/dev/null
check "a target no entry boots, fail_if_missing: fails" run_status 1 "$tmp/out" run efi.boot_order efivars_dir=$ev2 \
  target=$tmp/other.img fail_if_missing=true
check "  naming the target and the entries" contains "$tmp/out" \
  "target: no Boot entry in $ev2 boots a partition of $tmp/other.img (found: Boot0001 'UEFI PXEv4', Boot0002 'debian' (partition ${esp_guid,,})"
check "  BootOrder untouched" same "$(boot_order "$ev2")" "0x7 0002,0005,0001,0003"
# A label that matches nothing falls back to the target's partitions (firmware makes its own
# "UEFI OS" entries).
ev4=$tmp/efivars4
make_efivars "$ev4" 0001,0002 "0001=UEFI PXEv4" "0002=UEFI OS@$esp_guid"
check "label missing, target given: by the target's partitions" run_status 0 "$tmp/out" run efi.boot_order efivars_dir=$ev4 \
  entry_label=ubuntu target=$img
check "  BootOrder is 0002,0001" same "$(boot_order "$ev4")" "0x7 0002,0001"
ev3=$tmp/efivars3
make_efivars "$ev3" - "0001=UEFI PXEv4" "0004=ubuntu@$(new_guid)"
check "no BootOrder yet: one is created" run_status 0 "$tmp/out" run efi.boot_order efivars_dir=$ev3 entry_label=ubuntu
check "  holding the entry, attributes NV+BS+RT" same "$(boot_order "$ev3")" "0x7 0004"
check "a missing efivars_dir fails" run_status 1 "$tmp/out" run efi.boot_order efivars_dir=$tmp/nope entry_label=ubuntu
check "  naming it" contains "$tmp/out" "efivars_dir: cannot open $tmp/nope: No such file or directory"

# ---- system.reboot ----------------------------------------------------------------------------
check "system.reboot" run_status 0 "$tmp/out" run system.reboot
check "  the CLI says the agent would reboot" contains "$tmp/out" \
  "action system.reboot asked for a reboot: the agent does that after reporting; the CLI does not"
check "system.reboot mode=kexec" run_status 0 "$tmp/out" run system.reboot mode=kexec
check "  the CLI says the agent would kexec" contains "$tmp/out" "action system.reboot asked for a kexec: the agent does that"
check "an unknown mode is refused" run_status 1 "$tmp/out" run system.reboot mode=halt
check "  naming mode" contains "$tmp/out" "mode: 'halt' is not reboot or kexec"
finish
