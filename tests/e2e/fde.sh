# Scenario fde (sourced by tests/e2e/run.sh): full-disk encryption bound to the node's TPM and
# a verified immutable OS, with Secure Boot on (the snakeoil keys) and a software TPM (swtpm)
# per machine.
#
#   1. A Debian node (os-ubuntu workflow, host add --fde) and a microvisor node (os-microvisor,
#      host add --fde) provision at once and reach RUNNING. The Debian root and the microvisor's
#      data partition are written through dm-crypt (image.stream fde), their LUKS2 key sealed to
#      the TPM (PCRs 7+15); each installed OS unlocks by itself with its TPM and reports what
#      protects its disk: host show's "disk:" line names dm-crypt, and dm-verity for the
#      microvisor's root.
#   2. Tamper checks: (a) the Debian disk, copied to another machine (fresh firmware variables and
#      a fresh swtpm), does not unlock and never starts the OS; (b) one byte inside the agent in
#      the microvisor's verified root changed on a copy of its disk (same TPM, so only verity can
#      stop it): the kernel refuses the corrupted block and the node never says it runs;
#      (c) the recovery key from `edgeprov host recovery-key` opens the Debian disk's LUKS2 volume
#      on this machine with cryptsetup (a real open and mount where this kernel has
#      device-mapper, else the key checked against the volume's header with --test-passphrase),
#      and a wrong key does not.
#      (d) the stolen Debian node itself (its own TPM and firmware), its LUKS2 partition renamed in
#      the GPT (names are not signed) and a stick with an ext4 labelled cloudimg-rootfs holding
#      an attacker's /sbin/init: the signed UKI's initramfs finds no root partition of its own and
#      lets the boot go on to the stick's root (root=LABEL=), whose init runs with PCR 7 unchanged
#      and asks the TPM to unseal the real disk's key: refused, because the key is sealed to
#      PCRs 7+15 and the initramfs extended PCR 15 before it let anything from a disk run.
#   3. A node without a TPM asked for FDE fails (disk.erase FAILED before erasing, the Instance in
#      ERROR) with a status naming the missing TPM, and its disk holds nothing of the image (all
#      zeros: no clear copy).
# Prints the installed OS's boot (reboot to RUNNING) for the encrypted nodes, to compare with the
# clear scenarios' timelines (README, "Full-disk encryption").

# Console lines of the installed OSes (the Debian image's initramfs and micro-os/init).
FDE_DEB_UNLOCKED='edgeprov-fde: the root file system was unlocked with the TPM'
FDE_DEB_REFUSED='edgeprov-fde: the TPM did not unlock the root file system'
FDE_MV_VERIFIED='verified root on /dev/[^ ]+ \(dm-verity'
FDE_MV_UNLOCKED='seed on /dev/mapper/cryptdata'
FDE_CORRUPTED='device-mapper: verity: .*(data|metadata) block [0-9]+ is corrupted'

# fde_disk_line NAME PATTERN: host show's disk line for NAME's host matches PATTERN (grep -E).
fde_disk_line() {
  e2e_cli host show "$(vm_uuid "$1")" | grep '^disk:' | grep -qE -- "$2"
}

# fde_wait_disk_line NAME PATTERN TIMEOUT: waits for the installed OS's disk report.
fde_wait_disk_line() {
  local i
  for i in $(seq "$3"); do fde_disk_line "$1" "$2" && return 0; sleep 1; done
  e2e_cli host show "$(vm_uuid "$1")" | grep '^disk:'
  return 1
}

