#!/usr/bin/env bash
# Integration test of image.stream's full-disk encryption (issue 20) on a real edgeprovd (with a
# site key for recovery keys) and real edgeprov-agent processes whose workflow is one image.stream
# with fde=true of a GPT image (an ESP and a "cloudimg-rootfs" ext4 16 MiB smaller than its
# partition), after a disk.erase with fde=true, onto a loop device (losetup -P):
#  (a) a node without a TPM (--tpm off): disk.erase fails, naming the missing TPM, before erasing
#      anything: the target keeps its old bytes (and holds none of the image);
#  (s) a node with a software TPM but, like this host, no UEFI Secure Boot, whose workflow does not
#      set fde_without_secure_boot: disk.erase fails naming Secure Boot, nothing erased (the target
#      keeps its old bytes); with disk.erase's set (a warning logged, the disk erased) image.stream
#      fails the same way: nothing written, no recovery key stored;
#  (b) that node with fde_without_secure_boot set (the warning that PCR 7 then records Secure Boot
#      off logged): the recovery key reaches the orchestrator (edgeprov host
#      recovery-key) and opens the LUKS2 header (cryptsetup --test-passphrase), luksDump shows the
#      systemd-tpm2 token bound to PCRs 7+15, the ESP is on the disk, and nothing of the file system is
#      in the clear partition (no copy of its superblock, no marker file's text, no ext4 magic).
#      Where the kernel has device-mapper, the partition's bytes are in /dev/mapper/cryptroot
#      (the file system, the same bytes as the image's) and the run succeeds; where it has not
#      (this sandbox), the run fails saying device-mapper is not usable, after the key was stored;
#  the recovery key is in no log, neither the daemon's nor the agents'; it reaches
#  systemd-cryptenroll as a memfd, so no key file is ever made (a stale private directory of an
#  earlier run in /run is removed); the TPM's dictionary-attack settings are relaxed, unless its
#  lockout authorization is set (an owner's policy is left alone); once PCR 15 of the TPM is
#  extended (as an installed OS's unlocking stage does), disk.erase refuses before erasing: what
#  would be enrolled then could never be unsealed.
# Needs root (loop devices, BLKPG). Exit 77 (skipped) without root or loop devices.
# Usage: fde_stream.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
loop=
on_exit() {
  [ -e /dev/mapper/cryptroot-test ] && cryptsetup close cryptroot-test 2>/dev/null
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
}
for tool in swtpm cryptsetup systemd-cryptenroll sgdisk mkfs.ext4 mkfs.vfat zstd losetup tpm2_changeauth tpm2_getcap tpm2_flushcontext tpm2_dictionarylockout; do
  command -v $tool >/dev/null || { echo "FAIL $tool not found: run scripts/install-deps.sh"; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then echo "skipped: needs root (loop devices, partitions told to the kernel)"; exit 77; fi

# ---- the image: GPT, ESP (sectors 2048-18431), cloudimg-rootfs (18432-100351: a 24 MiB ext4 + 16 MiB)
marker="FDE-MARKER-$(openssl rand -hex 8)"
mkdir -p "$tmp/rootfs/etc" && echo "$marker" >"$tmp/rootfs/etc/marker"
truncate -s 50M "$tmp/fde.img"
sgdisk -n 1:2048:18431 -t 1:ef00 -c 1:ESP -n 2:18432:100351 -c 2:cloudimg-rootfs "$tmp/fde.img" >/dev/null
mkfs.vfat -n ESP --offset 2048 "$tmp/fde.img" 8192 >/dev/null 2>&1
mkfs.ext4 -q -F -L cloudimg-rootfs -d "$tmp/rootfs" -E offset=$((18432 * 512)) "$tmp/fde.img" 24M
zstd -q "$tmp/fde.img" -o "$tmp/fde.img.zst"
sha=$(sha256sum "$tmp/fde.img" | cut -d' ' -f1)
part_start=$((18432 * 512)) part_len=$(((100352 - 18432) * 512))
# The image's own ext4 superblock (1 KiB at the file system's byte 1024): found nowhere in the clear.
dd if="$tmp/fde.img" of="$tmp/superblock" bs=1 skip=$((part_start + 1024)) count=1024 status=none
check "the image's file system is ext4 (magic 0xEF53)" test "$(od -An -tx1 -j56 -N2 "$tmp/superblock" | tr -d ' ')" = 53ef

# ---- outside a node (edgeprov actions run): no node TPM, nothing written --------------------------
printf 'paths = { data = "%s/cli-data"; plugins = [ "%s/lib/edgeprov/plugins" ]; };\n' "$tmp" "$build" >"$tmp/cli.conf"
check "actions run: fde fails" run_status 1 "$tmp/cli.out" env -u EDGEPROV_CONFIG -u EDGEPROV_SERVER \
  "$build/bin/edgeprov" --config "$tmp/cli.conf" actions run image.stream url="file://$tmp/fde.img.zst" sha256="$sha" \
  target="$tmp/cli.img" fde=true fde_partition=cloudimg-rootfs
check "actions run: naming the missing TPM" contains "$tmp/cli.out" "fde: no TPM 2.0 on this node"
check "actions run: the target was not even created" test ! -e "$tmp/cli.img"
head -c 3M /dev/urandom >"$tmp/cli-old.img"
cp "$tmp/cli-old.img" "$tmp/cli-erase.img"
check "actions run: disk.erase with fde fails" run_status 1 "$tmp/cli-erase.out" env -u EDGEPROV_CONFIG -u EDGEPROV_SERVER \
  "$build/bin/edgeprov" --config "$tmp/cli.conf" actions run disk.erase target="$tmp/cli-erase.img" fde=true
check "actions run: disk.erase names the missing TPM" contains "$tmp/cli-erase.out" "fde: no TPM 2.0 on this node"
check "actions run: disk.erase left the target's bytes as they were" cmp -s "$tmp/cli-old.img" "$tmp/cli-erase.img"
check "actions run: disk.erase without fde does erase" run_status 0 "$tmp/cli-erase.out" env -u EDGEPROV_CONFIG \
  -u EDGEPROV_SERVER "$build/bin/edgeprov" --config "$tmp/cli.conf" actions run disk.erase target="$tmp/cli-erase.img"
check "... (its first MiB is zeros now)" cmp -s -n 1048576 "$tmp/cli-erase.img" /dev/zero

# ---- the site: its workflow is the one image.stream with fde, onto the node's target disk ---------
loopback_site
head -c 48 /dev/urandom | base64 >"$tmp/recovery-site.key"
chmod 600 "$tmp/recovery-site.key"
printf 'secrets = { recovery_key_file = "%s"; };\n' "$tmp/recovery-site.key" >>"$tmp/site.conf"
# workflow ERASE_WITHOUT STREAM_WITHOUT: the workflow, disk.erase and image.stream with fde, each
# with fde_without_secure_boot (this host has no UEFI Secure Boot) when its word is "true".
workflow() {
  local erase='' stream=''
  [ "$1" = true ] && erase=' fde_without_secure_boot = "true";'
  [ "$2" = true ] && stream=' fde_without_secure_boot = "true";'
  cat >"$tmp/workflow.conf" <<CONF
actions = (
  { action = "disk.erase"; timeout_s = 60; retries = 0; params = { target = "\${node.target_disk}"; fde = "true";$erase }; },
  { action = "image.stream"; timeout_s = 300; retries = 0;
    params = { url = "file://$tmp/fde.img.zst"; sha256 = "$sha"; target = "\${node.target_disk}";
               fde = "true"; fde_partition = "cloudimg-rootfs"; fde_mapping = "cryptroot-test";$stream }; }
);
CONF
}
# restart_with ERASE_WITHOUT STREAM_WITHOUT: edgeprovd again with that workflow (it reads its
# template when it starts); logs in $tmp/daemon.N.log.
daemon_logs=("$tmp/daemon.log")
restart_with() {
  stop_daemon
  workflow "$1" "$2"
  daemon_logs+=("$tmp/daemon.${#daemon_logs[@]}.log")
  start_daemon "$tmp/site.conf" "${daemon_logs[-1]}"
}
retry_instance() {
  $E instance retry "$($E host show "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')" >/dev/null
}
workflow true true
check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
E="$build/bin/edgeprov --config $tmp/site.conf"

# The target holds an old disk's bytes: a node that cannot encrypt keeps them.
yes OLD-DISK-BYTES | head -c 64M >"$tmp/target.img" # a pattern: no ext4 magic by chance
cp "$tmp/target.img" "$tmp/target-old.img"
loop=$(losetup -P -f --show "$tmp/target.img") || { echo "skipped: no loop device"; exit 77; }
target_old() { cmp -s -n $((64 << 20)) "$loop" "$tmp/target-old.img"; }
check "the target starts with its old bytes" target_old

# fde_agent NODE UUID SERIAL TPM LOG: the node's agent runs its workflow until it has failed (or,
# with device-mapper, succeeded); at most 120 s.
fde_agent() {
  local node=$1 uuid=$2 serial=$3 tpm=$4 log=$5
  if [ ! -d "$tmp/$node" ]; then
    $E host add --uuid "$uuid" --serial "$serial" --os microvisor --auto-onboard >/dev/null
    node_sysroot "$tmp/$node" "$uuid" "$serial"
  fi
  timeout 120 "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" \
    --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot "$tmp/$node" --state-dir "$tmp/$node/state" \
    --backoff-ms 100 --backoff-max-ms 400 --no-reboot --tpm "$tpm" --target-disk "$loop" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1200); do
    grep -qs "waiting for an operator\|workflow done" "$log" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  kill $pid 2>/dev/null
  wait $pid 2>/dev/null
  return 0
}

