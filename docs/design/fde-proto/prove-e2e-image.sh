#!/usr/bin/env bash
# docs/design/fde-proto/prove-e2e-image.sh: the e2e Debian image (tests/e2e/images/debian-image.sh)
# boots encrypted, without the product's encrypting writer (issue 20, part A on the real image).
# Usage: prove-e2e-image.sh DEBIAN_IMG_ZST [STEP...]    steps (default all, in this order):
#   prep    decompress the image, add a NoCloud seed (its runcmd prints the root's source),
#           sign its UKI with the snakeoil db key (the e2e image is unsigned; Secure Boot needs
#           it signed, PCR 7 the same db key as the enroller's), the layout; the enrollment
#           stand-in (Debian's 6.1 kernel, busybox, cryptsetup, systemd-cryptenroll, tpm2 from
#           this host) with /init = enroll-init
#   enroll  the stand-in, TPM "A": GPT + ESP to target.img, luksFormat the root partition
#           (recovery key, keyslot 0), the image's file system into /dev/mapper/cryptroot,
#           systemd-cryptenroll --tpm2-pcrs=7 (keyslot 1 + token 0)
#   fde-a   a copy of target.img (never booted itself) with TPM "A": must unlock by itself,
#           start systemd and cloud-init; the seed's runcmd prints root=/dev/mapper/cryptroot
#   fde-b   a copy of target.img with a fresh TPM "B" (another machine): must stop in the
#           initramfs with edgeprov-fde's line, and systemd must never start
#   clear   the signed image written clear (what image.stream writes today), TPM "C": baseline
# Secure Boot OVMF (snakeoil), swtpm, TCG, one VM at a time, nice 19 (common.sh: vm).
# Files in FDE_PROTO_DIR (default /var/tmp/deb-fde/proof); summary in results.txt there.
set -uo pipefail
export FDE_PROTO_DIR=${FDE_PROTO_DIR:-/var/tmp/deb-fde/proof}
. "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || die "usage: $0 DEBIAN_IMG_ZST [prep] [enroll] [fde-a] [fde-b] [clear]"
src_zst=$1; shift
steps=("$@"); [ ${#steps[@]} -gt 0 ] || steps=(prep enroll fde-a fde-b clear)
res=$P/results.txt
# shellcheck disable=SC2034 # read by common.sh's vm
VM_MARKS=('EFI stub: UEFI Secure Boot is enabled' 'edgeprov-fde: ' 'Welcome to Debian' "running 'init-local'"
  "running 'modules:final'|finished at")

prep() {
  local img=$P/src.img esp_off uki=$P/uki
  zstd -q -dc "$src_zst" >"$img" || die "cannot decompress $src_zst"
  root_start=$(sgdisk -i 2 "$img" | awk '/^First sector/ { print $3 }')
  root_end=$(sgdisk -i 2 "$img" | awk '/^Last sector/ { print $3 }')
  esp_off=$(( $(sgdisk -i 1 "$img" | awk '/^First sector/ { print $3 }') * 512 ))
  # the file system's size from its superblock (the partition is 16 MiB larger)
  local fs_bytes
  dd if="$img" of="$P/sb.bin" bs=1M skip=$((root_start / 2048)) count=4 status=none
  fs_bytes=$(dumpe2fs -h "$P/sb.bin" 2>/dev/null |
    awk -F: '/^Block count/ { c = $2 } /^Block size/ { b = $2 } END { print c * b }')
  fs_mib=$((fs_bytes >> 20))
  [ $(( (root_end + 1 - root_start) * 512 - fs_bytes )) -eq $((16 << 20)) ] || die "the root partition is not the file system + 16 MiB"
  printf 'root_start=%s\nroot_end=%s\nfs_mib=%s\n' "$root_start" "$root_end" "$fs_mib" >"$P/layout.env"
  # a NoCloud seed whose runcmd prints the root's source and its dm table on the console (what
  # the agent's status reads from the mount table), written with debugfs before the enrollment
  local seed=$P/seed
  mkdir -p "$seed"
  printf 'instance-id: fde-proof\nlocal-hostname: debian\n' >"$seed/meta-data"
  cat >"$seed/user-data" <<'UD'
#cloud-config
runcmd:
  - echo "FDE-CHECK root=$(findmnt -no SOURCE /) dm=$(dmsetup table cryptroot 2>/dev/null | cut -d' ' -f3,4) uptime=$(cut -d' ' -f1 /proc/uptime)" >/dev/console
UD
  dd if="$img" of="$P/fs.img" bs=1M skip=$((root_start / 2048)) count="$fs_mib" status=none
  debugfs -w -f - "$P/fs.img" >/dev/null 2>&1 <<DBG
mkdir /var/lib/cloud
mkdir /var/lib/cloud/seed
mkdir /var/lib/cloud/seed/nocloud
write $seed/meta-data /var/lib/cloud/seed/nocloud/meta-data
write $seed/user-data /var/lib/cloud/seed/nocloud/user-data
DBG
  debugfs -R 'ls /var/lib/cloud/seed/nocloud' "$P/fs.img" 2>/dev/null | grep -q user-data || die "the seed is not in the file system"
  dd if="$P/fs.img" of="$img" bs=1M seek=$((root_start / 2048)) conv=notrunc status=none; rm -f "$P/fs.img"
  db_keys
  export MTOOLS_SKIP_CHECK=1
  mcopy -o -i "$img@@$esp_off" ::/EFI/BOOT/BOOTX64.EFI "$uki.efi" || die "mcopy"
  sbsign --key "$P/sb/db.key" --cert "$P/sb/db.crt" --output "$uki.signed.efi" "$uki.efi" >/dev/null 2>&1 || die sbsign
  mcopy -o -i "$img@@$esp_off" "$uki.signed.efi" ::/EFI/BOOT/BOOTX64.EFI || die "mcopy back"
  say "image: $(cat "$P/layout.env" | tr '\n' ' ')"
  # the enrollment stand-in (build-provisioner.sh, reduced)
  local kver=6.1.0-57-amd64 r=$P/enroll/root ma=/usr/lib/x86_64-linux-gnu f l m d
  local mods=/lib/modules/$kver
  rm -rf "$P/enroll"; mkdir -p "$r"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,proc,sys,dev,run,tmp}
  for l in bin sbin lib lib64; do ln -s usr/$l "$r/$l"; done
  cp /bin/busybox "$r/usr/bin/busybox"
  copy() { local dst=/usr${1#/usr}; mkdir -p "$r$(dirname "$dst")"; cp -L "$1" "$r$dst"; }
  for f in /usr/sbin/cryptsetup /usr/bin/systemd-cryptenroll /usr/bin/tpm2 "$ma/cryptsetup/libcryptsetup-token-systemd-tpm2.so" \
      "$ma/libtss2-esys.so.0" "$ma/libtss2-rc.so.0" "$ma/libtss2-mu.so.0" "$ma/libtss2-tctildr.so.0" "$ma/libtss2-tcti-device.so.0"; do
    copy "$f"
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r l; do copy "$l"; done
  done
  ldconfig -r "$r" 2>/dev/null || true
  : >"$r/etc/modules"
  add_mod() {
    local m=$1 d
    grep -qx "$m" "$r/etc/modules" && return 0
    for d in $(grep "^$m:" "$mods/modules.dep" | cut -d: -f2); do add_mod "$d"; done
    mkdir -p "$r/lib/modules/$kver/$(dirname "$m")"; cp "$mods/$m" "$r/lib/modules/$kver/$m"
    echo "$m" >>"$r/etc/modules"
  }
  for m in kernel/drivers/virtio/virtio_pci.ko kernel/drivers/block/virtio_blk.ko kernel/drivers/md/dm-crypt.ko \
      kernel/crypto/ecb.ko kernel/crypto/xts.ko kernel/arch/x86/crypto/aesni-intel.ko; do add_mod "$m"; done
  echo "$kver" >"$r/etc/kver"; cp "$P/layout.env" "$r/etc/layout.env"
  install -m 0755 "$HERE/enroll-init" "$r/init"
  (cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | zstd -q -19 -T0 >"$P/enroll/initrd.img")
  make_uki "/boot/vmlinuz-$kver" "$P/enroll/initrd.img" "console=ttyS0,115200 quiet" "$P/enroll/BOOTX64.EFI"
  make_esp "$P/enroll/BOOTX64.EFI" "$P/enroll/esp.img" 64
  truncate -s 67M "$P/enroll/boot.img"
  sgdisk -a 2048 -n 1:2048:+64M -t 1:ef00 -c 1:ESP "$P/enroll/boot.img" >/dev/null || die sgdisk
  dd if="$P/enroll/esp.img" of="$P/enroll/boot.img" bs=1M seek=1 conv=notrunc status=none
}

for s in "${steps[@]}"; do
  echo "== $s $(date +%T)" | tee -a "$res"
  case $s in
  prep) prep ;;
  enroll)
    rm -rf "$P/tpm-A"; rm -f "$P/target.img"; truncate -s "$(stat -c %s "$P/src.img")" "$P/target.img"
    vm enroll "$P/tpm-A" 600 'PROV: DONE' "$P/enroll/boot.img" "$P/target.img" "$P/src.img" | tee -a "$res"
    grep -a 'PROV:' "$P/enroll.log" | grep -v RECOVERY-KEY | tr -d '\r' | tee -a "$res"
    # recovery key on this host: it opens the LUKS2 header (keyslot 0)
    . "$P/layout.env"
    key=$(grep -a 'PROV: RECOVERY-KEY' "$P/enroll.log" | tail -1 | awk '{ print $3 }' | tr -d '\r')
    dd if="$P/target.img" of="$P/luks-header.img" bs=512 skip="$root_start" count=32768 status=none
    printf '%s' "$key" | cryptsetup open --test-passphrase -v --key-file - "$P/luks-header.img" 2>&1 | sed 's/^/recovery key: /' | tee -a "$res"
    cryptsetup luksDump "$P/luks-header.img" | grep -E '^\s+[0-9]+: (luks2|systemd-tpm2)|tpm2-hash-pcrs|Label' | sed 's/^/dump: /' | tee -a "$res" ;;
  fde-a)
    cp --sparse=always "$P/target.img" "$P/fde-a.img"   # the enrolled disk, never booted: a first boot each time, as clear
    vm fde-a "$P/tpm-A" 400 "running 'modules:final'|finished at" "$P/fde-a.img" | tee -a "$res"
    grep -aE 'edgeprov-fde|Welcome|EFI stub: UEFI|Cloud-init v|FDE-CHECK' "$P/fde-a.log" | tr -d '\r' | tee -a "$res" ;;
  fde-b)
    rm -rf "$P/tpm-B"; cp --sparse=always "$P/target.img" "$P/target-copy.img"
    vm fde-b "$P/tpm-B" 150 'Welcome to Debian' "$P/target-copy.img" | tee -a "$res"
    grep -aE 'edgeprov-fde|Halting|Welcome|EFI stub: UEFI|System halted|Cloud-init v' "$P/fde-b.log" | tr -d '\r' | tee -a "$res" ;;
  clear)
    cp --sparse=always "$P/src.img" "$P/clear.img"; rm -rf "$P/tpm-C"
    vm clear "$P/tpm-C" 400 "running 'modules:final'|finished at" "$P/clear.img" | tee -a "$res"
    grep -aE 'edgeprov-fde|Welcome|EFI stub: UEFI|Cloud-init v|FDE-CHECK' "$P/clear.log" | tr -d '\r' | tee -a "$res" ;;
  *) die "unknown step $s" ;;
  esac
done
