#!/usr/bin/env bash
# microvisor-image.sh: the small immutable OS image of the end-to-end tests (os-microvisor
# provisioning), with the edge node agent baked in.
#
# Usage: tests/e2e/images/microvisor-image.sh ARTIFACT_DIR OUT_DIR [DB_KEY DB_CERT]
#
# ARTIFACT_DIR is what `edgeprov artifacts build` wrote: its kernel (vmlinuz) and initramfs
# (initrd.img: busybox, edgeprov-agent with its libraries, the kernel modules, micro-os/init).
# The image's operating system is that same kernel and initramfs as one unified kernel image
# with the command line "edgeprov.installed=cidata": /init then runs no provisioning; it
# mounts the NoCloud seed partition read-only, the agent takes its orchestrator, CA and
# credentials from the seed's user-data (edgeprov-agent --installed --seed) and reports the
# installed OS RUNNING, and the node stays up. The OS is the one signed file: nothing of it is
# writable, each boot starts from the same bytes (the root is in RAM). No cloud-init runs here:
# the agent reads the seed itself (the Debian image's scenarios run cloud-init).
#
# Writes OUT_DIR/microvisor.img.zst (zstd, raw GPT disk) and OUT_DIR/microvisor.img.zst.sha256
# (hex SHA-256 of the raw image, what image.stream checks):
#   1. ESP (FAT), \EFI\BOOT\BOOTX64.EFI: the unified kernel image (systemd-boot-efi's stub),
#      signed with DB_KEY/DB_CERT (sbsign) when given, so it boots under Secure Boot;
#   2. "cidata" (GPT partition name and ext4 label), 8 MiB, empty: the workflow's file.write
#      puts user-data (0600) and meta-data there.
# Takes seconds; not cached. Needs root only to read a 0600 key; tools from
# scripts/install-deps.sh.
set -euo pipefail

die() { echo "microvisor-image: error: $*" >&2; exit 1; }
[ $# -eq 2 ] || [ $# -eq 4 ] || { echo "usage: $0 ARTIFACT_DIR OUT_DIR [DB_KEY DB_CERT]" >&2; exit 2; }
art=$1 out_dir=$2 key=${3:-} cert=${4:-}
cmdline="console=ttyS0,115200 edgeprov.installed=cidata"
seed_mib=8
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
for f in "$art/vmlinuz" "$art/initrd.img" "$stub"; do [ -r "$f" ] || die "$f is missing"; done
for tool in objcopy mkfs.vfat mmd mcopy mkfs.ext4 sgdisk zstd sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done
if [ -n "$key" ]; then
  command -v sbsign >/dev/null || die "sbsign not found: run scripts/install-deps.sh"
  [ -r "$key" ] && [ -r "$cert" ] || die "cannot read the signing key $key or certificate $cert"
fi
mkdir -p "$out_dir"
work=$(mktemp -d "$out_dir/.microvisor.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The unified kernel image: sections after the stub's (as debian-image.sh lays them out).
printf '%s' "$cmdline" >"$work/cmdline"
printf 'ID=edgeprov-microvisor\nNAME="edgeprov Microvisor (e2e)"\nPRETTY_NAME="edgeprov Microvisor (e2e)"\n' >"$work/osrel"
osrel_vma=$((0x20000)) cmdline_vma=$((0x30000)) linux_vma=$((0x1000000))
initrd_vma=$(((linux_vma + $(stat -c %s "$art/vmlinuz") + 0xfffff) / 0x100000 * 0x100000))
objcopy \
  --add-section .osrel="$work/osrel" --change-section-vma ".osrel=$(printf '0x%x' $osrel_vma)" \
  --add-section .cmdline="$work/cmdline" --change-section-vma ".cmdline=$(printf '0x%x' $cmdline_vma)" \
  --add-section .linux="$art/vmlinuz" --change-section-vma ".linux=$(printf '0x%x' $linux_vma)" \
  --add-section .initrd="$art/initrd.img" --change-section-vma ".initrd=$(printf '0x%x' $initrd_vma)" \
  "$stub" "$work/BOOTX64.EFI" || die "objcopy could not assemble the unified kernel image"
if [ -n "$key" ]; then
  sbsign --key "$key" --cert "$cert" --output "$work/BOOTX64.signed" "$work/BOOTX64.EFI" >/dev/null 2>&1 ||
    die "sbsign could not sign the unified kernel image"
  mv "$work/BOOTX64.signed" "$work/BOOTX64.EFI"
fi

# ESP: the image plus 25 %, at least 16 MiB (FAT16 from there on).
uki_mib=$((($(stat -c %s "$work/BOOTX64.EFI") >> 20) + 1))
esp_mib=$((uki_mib + uki_mib / 4 + 2))
[ $esp_mib -ge 16 ] || esp_mib=16
truncate -s ${esp_mib}M "$work/esp.img"
mkfs.vfat -F 16 -n EFI -i 4d565a31 "$work/esp.img" >/dev/null || die "mkfs.vfat failed"
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT && mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI ||
  die "cannot write the unified kernel image to the ESP"

truncate -s ${seed_mib}M "$work/seed.img"
mkfs.ext4 -q -F -L cidata -m 0 -E root_owner=0:0 "$work/seed.img" >/dev/null || die "mkfs.ext4 failed"

img=$work/microvisor.img
total_mib=$((1 + esp_mib + seed_mib + 1))
truncate -s ${total_mib}M "$img"
sgdisk -a 2048 -n 1:0:+${esp_mib}M -t 1:ef00 -c 1:ESP -n 2:0:+${seed_mib}M -t 2:8300 -c 2:cidata "$img" >/dev/null ||
  die "sgdisk failed"
sgdisk -v "$img" | grep -q 'No problems found' || die "sgdisk -v finds problems in the partition table"
for part in 1:esp 2:seed; do
  start=$(sgdisk -i "${part%%:*}" "$img" | awk '/^First sector/ { print $3 }')
  dd if="$work/${part#*:}.img" of="$img" bs=512 seek="$start" conv=notrunc status=none
done
sha=$(sha256sum "$img" | cut -d' ' -f1)
zstd -q -T0 -9 -o "$work/microvisor.img.zst" "$img" || die "zstd failed"
echo "$sha" >"$work/microvisor.img.zst.sha256"
mv -f "$work/microvisor.img.zst" "$out_dir/microvisor.img.zst"
mv -f "$work/microvisor.img.zst.sha256" "$out_dir/microvisor.img.zst.sha256"
echo "microvisor-image: $total_mib MiB raw (ESP $esp_mib MiB, cidata $seed_mib MiB), $(($(stat -c %s "$out_dir/microvisor.img.zst") >> 10)) KiB zstd${key:+, signed}, sha256 $sha" >&2
echo "$out_dir/microvisor.img.zst"
echo "$out_dir/microvisor.img.zst.sha256"