# fde_attacker_stick FILE: an attacker's stick: the root partition of the site's own clear
# Debian image ($E2E/images/debian.img.zst: an ext4 labelled cloudimg-rootfs, the kernel's
# modules, cryptsetup with systemd's TPM2 token plugin, tpm2-tools), written whole to FILE (no
# partition table), its /usr/sbin/init replaced (debugfs, no mount) by a script that finds the
# node's LUKS2 partition and asks the TPM for its key (cryptsetup --test-passphrase --token-only:
# the unseal and the keyslot check, no mapping), saying what it got on the console.
fde_attacker_stick() {
  local raw=$E2E/attacker-src.img init=$E2E/attacker-init n start sectors
  zstd -q -d -f --sparse -o "$raw" "$E2E/images/debian.img.zst" || return 1
  n=$(sgdisk -p "$raw" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && $NF == "cloudimg-rootfs" { print $1 }')
  start=$(sgdisk -i "$n" "$raw" | awk '/^First sector/ { print $3 }')
  sectors=$(sgdisk -i "$n" "$raw" | awk '/^Partition size/ { print $3 }')
  [ -n "$start" ] && [ -n "$sectors" ] || return 1
  dd if="$raw" of="$1" bs=512 skip="$start" count="$sectors" conv=sparse status=none && rm -f "$raw" || return 1
  cat >"$init" <<'INIT'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mountpoint -q /run || mount -t tmpfs run /run
mkdir -p /run/cryptsetup
echo "edgeprov-attack: the attacker's init runs"
for m in af_alg algif_skcipher dm_mod dm_crypt ecb xts aesni_intel; do modprobe -q "$m" 2>/dev/null; done
command -v tpm2 >/dev/null && TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2 pcrread sha256:7,15 2>&1 | sed 's/^/edgeprov-attack: /'
dev=
for p in /dev/vd?[0-9]*; do cryptsetup isLuks "$p" 2>/dev/null && dev=$p; done
if [ -z "$dev" ]; then
  echo "edgeprov-attack: no LUKS2 partition found"
elif cryptsetup open --test-passphrase --token-only --token-type systemd-tpm2 "$dev" </dev/null >/run/out 2>&1; then
  echo "edgeprov-attack: UNSEALED: the TPM gave the key of $dev"
else
  echo "edgeprov-attack: the TPM refused to unseal $dev: $(grep -v '^$' /run/out | tail -n 1)"
fi
echo "edgeprov-attack: done"
sync
echo o >/proc/sysrq-trigger
sleep 60
INIT
  chmod 755 "$init"
  printf 'rm /usr/sbin/init\ncd /usr/sbin\nwrite %s init\nsif /usr/sbin/init mode 0100755\n' "$init" >"$init.cmds"
  debugfs -w -f "$init.cmds" "$1" >"$init.out" 2>&1 || return 1
  e2fsck -fy "$1" >>"$init.out" 2>&1
  [ $? -le 1 ] && debugfs -R 'cat /usr/sbin/init' "$1" 2>/dev/null | cmp -s - "$init" &&
    [ "$(e2label "$1" 2>/dev/null)" = cloudimg-rootfs ]
}

# fde_rename_root DISK: renames the GPT partition cloudimg-rootfs of DISK (a copy) to "stolen".
fde_rename_root() {
  local n
  n=$(sgdisk -p "$1" 2>/dev/null | awk '$1 ~ /^[0-9]+$/ && $NF == "cloudimg-rootfs" { print $1 }')
  [ -n "$n" ] && sgdisk -c "$n:stolen" "$1" >/dev/null && sgdisk -p "$1" | grep -qw stolen
}

# fde_instance_state NAME: the current state of the node's Instance (instance list).
fde_instance_state() {
  local id
  id=$(e2e_cli host show "$(vm_uuid "$1")" --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("instance_id") or "")' 2>/dev/null)
  [ -n "$id" ] && e2e_cli instance list 2>/dev/null | awk -v id="$id" '$1 == id { print $4 }'
}
# fde_wait_error NAME TIMEOUT_S: the Instance ends in ERROR (its workflow failed).
fde_wait_error() {
  local i
  for i in $(seq "$2"); do [ "$(fde_instance_state "$1")" = ERROR ] && return 0; sleep 1; done
  return 1
}

# fde_part_start DISK NAME: the first sector of the GPT partition named NAME.
fde_part_start() {
  local n
  n=$(sgdisk -p "$1" 2>/dev/null | awk -v name="$2" '$1 ~ /^[0-9]+$/ && $NF == name { print $1 }')
  [ -n "$n" ] && sgdisk -i "$n" "$1" | awk '/^First sector/ { print $3 }'
}

# fde_recovery_opens UUID DISK: the host's recovery key (read as an operator) opens the LUKS2
# volume of DISK's cloudimg-rootfs partition; a wrong key does not. The key goes to a 0600 file
# only, never to the output.
fde_recovery_opens() {
  local u=$1 disk=$2 d=$E2E/recovery start
  mkdir -p "$d" && chmod 700 "$d"
  (umask 077 && e2e_cli host recovery-key "$u" --json |
    python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin)["recovery_key"])' >"$d/key") || return 1
  [ "$(wc -c <"$d/key")" -eq 64 ] || { echo "the recovery key is not 64 hex digits"; return 1; }
  (umask 077 && tr '0-9a-f' '1-9a-f0' <"$d/key" >"$d/wrong")
  start=$(fde_part_start "$disk" cloudimg-rootfs) || return 1
  [ -n "$start" ] || { echo "no partition cloudimg-rootfs on $disk"; return 1; }
  if [ -c /dev/mapper/control ] && dmsetup version >/dev/null 2>&1; then
    local loop mnt=$d/mnt ok=1
    loop=$(losetup --find --show --read-only --offset $((start * 512)) "$disk") || return 1
    if cryptsetup open --readonly --key-file "$d/wrong" "$loop" e2e-recovery-wrong 2>/dev/null; then
      echo "a wrong key opens it"
      cryptsetup close e2e-recovery-wrong
      ok=0
    fi
    if cryptsetup open --readonly --key-file "$d/key" "$loop" e2e-recovery; then
      # noload: the VM was killed, so its journal needs a replay a read-only device cannot take.
      mkdir -p "$mnt" && mount -o ro,noload /dev/mapper/e2e-recovery "$mnt" && grep -q 'Debian' "$mnt/etc/os-release" || ok=0
      umount "$mnt" 2>/dev/null
      cryptsetup close e2e-recovery
    else
      ok=0
    fi
    losetup -d "$loop"
    [ "$ok" = 1 ]
  else
    echo "(this kernel has no device-mapper: the key is checked against the volume's LUKS2 header)"
    dd if="$disk" of="$d/header" bs=512 skip="$start" count=32768 status=none || return 1
    cryptsetup isLuks --type luks2 "$d/header" || { echo "the partition holds no LUKS2 header"; return 1; }
    ! cryptsetup open --test-passphrase --key-file "$d/wrong" "$d/header" 2>/dev/null || { echo "a wrong key opens it"; return 1; }
    cryptsetup open --test-passphrase --key-file "$d/key" "$d/header"
  fi
}