# ---- (a) no TPM: fails before writing a byte -------------------------------------------------------
U1=fdefdefd-0000-4000-8000-000000000001 U2=fdefdefd-0000-4000-8000-000000000002
fde_agent a $U1 FDESER01 off "$tmp/a.log"
check "no TPM: the agent says the node has none for actions" contains "$tmp/a.log" "actions see the node's TPM as none"
check "no TPM: disk.erase fails, naming the missing TPM" contains "$tmp/a.log" \
  "fde: no TPM 2.0 on this node (the agent has none: --tpm off, or no /dev/tpmrm0 for --tpm auto): nothing written"
$E instance list >"$tmp/a.list" 2>&1
check "no TPM: the instance's status says so" contains "$tmp/a.list" "Provisioning Failed: disk.erase: fde: no TPM 2.0 on this node"
check "no TPM: the target keeps its old bytes (nothing erased, no byte of the image)" target_old
check "no TPM: no recovery key was stored" run_status 1 "$tmp/a.key2" $E host recovery-key $U1

# ---- (s) a software TPM, no Secure Boot here, fde_without_secure_boot not set ----------------------
swtpm_start tpm
tcti=$tpm_tcti
nosb="no EFI: the node did not boot from UEFI (no /sys/firmware/efi)"
check "no Secure Boot: edgeprovd restarts with a workflow that does not accept it" restart_with false false
fde_agent b $U2 FDESER02 "$tcti" "$tmp/s1.log"
check "no Secure Boot: disk.erase fails, naming it, nothing erased" contains "$tmp/s1.log" \
  "fde: Secure Boot is not enforcing on this node ($nosb): its PCR 7 records Secure Boot off, which any OS booted with Secure Boot off reproduces, and would open the disk; turn Secure Boot on (or set fde_without_secure_boot): nothing erased"
