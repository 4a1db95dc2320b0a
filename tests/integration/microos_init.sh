#!/usr/bin/env bash
# Integration test of the Micro-OS /init (micro-os/init) and its udhcpc hook
# (micro-os/udhcpc.script): Debian's kernel boots under QEMU (TCG) an initramfs made here by
# hand in the layout `edgeprov artifacts build` produces (static busybox, the virtio modules
# in dependency order, agent.env, a CA), with a fake edgeprov-agent that prints how it was
# started. The boots, two at a time:
#   dhcp    DHCP on the NIC named by edgeprov.mac, command-line orchestrator over agent.env, the
#           agent fails (exit 3): FAILED, the log's tail, a working shell on the console whose
#           exit reboots
#   static  ip=... static; a hostile edgeprov.orchestrator refused (agent.env's is used);
#           edgeprov.debug, edgeprov.proxy; the agent exits 0: reboot, no shell
#   nonic   no NIC at all: FAILED: network, then the shell
#   twonics no edgeprov.mac, eth0 on a dead network: DHCP gives up on it and takes eth1
#   installed  edgeprov.installed=cidata (an os-microvisor image), a TPM 2.0 (swtpm) and tpm2 in
#           the initramfs: PCR 15 extended before the seed partition is mounted (the agent sees
#           it extended), the agent run with --installed --seed, the host name from meta-data, the
#           OS stays up
#   noseed  the same without the partition: FAILED naming it, the shell
#   notpm2  installed mode with a TPM but no tpm2 to extend PCR 15: FAILED before the seed is
#           mounted, no agent
#   secureboot  UEFI (OVMF) enforcing Secure Boot, the kernel signed with its snakeoil db key,
#           edgeprov.shell and edgeprov.debug on the command line, the agent fails: both words
#           ignored (said once), FAILED and the log's tail, then no shell: the node halts
#   efi     the same UEFI without Secure Boot, edgeprov.debug: debug on, FAILED, the shell as
#           before (the SecureBoot variable read, efivarfs loaded ahead of the other modules)
#   sbinstalled  Secure Boot, the signed bare kernel with an installed-mode command line
#           (edgeprov.installed/root/roothash, as an attacker would pass them through iPXE): not
#           started by a signed unified kernel image, so refused before any partition is looked
#           at; the node halts
#   sbuki   Secure Boot, a signed unified kernel image (systemd's stub, its own command line
#           edgeprov.installed=cidata) on the disk's ESP: StubInfo set by the stub (volatile), so
#           installed mode is accepted; no TPM: nothing to lock; the seed mounted, the OS stays up
#   sbnvstub  as sbinstalled, with a non-volatile StubInfo made before /init runs (as an OS
#           booted with Secure Boot off could leave one): refused, saying so; the node halts
# Usage: microos_init.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
: "$build"

for tool in qemu-system-x86_64 zstd busybox timeout sbsign sbattach openssl swtpm tpm2 objcopy mkfs.vfat mmd mcopy sgdisk; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/install-deps.sh)"; exit 1; }
done
kernel=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1)
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver
[ -r "$kernel" ] && [ -r "$moddir/modules.dep" ] || { echo "FAIL: no readable Debian kernel and modules"; exit 1; }
busybox=$(command -v busybox)
if ldd "$busybox" >/dev/null 2>&1; then echo "FAIL: $busybox is not static (busybox-static)"; exit 1; fi