# fde_flip DISK OFFSET: changes the byte at OFFSET of DISK (adds 1).
fde_flip() {
  python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([(b[0] + 1) % 256]))
PY
}

fde_console_has() { vm_console "$1" | grep -qE -- "$2"; }
fde_console_lacks() { ! fde_console_has "$@"; }

# fde_status_names_tpm NAME: the failed instance's status or its failed action's message names
# the missing TPM (instance show).
fde_status_names_tpm() {
  local id
  id=$(e2e_cli host show "$(vm_uuid "$1")" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')
  e2e_cli instance show "$id" >"$E2E/$1-instance.out" 2>&1
  grep -E 'provisioning:|disk\.erase|image\.stream' "$E2E/$1-instance.out"
  grep -qE 'disk\.erase +FAILED.*no TPM 2\.0' "$E2E/$1-instance.out" && grep -qE '^provisioning:.*TPM' "$E2E/$1-instance.out"
}

# fde_all_zero FILE: FILE holds only zero bytes.
fde_all_zero() { cmp -s -n "$(stat -c %s "$1")" "$1" /dev/zero; }

fde_installed_boot_s() {
  awk '/workflow done, rebooting/ { t0 = $1 } /RUNNING in the inventory/ { t1 = $1 } END { printf "%.1f", t1 - t0 }' "$E2E/$1/timeline"
}

fde_node_to_running() {
  local n=$1 unlocked=$2
  node_to_micro_os "$n" && vm_wait "$n" "onboarded" 180 'onboarded as' &&
    vm_wait "$n" "workflow received" 120 'disk\.erase' &&
    vm_wait "$n" "workflow done, rebooting" 400 'workflow done; restarting' &&
    vm_wait "$n" "installed OS unlocks its disk with the TPM" 240 "$unlocked" &&
    vm_wait "$n" "RUNNING in the inventory" 600 @running
}

scenario_fde() {
  local ud um un
  ud=$(uuid_of 10) um=$(uuid_of 11) un=$(uuid_of 12)
  fde_tpms() { tpm_new "$E2E/tpm-fde-deb" && tpm_new "$E2E/tpm-fde-mv" && tpm_new "$E2E/tpm-fde-other"; }
  check "fde: three machines' TPMs (swtpm)" fde_tpms
  check "fde: Debian host registered with --fde" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$ud" \
    --serial E2ENODE10 --os debian-12 --auto-onboard --fde
  check "fde: microvisor host registered with --fde" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$um" \
    --serial E2ENODE11 --os microvisor --auto-onboard --fde
  VM_TPM=$E2E/tpm-fde-deb vm_start fdeD "$ud" E2ENODE10 net secureboot
  VM_TPM=$E2E/tpm-fde-mv vm_start fdeM "$um" E2ENODE11 net secureboot
  fde_node_to_running fdeD "$FDE_DEB_UNLOCKED" >"$E2E/fdeD.out" 2>&1 &
  local pd=$!
  fde_node_to_running fdeM "$FDE_MV_UNLOCKED" >"$E2E/fdeM.out" 2>&1 &
  local pm=$!
  check "fde: the Debian node reaches RUNNING on its encrypted root" wait "$pd"
  check "fde: the microvisor node reaches RUNNING on its verified root and encrypted data" wait "$pm"
  cat "$E2E/fdeD.out" "$E2E/fdeM.out"
  check "fde: the microvisor's root was verified (dm-verity) at boot" fde_console_has fdeM "$FDE_MV_VERIFIED"
  check "fde: Debian reports / on dm-crypt" fde_wait_disk_line fdeD '^disk: +encrypted.*/ on [^ ]+ \(dm-crypt LUKS2\)' 120
  check "fde: the microvisor reports / on dm-verity and /data on dm-crypt" fde_wait_disk_line fdeM \
    'encrypted, root verified:.*/ on [^ ]+ \(dm-verity\).*/data on [^ ]+ \(dm-crypt LUKS2\)' 120
  vm_timeline fdeD
  vm_timeline fdeM
  printf 'fde: installed OS boot (reboot to RUNNING): Debian %s s, microvisor %s s (encrypted)\n' \
    "$(fde_installed_boot_s fdeD)" "$(fde_installed_boot_s fdeM)"
  # The same boots in the clear, when this run had them: Debian in two (two VMs at once, as here),
  # the microvisor in secureboot (alone, verified root, clear data).
  local n
  for n in two1:Debian two2:Debian sb1:microvisor; do
    [ -s "$E2E/${n%%:*}/timeline" ] &&
      printf 'fde: the same %s boot in the clear (%s, this run): %s s\n' "${n#*:}" "${n%%:*}" "$(fde_installed_boot_s "${n%%:*}")"
  done
  vm_stop fdeD
  vm_stop fdeM

  # (a) the Debian disk in another machine, and a node without a TPM asked for FDE, at once.
  check "fde: a node without a TPM registered with --fde" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$un" \
    --serial E2ENODE12 --os debian-12 --auto-onboard --fde
  VM_DISK=$E2E/fdeD/target.img VM_TPM=$E2E/tpm-fde-other vm_start fdeA "$ud" E2ENODE10 net secureboot
  vm_start fdeN "$un" E2ENODE12 net secureboot
  check "fde: (a) the Debian disk in another machine: the TPM does not unlock it" vm_wait fdeA "TPM refuses" 240 \
    "$FDE_DEB_REFUSED"
  sleep 15
  check "fde: (a) ... the boot halts, no shell" vm_wait fdeA "halted" 60 'System halted'
  check "fde: (a) ... and the OS never starts" fde_console_lacks fdeA 'Welcome to Debian|Cloud-init v\.|edgeprov-agent|\(initramfs\)'

  vm_stop fdeA
  check "fde: (c) the recovery key opens the Debian disk with cryptsetup" fde_recovery_opens "$ud" "$E2E/fdeD/target.img"
  check "fde: no TPM: the node onboards and runs its workflow" vm_wait fdeN "workflow received" 360 'disk\.erase'
  check "fde: no TPM: the workflow fails, the instance ends in ERROR" fde_wait_error fdeN 240
  check "fde: no TPM: the status names the missing TPM" fde_status_names_tpm fdeN
  vm_stop fdeN
  check "fde: no TPM: the disk holds no byte of the image" fde_all_zero "$E2E/fdeN/target.img"

  # (b) one byte of the agent in the microvisor's verified root, on a copy of its disk, same TPM.
  local offset
  offset=$(sed -n 's/^AGENT_OFFSET=//p' "$E2E/images/microvisor.img.verity.env")
  cp --sparse=always "$E2E/fdeM/target.img" "$E2E/fdeM-tampered.img"
  check "fde: (b) one byte of the verified root changed (disk offset $offset)" fde_flip "$E2E/fdeM-tampered.img" "$offset"
  VM_DISK=$E2E/fdeM-tampered.img VM_TPM=$E2E/tpm-fde-mv vm_start fdeB "$um" E2ENODE11 net secureboot
  check "fde: (b) the kernel refuses the corrupted block" vm_wait fdeB "verity refuses a block" 240 "$FDE_CORRUPTED"
  sleep 10
  check "fde: (b) ... the kernel stops (panic on corruption)" vm_wait fdeB "verity panic" 60 'Kernel panic.*dm-verity device corrupted'
  check "fde: (b) ... and the node never says it runs" fde_console_lacks fdeB 'installed OS running|reported in on the node API'

  vm_stop fdeB

  # (d) the stolen Debian node itself: its own TPM and firmware, its root partition renamed, an
  # attacker's stick with a root file system labelled cloudimg-rootfs.
  cp --sparse=always "$E2E/fdeD/target.img" "$E2E/fdeD-renamed.img"
  check "fde: (d) the Debian disk's LUKS2 partition renamed in its GPT" fde_rename_root "$E2E/fdeD-renamed.img"
  check "fde: (d) an attacker's stick: the Debian image's root (labelled cloudimg-rootfs), an init that asks the TPM" \
    fde_attacker_stick "$E2E/attacker.img"
  VM_DISK=$E2E/fdeD-renamed.img VM_EXTRA_DISK=$E2E/attacker.img VM_TPM=$E2E/tpm-fde-deb vm_start fdeS "$ud" E2ENODE10 net secureboot
  check "fde: (d) the signed initramfs locks the TPM (PCR 15) before it lets the boot go on" vm_wait fdeS "PCR 15 extended" 240 \
    'edgeprov-fde: PCR 15 extended'
  check "fde: (d) ... under Secure Boot (PCR 7 as enrolled)" vm_wait fdeS "Secure Boot on" 30 \
    'UEFI Secure Boot is enabled|Secure boot enabled'
  check "fde: (d) the attacker's init runs" vm_wait fdeS "attacker's init" 180 "edgeprov-attack: the attacker's init runs"
  check "fde: (d) ... and the TPM refuses to unseal the node's disk" vm_wait fdeS "TPM refuses the attacker" 120 \
    'edgeprov-attack: (the TPM refused|UNSEALED|no LUKS2)'
  vm_stop fdeS
  vm_console fdeS | grep 'edgeprov-attack:' >&2
  check "fde: (d) ... refused, never unsealed" fde_console_has fdeS 'edgeprov-attack: the TPM refused to unseal /dev/vda'
  # The refusal is the policy's (not a missing TPM or a broken token), and PCR 15 holds exactly the
  # initramfs's one extension: sha256(32 zero bytes || sha256("edgeprov: no more unsealing in this boot")).
  check "fde: (d) ... by the PCR policy" fde_console_has fdeS 'edgeprov-attack: the TPM refused .*policy digest does not match'
  check "fde: (d) ... PCR 15 extended once, by the initramfs" fde_console_has fdeS \
    'edgeprov-attack: +15 *: 0xC03D847184C6A56C1B58E17A54409A3C90FCF4DEA8A3EFBC22402B79E9AC8DDC'
  check "fde: (d) ... (never 'UNSEALED')" fde_console_lacks fdeS 'edgeprov-attack: UNSEALED'
}