$E instance list >"$tmp/s1.list" 2>&1
check "no Secure Boot: the instance's status says so" contains "$tmp/s1.list" \
  "Provisioning Failed: disk.erase: fde: Secure Boot is not enforcing on this node"
check "no Secure Boot: the target keeps its old bytes" target_old
check "no Secure Boot: no recovery key was stored" run_status 1 "$tmp/s1.key" $E host recovery-key $U2
check "no Secure Boot: disk.erase only, edgeprovd restarts" restart_with true false
retry_instance $U2
fde_agent b $U2 FDESER02 "$tcti" "$tmp/s2.log"
check "disk.erase with fde_without_secure_boot: the warning logged" contains "$tmp/s2.log" \
  "fde: Secure Boot is not enforcing on this node ($nosb), and fde_without_secure_boot is set: PCR 7 then records Secure Boot off: any OS booted with Secure Boot off opens the disk"
check "... and it erased the disk" contains "$tmp/s2.log" "partition tables and signatures erased"
check "no Secure Boot: image.stream fails, naming it, nothing written" contains "$tmp/s2.log" \
  "fde: Secure Boot is not enforcing on this node ($nosb): its PCR 7 records Secure Boot off, which any OS booted with Secure Boot off reproduces, and would open the disk; turn Secure Boot on (or set fde_without_secure_boot): nothing written"