# ---- the initramfs -------------------------------------------------------------------------
# Modules in load order, dependencies first, as the builder writes /etc/edgeprov/modules.
order=()
module_path() { awk -F: -v want="$1.ko" '{ n = $1; sub(".*/", "", n); if (n == want) { print $1; exit } }' "$moddir/modules.dep"; }
add_module() { # PATH relative to $moddir
  local m dep
  for m in "${order[@]}"; do [ "$m" = "$1" ] && return; done
  for dep in $(awk -F: -v want="$1" '$1 == want { print $2 }' "$moddir/modules.dep"); do add_module "$dep"; done
  order+=("$1")
}
# virtio, and ext4 for the installed mode's seed partition (crc32c_generic: nothing runs
# modprobe for ext4's checksum).
for name in virtio_pci virtio_net virtio_blk crc32c_generic ext4; do add_module "$(module_path "$name")"; done
loadable_count=${#order[@]}
# A module whose hardware QEMU lacks: insmod fails (ENODEV), /init goes on.
absent=$(module_path acpi-cpufreq)
order+=("$absent")
# efivarfs: /init loads it ahead of the rest under UEFI to read the SecureBoot variable; without
# UEFI its insmod fails (ENODEV) like the absent one's.
order+=("$(module_path efivarfs)")
# PCI gates (etc/edgeprov/modules.pci, as the builder writes it): e1000 is skipped (QEMU has no
# such NIC here); virtio_pci and its two dependencies load (a virtio device matches).
e1000=$(module_path e1000)
order+=("$e1000")
virtio_pci=$(module_path virtio_pci)

root=$tmp/root
mkdir -p "$root/bin" "$root/usr/bin" "$root/usr/share/udhcpc" "$root/etc/edgeprov" "$root/usr/lib/edgeprov/plugins"
install -m 0755 "$src/micro-os/init" "$root/init"
install -m 0755 "$src/micro-os/udhcpc.script" "$root/usr/share/udhcpc/default.script"
install -m 0755 "$busybox" "$root/bin/busybox"
for m in "${order[@]}"; do install -D -m 0644 "$moddir/$m" "$root/lib/modules/$kver/$m"; done
printf '%s\n' "${order[@]}" >"$root/etc/edgeprov/modules"
{
  echo "$e1000||v00008086d0000100Esv*sd*bc*sc*i* v00008086d0000100Fsv*sd*bc*sc*i*"
  echo "$virtio_pci|$(module_path virtio_pci_legacy_dev) $(module_path virtio_pci_modern_dev)|v0000FFFFd*sv*sd*bc*sc*i* v00001AF4d*sv*sd*bc*sc*i*"
} >"$root/etc/edgeprov/modules.pci"
echo "$kver" >"$root/etc/edgeprov/kernel-version"
make_test_tls "$tmp"
cp "$tmp/ca.pem" "$root/etc/edgeprov/ca.pem"
cat >"$root/etc/edgeprov/agent.env" <<'ENV'
EDGEPROV_ORCHESTRATOR=10.0.2.2:7443
EDGEPROV_TOKEN_URL=https://10.0.2.2:8443/oauth2/token
EDGEPROV_PROXY=
EDGEPROV_NO_PROXY=localhost,10.0.2.3
ENV

# make_initrd NAME EXIT: the initramfs with a fake agent that exits with EXIT.
make_initrd() {
  cat >"$root/usr/bin/edgeprov-agent" <<AGENT
#!/bin/busybox sh
echo "FAKE-AGENT ARGS: \$*"
echo "FAKE-AGENT PROXY: https_proxy=\${https_proxy-unset} HTTPS_PROXY=\${HTTPS_PROXY-unset} grpc_proxy=\${grpc_proxy-unset} no_proxy=\${no_proxy-unset}"
echo "FAKE-AGENT NET: \$(echo \$(ip route | grep default)) | \$(echo \$(grep nameserver /etc/resolv.conf))"
echo "FAKE-AGENT ENV: \$(echo \$(env | cut -d= -f1 | sort))"
echo "FAKE-AGENT STATE: \$(ls -ld /var/lib/edgeprov-agent | cut -c1-10)"
echo "FAKE-AGENT HOST: \$(hostname)"
echo "FAKE-AGENT PCR15: \$(cat /sys/class/tpm/tpm0/pcr-sha256/15 2>/dev/null || echo none)"
i=1
while [ \$i -le 60 ]; do echo "fake agent line \$i"; i=\$((i + 1)); done
exit $2
AGENT
  chmod 0755 "$root/usr/bin/edgeprov-agent"
  (cd "$root" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) | zstd -q -3 -T0 >"$tmp/$1.img"
}
make_initrd fail 3
make_initrd ok 0
# nvstub: a non-volatile StubInfo (attributes 0x7) is made, then the real /init runs.
mv "$root/init" "$root/init.real"
cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox insmod /lib/modules/$kver/$(module_path efivarfs)
/bin/busybox mount -t efivarfs efivarfs /sys/firmware/efi/efivars
printf '\007\000\000\000e\000v\000i\000l\000\000\000' >/sys/firmware/efi/efivars/StubInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f
/bin/busybox umount /sys/firmware/efi/efivars
/bin/busybox umount /sys
exec /init.real
INIT
chmod 0755 "$root/init"
make_initrd nvstub 3
mv "$root/init.real" "$root/init"
# tpm: with tpm2 (tpm2-tools) and its libraries, and the TCTI it loads, as the builder adds them.
for f in /usr/bin/tpm2 /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0; do
  for g in "$f" $(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/lib64\// { print $1 }'); do
    install -D -m 0755 "$(readlink -f "$g")" "$root$g"
  done
done
make_initrd tpm 0

# UEFI: OVMF (Secure Boot: its snakeoil variables, which trust the snakeoil db key) boots the
# kernel given with -kernel only when it is signed with a key of db: a copy signed with it.
ovmf_sb_code=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd ovmf_sb_vars=/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
for f in "$ovmf_sb_code" "$ovmf_sb_vars" "$ovmf_code" "$ovmf_vars" /usr/share/ovmf/PkKek-1-snakeoil.key; do
  [ -r "$f" ] || { echo "FAIL: $f is missing (package ovmf)"; exit 1; }
done
openssl pkey -in /usr/share/ovmf/PkKek-1-snakeoil.key -passin pass:snakeoil -out "$tmp/sb.key" 2>/dev/null
cp "$kernel" "$tmp/vmlinuz.efi" && sbattach --remove "$tmp/vmlinuz.efi" >/dev/null 2>&1
sbsign --key "$tmp/sb.key" --cert /usr/share/ovmf/PkKek-1-snakeoil.pem --output "$tmp/vmlinuz.signed" "$tmp/vmlinuz.efi" >/dev/null 2>&1 ||
  { echo "FAIL: cannot sign a copy of $kernel with the snakeoil key"; exit 1; }
cp "$ovmf_sb_vars" "$tmp/sb-vars.fd" && cp "$ovmf_sb_vars" "$tmp/sbi-vars.fd" && cp "$ovmf_vars" "$tmp/efi-vars.fd"
cp "$ovmf_sb_vars" "$tmp/sbu-vars.fd" && cp "$ovmf_sb_vars" "$tmp/sbn-vars.fd"
# PCR 15 after /init's one extend (sha256 of "edgeprov: no more unsealing in this boot"), as sysfs shows it.
pcr15=$(python3 -c 'import hashlib; d = hashlib.sha256(b"edgeprov: no more unsealing in this boot").digest(); print(hashlib.sha256(bytes(32) + d).hexdigest().upper())')
check "the lock's digest is the contract's" test "$(printf 'edgeprov: no more unsealing in this boot' | sha256sum | cut -c1-64)" = \
  bb42bdae040ebfb2743bcbcd77a3f9cddbd1792f5b49084128f461f1d583818d
# tpm_start NAME: a software TPM 2.0 of its own for one boot (swtpm, state $tmp/NAME.tpm; it ends
# with QEMU's connection, or at the end of the test); tpm_args NAME: QEMU's arguments for it.
tpms=()
on_exit() { [ ${#tpms[@]} -eq 0 ] || kill "${tpms[@]}" 2>/dev/null; }
tpm_start() {
  mkdir -p "$tmp/$1.tpm"
  swtpm socket --tpm2 --tpmstate dir="$tmp/$1.tpm" --ctrl type=unixio,path="$tmp/$1.tpm/sock" --terminate \
    >"$tmp/$1.swtpm.log" 2>&1 &
  tpms+=($!)
  for _ in $(seq 100); do [ -S "$tmp/$1.tpm/sock" ] && break; sleep 0.05; done
}
tpm_args() { echo "-chardev socket,id=chrtpm,path=$tmp/$1.tpm/sock -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0"; }

# ---- boots ---------------------------------------------------------------------------------
# boot NAME INITRD APPEND [QEMU ARGS...]: boots with the serial console in $tmp/NAME.out (CRs
# stripped) and QEMU's exit status in $tmp/NAME.rc (124: killed at the time limit). When /init
# offers its shell, types two commands into it: one whose output proves it ran, then exit.
# A halted guest (no shell under Secure Boot), or an installed OS once it runs, is stopped once it
# says so. KERNEL=FILE boots another kernel file; KERNEL=disk boots what the firmware finds on the
# disks (INITRD and APPEND unused).
boot() {
  local name=$1 initrd=$2 append=$3 raw=$tmp/$1.raw
  shift 3
  local t0=$SECONDS limit=${BOOT_LIMIT:-75}
  : >"$raw"
  rm -f "$tmp/$name.pid"
  {
    while [ ! -e "$tmp/$name.rc" ] && [ $((SECONDS - t0)) -lt 80 ]; do
      if grep -qF "leaving it reboots" "$raw"; then
        sleep 1
        printf 'echo SHELL-$((6 * 7))\n'
        sleep 0.5
        printf 'exit\n'
        break
      fi
      if grep -qF "reboot: System halted" "$raw" || grep -qF "edgeprov-microos: installed OS running" "$raw"; then
        sleep 2 # time for anything the guest still writes (there must be nothing)
        kill "$(cat "$tmp/$name.pid" 2>/dev/null)" 2>/dev/null # (gone when QEMU has ended by itself)
        break
      fi
      sleep 0.2
    done
  } | {
    # no_timer_check: on a loaded host a TCG guest can miss the kernel's IO-APIC timer check and
    # panic ("IO-APIC + timer doesn't work"); the check proves nothing about the Micro-OS.
    if [ "${KERNEL:-}" = disk ]; then set -- "$@"; else
      set -- -kernel "${KERNEL:-$kernel}" -initrd "$initrd" -append "console=ttyS0 panic=-1 no_timer_check $append" "$@"
    fi
    timeout "$limit" qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -pidfile "$tmp/$name.pid" "$@" >"$raw" 2>&1
    echo $? >"$tmp/$name.rc"
  }
  tr -d '\r' <"$raw" >"$tmp/$name.out"
  echo "boot $name: $((SECONDS - t0)) s, qemu status $(cat "$tmp/$name.rc")"
}
mac=52:54:00:12:34:56
nic() { echo "-netdev user,id=$1 -device virtio-net-pci,netdev=$1,mac=$2"; }

t_all=$SECONDS
boot dhcp "$tmp/fail.img" "edgeprov.orchestrator=10.0.2.2:9999 edgeprov.mac=$mac edgeprov.ip=10.0.2.15 \
edgeprov.target_disk=/dev/disk/by-id/virtio-target" $(nic n0 $mac) &
pids+=($!)
boot static "$tmp/ok.img" "ip=10.0.2.50::10.0.2.2:255.255.255.0::eth0:off:10.0.2.3 edgeprov.orchestrator=a;reboot \
edgeprov.debug edgeprov.proxy=http://10.0.2.2:3128 edgeprov.mac=$mac" $(nic n0 $mac) &
pids+=($!)
wait "${pids[@]}"
pids=()
boot nonic "$tmp/ok.img" "edgeprov.net_timeout=3 edgeprov.mac=zz:00" -nic none &
pids+=($!)
boot twonics "$tmp/ok.img" "edgeprov.net_timeout=30" -netdev hubport,id=dead,hubid=1 \
  -device virtio-net-pci,netdev=dead,mac=52:54:00:00:00:01 $(nic n1 52:54:00:00:00:02) &
pids+=($!)
wait "${pids[@]}"
pids=()
# Installed mode (an os-microvisor image): a disk whose GPT partition "cidata" holds the
# NoCloud seed. The OS stays up after its agent: QEMU is stopped once it says it runs.
seed_disk() { # OUT WITH_SEED_PARTITION
  mkdir -p "$tmp/seed"
  printf '#cloud-config\n' >"$tmp/seed/user-data" && chmod 600 "$tmp/seed/user-data"
  printf "instance-id: 'i-1'\nlocal-hostname: 'node-7.site.example'\n" >"$tmp/seed/meta-data"
  truncate -s 8M "$tmp/seed.fs" && mkfs.ext4 -q -F -L cidata -d "$tmp/seed" "$tmp/seed.fs"
  truncate -s 12M "$1"
  if [ "$2" = yes ]; then sgdisk -n 1:2048:+8M -c 1:cidata "$1" >/dev/null; else sgdisk -n 1:2048:+8M -c 1:other "$1" >/dev/null; fi
  dd if="$tmp/seed.fs" of="$1" bs=512 seek=2048 conv=notrunc status=none
}
seed_disk "$tmp/installed.disk" yes
seed_disk "$tmp/noseed.disk" no
tpm_start installed
boot installed "$tmp/tpm.img" "edgeprov.installed=cidata" $(nic n0 $mac) $(tpm_args installed) \
  -drive "if=none,id=d0,format=raw,file=$tmp/installed.disk" -device virtio-blk-pci,drive=d0 &
pids+=($!)
boot noseed "$tmp/ok.img" "edgeprov.installed=cidata" $(nic n0 $mac) \
  -drive "if=none,id=d0,format=raw,file=$tmp/noseed.disk" -device virtio-blk-pci,drive=d0 &
pids+=($!)
wait "${pids[@]}"
pids=()
# UEFI, with and without Secure Boot (q35: OVMF's Secure Boot build needs SMM).
KERNEL=$tmp/vmlinuz.signed boot secureboot "$tmp/fail.img" "edgeprov.shell edgeprov.debug edgeprov.mac=$mac edgeprov.shell=1" \
  -M q35,smm=on -global driver=cfi.pflash01,property=secure,value=on \
  -drive "if=pflash,format=raw,readonly=on,file=$ovmf_sb_code" -drive "if=pflash,format=raw,file=$tmp/sb-vars.fd" $(nic n0 $mac) &
pids+=($!)
KERNEL=$tmp/vmlinuz.signed boot efi "$tmp/fail.img" "edgeprov.debug edgeprov.mac=$mac" -M q35 \
  -drive "if=pflash,format=raw,readonly=on,file=$ovmf_code" -drive "if=pflash,format=raw,file=$tmp/efi-vars.fd" $(nic n0 $mac) &
pids+=($!)
wait "${pids[@]}"
pids=()
KERNEL=$tmp/vmlinuz.signed boot sbinstalled "$tmp/fail.img" \
  "edgeprov.installed=data edgeprov.root=root edgeprov.roothash=$(printf '%064d' 0) edgeprov.mac=$mac" \
  -M q35,smm=on -global driver=cfi.pflash01,property=secure,value=on \
  -drive "if=pflash,format=raw,readonly=on,file=$ovmf_sb_code" -drive "if=pflash,format=raw,file=$tmp/sbi-vars.fd" $(nic n0 $mac) &
pids+=($!)
cp "$tmp/installed.disk" "$tmp/notpm2.disk"
tpm_start notpm2
boot notpm2 "$tmp/ok.img" "edgeprov.installed=cidata" $(nic n0 $mac) $(tpm_args notpm2) \
  -drive "if=none,id=d0,format=raw,file=$tmp/notpm2.disk" -device virtio-blk-pci,drive=d0 &
pids+=($!)
wait "${pids[@]}"
pids=()
# A unified kernel image (systemd's stub, as microvisor-image.sh lays it out) signed with the
# snakeoil db key, on the ESP of a disk whose second partition is the seed.
printf 'ID=edgeprov-test\n' >"$tmp/osrel"
printf '%s' "console=ttyS0 panic=-1 no_timer_check edgeprov.installed=cidata edgeprov.mac=$mac" >"$tmp/uki.cmdline"
initrd_vma=$(((0x1000000 + $(stat -c %s "$kernel") + 0xfffff) / 0x100000 * 0x100000))
objcopy --add-section .osrel="$tmp/osrel" --change-section-vma .osrel=0x20000 \
  --add-section .cmdline="$tmp/uki.cmdline" --change-section-vma .cmdline=0x30000 \
  --add-section .linux="$kernel" --change-section-vma .linux=0x1000000 \
  --add-section .initrd="$tmp/ok.img" --change-section-vma ".initrd=$(printf '0x%x' $initrd_vma)" \
  /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$tmp/uki.efi" &&
  sbsign --key "$tmp/sb.key" --cert /usr/share/ovmf/PkKek-1-snakeoil.pem --output "$tmp/uki.signed" "$tmp/uki.efi" >/dev/null 2>&1 ||
  { echo "FAIL: cannot make and sign the unified kernel image"; exit 1; }
esp_mib=$((($(stat -c %s "$tmp/uki.signed") >> 20) + 8))
truncate -s ${esp_mib}M "$tmp/esp.img" && mkfs.vfat -n EFI "$tmp/esp.img" >/dev/null &&
  mmd -i "$tmp/esp.img" ::/EFI ::/EFI/BOOT && mcopy -i "$tmp/esp.img" "$tmp/uki.signed" ::/EFI/BOOT/BOOTX64.EFI ||
  { echo "FAIL: cannot make the ESP"; exit 1; }
truncate -s $((esp_mib + 12))M "$tmp/uki.disk"
sgdisk -n 1:2048:+${esp_mib}M -t 1:ef00 -c 1:ESP -n 2:0:+8M -c 2:cidata "$tmp/uki.disk" >/dev/null
dd if="$tmp/esp.img" of="$tmp/uki.disk" bs=512 seek=2048 conv=notrunc status=none
dd if="$tmp/seed.fs" of="$tmp/uki.disk" bs=512 seek=$(sgdisk -i 2 "$tmp/uki.disk" | awk '/^First sector/ { print $3 }') conv=notrunc status=none
# No option ROM on the NIC: the firmware boots the disk, not the network.
KERNEL=disk BOOT_LIMIT=100 boot sbuki "" "" -M q35,smm=on -global driver=cfi.pflash01,property=secure,value=on \
  -drive "if=pflash,format=raw,readonly=on,file=$ovmf_sb_code" -drive "if=pflash,format=raw,file=$tmp/sbu-vars.fd" \
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0,mac=$mac,romfile= \
  -drive "if=none,id=d0,format=raw,file=$tmp/uki.disk" -device virtio-blk-pci,drive=d0,bootindex=0 &
pids+=($!)
KERNEL=$tmp/vmlinuz.signed boot sbnvstub "$tmp/nvstub.img" \
  "edgeprov.installed=data edgeprov.root=root edgeprov.roothash=$(printf '%064d' 0) edgeprov.mac=$mac" \
  -M q35,smm=on -global driver=cfi.pflash01,property=secure,value=on \
  -drive "if=pflash,format=raw,readonly=on,file=$ovmf_sb_code" -drive "if=pflash,format=raw,file=$tmp/sbn-vars.fd" $(nic n0 $mac) &
pids+=($!)
wait "${pids[@]}"
pids=()
echo "all boots: $((SECONDS - t_all)) s"

# after FILE MARKER: the part of FILE after the first line holding MARKER.
after() { sed -n "/$2/,\$p" "$1" | tail -n +2; }
ended() { [ "$(cat "$tmp/$1.rc")" = 0 ] || { echo "---- $1: qemu status $(cat "$tmp/$1.rc")"; sed 's/^/    /' "$tmp/$1.out"; return 1; }; }
line() { grep -qx -- "$2" "$1"; }

o=$tmp/dhcp.out
check "dhcp: init marker" contains "$o" "edgeprov-microos: init"
check "  modules loaded ($loadable_count), the absent one ignored, e1000 skipped" contains "$o" \
  "edgeprov-microos: modules loaded ($loadable_count; 1 skipped: no PCI device for them)"
check "  network up eth0 10.0.2.15" contains "$o" "edgeprov-microos: network up eth0 10.0.2.15"
check "  agent starting" contains "$o" "edgeprov-microos: agent starting"
check "  command line's orchestrator wins" contains "$o" "FAKE-AGENT ARGS: --orchestrator 10.0.2.2:9999 --ca /etc/edgeprov/ca.pem --token-url https://10.0.2.2:8443/oauth2/token --state-dir /var/lib/edgeprov-agent --plugins /usr/lib/edgeprov/plugins --target-disk /dev/disk/by-id/virtio-target"
check "  no --host-ip under DHCP, no --log-level" lacks "$o" "--host-ip"
check "  no proxy" contains "$o" "FAKE-AGENT PROXY: https_proxy=unset HTTPS_PROXY=unset grpc_proxy=unset no_proxy=unset"
check "  udhcpc hook: default route and DNS" contains "$o" "FAKE-AGENT NET: default via 10.0.2.2 dev eth0 | nameserver 10.0.2.3"
check "  clean environment (no ip= from the kernel)" contains "$o" "FAKE-AGENT ENV: HOME PATH PWD SHLVL TERM" # the shell adds PWD and SHLVL
check "  state directory mode 0700" contains "$o" "FAKE-AGENT STATE: drwx------"
check "  agent exited 3" contains "$o" "edgeprov-microos: agent exited 3"
check "  FAILED marker" contains "$o" "edgeprov-microos: FAILED: agent exited 3"
after "$o" "edgeprov-microos: FAILED" >"$tmp/dhcp.tail"
check "  log tail: last 50 lines" contains "$tmp/dhcp.tail" "---- last 50 lines of /run/edgeprov-agent.log"
check "    ends with the agent's last line" line "$tmp/dhcp.tail" "fake agent line 60"
check "    starts at the 50th line from the end" line "$tmp/dhcp.tail" "fake agent line 11"
check "    and no earlier" absent -x "fake agent line 10" "$tmp/dhcp.tail"
check "  a shell on the console ran a command" line "$o" "SHELL-42"
check "  leaving the shell rebooted (QEMU exited)" ended dhcp
check "  no refusals" lacks "$o" "refusing"

o=$tmp/static.out
check "static: hostile edgeprov.orchestrator refused" contains "$o" \
  "edgeprov-microos: refusing edgeprov.orchestrator from the command line: characters outside [A-Za-z0-9.:-]"
check "  network up eth0 10.0.2.50" contains "$o" "edgeprov-microos: network up eth0 10.0.2.50"
check "  agent.env's orchestrator, --host-ip, debug log level" contains "$o" \
  "FAKE-AGENT ARGS: --orchestrator 10.0.2.2:7443 --ca /etc/edgeprov/ca.pem --token-url https://10.0.2.2:8443/oauth2/token --state-dir /var/lib/edgeprov-agent --plugins /usr/lib/edgeprov/plugins --host-ip 10.0.2.50 --log-level debug"
check "  proxy exported, no_proxy from agent.env" contains "$o" \
  "FAKE-AGENT PROXY: https_proxy=http://10.0.2.2:3128 HTTPS_PROXY=http://10.0.2.2:3128 grpc_proxy=http://10.0.2.2:3128 no_proxy=localhost,10.0.2.3"
check "  static route and DNS" contains "$o" "FAKE-AGENT NET: default via 10.0.2.2 dev eth0 | nameserver 10.0.2.3"
check "  debug: the absent module's failure logged" contains "$o" "edgeprov-microos: debug: insmod $absent failed"
check "  debug: e1000 skipped, no PCI device for it" contains "$o" "edgeprov-microos: debug: skipping $e1000: no PCI device for it"
check "  debug: set -x" contains "$o" "+ say 'network up eth0 10.0.2.50'"
check "  agent exited 0" contains "$o" "edgeprov-microos: agent exited 0"
check "  then reboot without a shell" lacks "$o" "leaving it reboots"
check "  no FAILED" lacks "$o" "FAILED"
check "  QEMU exited" ended static

o=$tmp/nonic.out
check "nonic: bad edgeprov.mac refused" contains "$o" "edgeprov-microos: refusing edgeprov.mac from the command line: not a MAC address"
check "  FAILED: network" contains "$o" "edgeprov-microos: FAILED: network: no Ethernet interface"
check "  init log tail shown" contains "$o" "---- last 50 lines of /run/edgeprov-microos.log"
check "  agent not started" lacks "$o" "agent starting"
check "  shell, then reboot" line "$o" "SHELL-42"
check "  QEMU exited" ended nonic

o=$tmp/twonics.out
check "twonics: no lease on eth0" contains "$o" "edgeprov-microos: no DHCP lease on eth0"
check "  DHCP falls through to eth1" contains "$o" "edgeprov-microos: network up eth1 10.0.2.15"
check "  agent exited 0" contains "$o" "edgeprov-microos: agent exited 0"
check "  QEMU exited" ended twonics

o=$tmp/installed.out
check "installed: the seed partition is found and mounted" contains "$o" "edgeprov-microos: seed on /dev/vda1"
check "  PCR 15 extended" contains "$o" "edgeprov-microos: PCR 15 extended: the TPM unseals nothing more in this boot"
check "  ... before the seed was mounted" test "$(grep -n 'PCR 15 extended' "$o" | cut -d: -f1)" -lt \
  "$(grep -n 'seed on /dev/vda1' "$o" | cut -d: -f1)"
check "  the agent sees PCR 15 extended once" grep -qix "FAKE-AGENT PCR15: $pcr15" "$o"
check "  the agent reports from the seed, nothing else" contains "$o" \
  "FAKE-AGENT ARGS: --installed --seed /run/seed/user-data --state-dir /var/lib/edgeprov-agent --plugins /usr/lib/edgeprov/plugins"
check "  the host name comes from meta-data" contains "$o" "FAKE-AGENT HOST: node-7.site.example"
check "  the OS stays up after the agent" contains "$o" "edgeprov-microos: installed OS running"
check "  no reboot, no FAILED" absent -E 'FAILED|Restarting|reboot: ' "$o"
o=$tmp/noseed.out
check "noseed: FAILED naming the missing partition" contains "$o" "edgeprov-microos: FAILED: installed: no partition named cidata (the NoCloud seed)"
check "  agent not started" lacks "$o" "agent starting"
check "  shell, then reboot" line "$o" "SHELL-42"

o=$tmp/notpm2.out
check "notpm2: FAILED: no tpm2 to extend PCR 15" contains "$o" \
  "edgeprov-microos: FAILED: installed: cannot extend PCR 15: no tpm2 (tpm2-tools) in this initramfs"
check "  the seed not mounted, no agent" absent -E 'seed on|agent starting' "$o"
check "  (no Secure Boot:) the shell" line "$o" "SHELL-42"

o=$tmp/secureboot.out
check "secureboot: the kernel booted under Secure Boot" contains "$o" "secureboot: Secure boot enabled"
check "  edgeprov.shell and edgeprov.debug ignored, saying why" contains "$o" \
  "edgeprov-microos: Secure Boot is on: ignoring edgeprov.shell edgeprov.debug (this signed Micro-OS can have the TPM unlock"
check "  ... once" test "$(grep -c 'ignoring edgeprov' "$o")" = 1
check "  the SecureBoot variable was read (not counted on for want of it)" lacks "$o" "counting Secure Boot as on"
check "  no debug trace" absent -E 'edgeprov-microos: debug:|^\+ ' "$o"
check "  no shell before the agent" lacks "$o" "starting a shell before the agent"
check "  the agent ran without --log-level debug" grep -qE '^FAKE-AGENT ARGS: .*--plugins /usr/lib/edgeprov/plugins$' "$o"
check "  FAILED marker" contains "$o" "edgeprov-microos: FAILED: agent exited 3"
after "$o" "edgeprov-microos: FAILED" >"$tmp/secureboot.tail"
check "  the log's tail" line "$tmp/secureboot.tail" "fake agent line 60"
check "  no rescue shell: halting, saying so" contains "$tmp/secureboot.tail" \
  "edgeprov-microos: no rescue shell under Secure Boot: halting"
check "  the node halted" contains "$tmp/secureboot.tail" "reboot: System halted"
check "  no shell ran" absent -E 'leaving it reboots|SHELL-42' "$o"

o=$tmp/sbinstalled.out
check "sbinstalled: the kernel booted under Secure Boot" contains "$o" "secureboot: Secure boot enabled"
check "  installed-mode words from an unsigned command line refused" contains "$o" \
  "installed mode (edgeprov.installed/root/roothash) under Secure Boot needs the signed unified kernel image's own command line"
check "  no partition looked at, no agent" absent -E 'verified root on|seed on|agent starting|no partition named' "$o"
check "  the node halted" contains "$o" "reboot: System halted"

o=$tmp/sbnvstub.out
check "sbnvstub: the kernel booted under Secure Boot" contains "$o" "secureboot: Secure boot enabled"
check "  a non-volatile StubInfo refused, saying so" contains "$o" \
  "under Secure Boot needs the signed unified kernel image's own command line; the StubInfo variable is non-volatile (not set by systemd's stub in this boot): refused"
check "  no partition looked at, no agent" absent -E 'verified root on|seed on|agent starting|no partition named' "$o"
check "  the node halted" contains "$o" "reboot: System halted"

o=$tmp/sbuki.out
check "sbuki: the unified kernel image booted under Secure Boot" contains "$o" "secureboot: Secure boot enabled"
check "  installed mode accepted (StubInfo set by the stub, volatile)" absent -E 'refused|FAILED' "$o"
check "  no TPM: nothing to lock" contains "$o" "edgeprov-microos: no TPM (/dev/tpmrm0): nothing to lock"
check "  the seed partition mounted" contains "$o" "edgeprov-microos: seed on /dev/vda2"
check "  the agent ran from the seed" contains "$o" "FAKE-AGENT ARGS: --installed --seed /run/seed/user-data"
check "  the OS stays up" contains "$o" "edgeprov-microos: installed OS running"

o=$tmp/efi.out
check "efi: the kernel booted without Secure Boot" contains "$o" "secureboot: Secure boot disabled"
check "  nothing ignored" lacks "$o" "ignoring edgeprov"
check "  debug on" contains "$o" "edgeprov-microos: debug: command line:"
check "  efivarfs loaded ahead, not again" absent -E 'insmod .*efivarfs.* failed' "$o"
check "  the SecureBoot variable was read" lacks "$o" "counting Secure Boot as on"
check "  FAILED, then the shell as before" line "$o" "SHELL-42"
check "  leaving it rebooted (QEMU exited)" ended efi

finish