check "... the target's first MiB is the erase's zeros (no GPT of the image)" cmp -s -n 1048576 "$loop" /dev/zero
check "... no recovery key was stored" run_status 1 "$tmp/s2.key" $E host recovery-key $U2
check "... no LUKS2 header anywhere on the disk" absent -aF "LUKS" "$loop"

# ---- (b) a software TPM, fde_without_secure_boot set ----------------------------------------------
check "fde_without_secure_boot on both actions, edgeprovd restarts" restart_with true true
retry_instance $U2
dm=no
grep -qw device-mapper /proc/misc && dm=yes
# A private directory an earlier run that died left in /run (where the key file went without memfd).
stale=$(mktemp -d /run/edgeprov-fde.XXXXXX)
echo "not a real key" >"$stale/recovery.key"
fde_agent b $U2 FDESER02 "$tcti" "$tmp/b.log"
check "image.stream with fde_without_secure_boot: the warning logged" contains "$tmp/b.log" \
  "fde: Secure Boot is not enforcing on this node ($nosb), and fde_without_secure_boot is set: PCR 7 then records Secure Boot off: any OS booted with Secure Boot off opens the disk"
check "... by both actions" test "$(grep -c 'and fde_without_secure_boot is set: PCR 7 then records' "$tmp/b.log")" -ge 2
check "swtpm: the stale private directory in /run was removed" test ! -e "$stale"
check "... and the log says so" contains "$tmp/b.log" "fde: removed $stale, left by an earlier run"
check "swtpm: systemd-cryptenroll read the key from a 0600 memfd, without a warning" absent -F "too permissive" "$tmp/b.log"
check "... whose path it names on failure only: no key file path in the log" absent -F "recovery.key" "$tmp/b.log"
check "swtpm: the TPM's dictionary-attack settings relaxed, logged with the values" contains "$tmp/b.log" \
  "fde: TPM dictionary-attack lockout reset (max tries 32, recovery 60 s, lockout recovery 600 s)"
tpm2_getcap -T "$tcti" properties-variable >"$tmp/tpmvar" 2>&1
check "... the TPM says max tries 32" grep -qE "TPM2_PT_MAX_AUTH_FAIL: +0x20$" "$tmp/tpmvar"
check "swtpm: the agent hands the TPM to actions" contains "$tmp/b.log" "actions see the node's TPM as $tcti"
check "swtpm: the recovery key is stored with the orchestrator" contains "$tmp/b.log" \
  "the disk's recovery key is stored with the orchestrator"
$E host recovery-key $U2 >"$tmp/key" 2>"$tmp/key.err"
key=$(cat "$tmp/key")
check "the operator reads a 64-hex-digit recovery key" python3 -c \
  "import re,sys; sys.exit(0 if re.fullmatch('[0-9a-f]{64}', sys.argv[1]) else 1)" "$key"
part=${loop}p2
check "the kernel knows the encrypted partition ($part)" test -b "$part"
printf %s "$key" >"$tmp/key.bin"
check "the recovery key opens the LUKS2 header" run_status 0 "$tmp/open.out" \
  cryptsetup open --test-passphrase --key-file "$tmp/key.bin" "$part"
printf %s "0$key" | cut -c1-64 | tr -d '\n' >"$tmp/wrong.bin"
check "a wrong key does not" run_status 2 "$tmp/wrong.out" cryptsetup open --test-passphrase --key-file "$tmp/wrong.bin" "$part"
cryptsetup luksDump "$part" >"$tmp/dump" 2>&1
check "luksDump: LUKS2" grep -qE "^Version:\s+2$" "$tmp/dump"
check "luksDump: a systemd-tpm2 token" contains "$tmp/dump" "systemd-tpm2"
check "luksDump: bound to PCRs 7+15" grep -qE "tpm2-(hash-)?pcrs: +7\+15$" "$tmp/dump"
check "luksDump: sealed in the sha256 bank (the one the installed OS locks)" grep -qE "tpm2-pcr-bank: +sha256$" "$tmp/dump"
check "luksDump: the data starts 16 MiB in" grep -qE "offset: 16777216 \[bytes\]" "$tmp/dump"
check "luksDump: the recovery key's keyslot 0 is pbkdf2" python3 - "$tmp/dump" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
slot0 = text.split("Keyslots:")[1].split("  1: luks2")[0]
sys.exit(0 if "PBKDF:      pbkdf2" in slot0 and "Iterations: 1000" in slot0 else 1)
PY
check "the ESP is on the disk as the image has it" cmp -s -n $((16384 * 512)) -i $((2048 * 512)) "$tmp/fde.img" "$loop"
check "nothing of the file system in the clear partition" python3 - "$loop" "$part_start" "$part_len" "$tmp/superblock" "$marker" <<'PY'
import sys
dev, start, length, sb, marker = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4], "rb").read(), sys.argv[5]
with open(dev, "rb") as f:
    f.seek(start)
    raw = f.read(length)
bad = []
if raw.find(sb) >= 0: bad.append("the image's superblock")
if raw.find(marker.encode()) >= 0: bad.append("the marker file's text")
for at in (1080, (16 << 20) + 1080):
    if raw[at:at + 2] == b"\x53\xef": bad.append("ext4 magic at partition byte %d" % at)
print("clear partition holds: " + (", ".join(bad) if bad else "none of it"))
sys.exit(1 if bad else 0)
PY
if [ $dm = yes ]; then
  check "device-mapper: the workflow succeeds" contains "$tmp/b.log" "workflow done"
  check "device-mapper: the mapping holds the image's file system" cmp -s -n $((24 << 20)) -i $part_start:0 \
    "$tmp/fde.img" /dev/mapper/cryptroot-test
else
  check "no device-mapper here: the run fails, saying so" contains "$tmp/b.log" \
    "fde: cannot open $part as /dev/mapper/cryptroot-test: device-mapper is not usable on this node ("
  $E instance list >"$tmp/b.list" 2>&1
  check "no device-mapper here: the instance's status says so" contains "$tmp/b.list" \
    "Provisioning Failed: image.stream: fde: cannot open $part as /dev/mapper/cryptroot-test: device-mapper is not usable"
  echo "note: this kernel has no device-mapper: writing through the mapping is not exercised here (tests/e2e does)"
fi

# ---- (b) again: an operator retries; the partition is told anew, formatted with a new key ----------
retry_instance $U2
fde_agent b $U2 FDESER02 "$tcti" "$tmp/b2.log"
key2=$($E host recovery-key $U2 2>/dev/null)
check "retry: the node stored a new recovery key" test -n "$key2" -a "$key2" != "$key"
printf %s "$key2" >"$tmp/key2.bin"
check "retry: the new key opens the header" run_status 0 "$tmp/open2.out" \
  cryptsetup open --test-passphrase --key-file "$tmp/key2.bin" "$part"
check "retry: the old one no longer does" run_status 2 "$tmp/open3.out" \
  cryptsetup open --test-passphrase --key-file "$tmp/key.bin" "$part"
if [ $dm = yes ]; then
  check "retry: the workflow succeeds again" contains "$tmp/b2.log" "workflow done"
else
  check "retry: it fails where the first attempt did" contains "$tmp/b2.log" "device-mapper is not usable on this node ("
fi

# ---- (b) once more, with the TPM's lockout authorization set: its owner's DA policy stays ---------
# swtpm has no resource manager (a node's /dev/tpmrm0 has): flush the sessions systemd-cryptenroll left.
tpm2_flushcontext -T "$tcti" -l >/dev/null 2>&1
tpm2_flushcontext -T "$tcti" -s >/dev/null 2>&1
check "the TPM's lockout authorization is set" run_status 0 "$tmp/changeauth.out" tpm2_changeauth -T "$tcti" -c lockout lockout-secret
check "... and its max tries set by the owner to 7" run_status 0 "$tmp/dalock.out" \
  tpm2_dictionarylockout -T "$tcti" -s -n 7 -t 1000 -l 1000 -p lockout-secret
retry_instance $U2
fde_agent b $U2 FDESER02 "$tcti" "$tmp/b3.log"
check "lockout auth set: the DA policy is left as the owner set it" contains "$tmp/b3.log" \
  "fde: the TPM's lockout authorization is set (its owner took it): its dictionary-attack policy is left as the owner set it"
check "... no reset tried" absent -F "dictionary-attack lockout reset" "$tmp/b3.log"
tpm2_getcap -T "$tcti" properties-variable >"$tmp/tpmvar" 2>&1
check "... the TPM still says max tries 7" grep -qE "TPM2_PT_MAX_AUTH_FAIL: +0x7$" "$tmp/tpmvar"
check "... and the disk is still enrolled" contains "$tmp/b3.log" "fde: TPM enrolled for $part (PCRs 7+15)"

# ---- (b) with PCR 15 extended, as an installed OS's unlocking stage does: nothing erased --------------
tpm2_flushcontext -T "$tcti" -t >/dev/null 2>&1
tpm2_flushcontext -T "$tcti" -l >/dev/null 2>&1
tpm2_flushcontext -T "$tcti" -s >/dev/null 2>&1
check "PCR 15 of the TPM extended" run_status 0 "$tmp/extend.out" tpm2_pcrextend -T "$tcti" \
  15:sha256=bb42bdae040ebfb2743bcbcd77a3f9cddbd1792f5b49084128f461f1d583818d
head -c $((64 << 20)) "$loop" >"$tmp/target-b3.img"
retry_instance $U2
fde_agent b $U2 FDESER02 "$tcti" "$tmp/b4.log"
check "PCR 15 not zero: disk.erase fails, saying why" contains "$tmp/b4.log" \
  "fde: PCR 15 of this node's TPM is not zero (something in this boot extended it), so the installed OS could not unseal what would be enrolled now: nothing written"
check "... before erasing anything" cmp -s -n $((64 << 20)) "$loop" "$tmp/target-b3.img"
check "... the last attempt's key still opens the header" run_status 0 "$tmp/open4.out" \
  cryptsetup open --test-passphrase --key-file <($E host recovery-key $U2 2>/dev/null | tr -d '\n') "$part"

check "the key file is gone, and its private directory" test -z "$(find "$tmp/b/state" "$tmp/a/state" -name 'edgeprov-fde.*')"
check "no key file went through /run either" test -z "$(find /run -maxdepth 1 -name 'edgeprov-fde.*' -newer "$tmp/fde.img")"
check "the recovery keys are in no log" absent -rF -e "$key" -e "$key2" -- "${daemon_logs[@]}" "$tmp/a.log" "$tmp/b.log" \
  "$tmp/b2.log" "$tmp/b3.log" "$tmp/b4.log" "$tmp/s1.log" "$tmp/s2.log" "$tmp/a.list" "$tmp/b.list" "$tmp/tpm.log"

finish
