#!/usr/bin/env bash
# microvisor-image.sh: the small immutable OS image of the end-to-end tests (os-microvisor
# provisioning), with the edge node agent baked in: a verified root (dm-verity) and a data
# partition that full-disk encryption can encrypt.
#
# Usage: tests/e2e/images/microvisor-image.sh ARTIFACT_DIR OUT_DIR [DB_KEY DB_CERT]
#
# ARTIFACT_DIR is what `edgeprov artifacts build` wrote: its kernel (vmlinuz) and initramfs
# (initrd.img: busybox, edgeprov-agent with its libraries, the kernel modules, veritysetup and
# cryptsetup, micro-os/init). The image boots that same kernel and initramfs as one unified
# kernel image whose command line says
#   edgeprov.installed=data edgeprov.root=root edgeprov.roothash=<hex>
# so /init runs no provisioning: it opens the partition "root" with dm-verity against the root
# hash (the command line is part of the signed image, so the hash cannot be swapped), mounts its
# EROFS read-only, mounts the partition "data" (LUKS2 opened with the TPM, or clear) on its /data,
# and runs the agent FROM the verified root (chroot): the agent takes its orchestrator, CA and
# credentials from the NoCloud seed /data/user-data (edgeprov-agent --installed --seed), reports
# the installed OS RUNNING, and the node stays up. The running code is either the signed UKI or
# bytes dm-verity checked against the signed root hash; nothing of it is writable. No cloud-init
# runs here: the agent reads the seed itself (the Debian image's scenarios run cloud-init).
#
# Writes OUT_DIR/microvisor.img.zst (zstd, raw GPT disk), OUT_DIR/microvisor.img.zst.sha256 (hex
# SHA-256 of the raw image, what image.stream checks) and OUT_DIR/microvisor.img.verity.env:
#   1. ESP (FAT), \EFI\BOOT\BOOTX64.EFI: the unified kernel image (systemd-boot-efi's stub),
#      signed with DB_KEY/DB_CERT (sbsign) when given, so it boots under Secure Boot;
#   2. "root" (GPT partition name): the initramfs's tree (plus /data, /etc/os-release, busybox's
#      applet links) as EROFS (uncompressed), padded to 4 KiB, then its dm-verity hash tree
#      (veritysetup format --hash-offset = the EROFS size; /init reads that size from the EROFS
#      superblock, and the root hash covers the whole tree, so nothing there can be swapped);
#   3. "data" (GPT partition name and ext4 label), an empty ext4 of DATA_MIB (16) with 16 MiB
#      spare after it (the LUKS2 header's room when image.stream encrypts it): the workflow's
#      file.write puts the NoCloud seed, user-data (0600) and meta-data, at its top.
# microvisor.img.verity.env (shell variables, for tests): ROOT_HASH, ROOT_OFFSET (the root
# partition's byte offset on the disk), HASH_OFFSET (the hash tree's, in the partition),
# AGENT_OFFSET (the disk byte offset of a byte inside the agent binary's first block, which every
# start of the agent reads: flip it and dm-verity stops the node).
# Takes seconds; not cached. Needs root only to read a 0600 key; tools from
# scripts/install-deps.sh (and cryptsetup-bin, erofs-utils, cpio).
set -euo pipefail

die() { echo "microvisor-image: error: $*" >&2; exit 1; }
[ $# -eq 2 ] || [ $# -eq 4 ] || { echo "usage: $0 ARTIFACT_DIR OUT_DIR [DB_KEY DB_CERT]" >&2; exit 2; }
art=$1 out_dir=$2 key=${3:-} cert=${4:-}
data_mib=16 luks_spare_mib=16
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
for f in "$art/vmlinuz" "$art/initrd.img" "$stub"; do [ -r "$f" ] || die "$f is missing"; done
for tool in objcopy mkfs.vfat mmd mcopy mkfs.ext4 sgdisk zstd sha256sum cpio od cmp; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done
for tool in mkfs.erofs dump.erofs veritysetup; do
  command -v "$tool" >/dev/null || die "$tool not found: install erofs-utils and cryptsetup-bin"
done
if [ -n "$key" ]; then
  command -v sbsign >/dev/null || die "sbsign not found: run scripts/install-deps.sh"
  [ -r "$key" ] && [ -r "$cert" ] || die "cannot read the signing key $key or certificate $cert"
fi
mkdir -p "$out_dir"
work=$(mktemp -d "$out_dir/.microvisor.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---- the verified root: the initramfs's tree as EROFS, its dm-verity hash tree after it ----
tree=$work/tree
mkdir "$tree"
# /dev/console is left out (devtmpfs is mounted over /dev; a device node needs root to make).
zstd -dc "$art/initrd.img" | (cd "$tree" && cpio -idm --quiet --no-absolute-filenames --nonmatching 'dev/console') ||
  die "cannot unpack $art/initrd.img"
[ -x "$tree/usr/bin/edgeprov-agent" ] && [ -x "$tree/usr/bin/busybox" ] || die "$art/initrd.img has no agent or busybox"
for tool in veritysetup cryptsetup; do
  [ -x "$tree/usr/sbin/$tool" ] || die "$art/initrd.img has no /usr/sbin/$tool: the installed image cannot open its disk"
done
# What the installed OS needs beyond the initramfs: the data partition's mount point, its
# identity (the marker /init reads to prove the mount), busybox's commands as links, and
# /etc/resolv.conf pointing at the initramfs's (the DHCP client rewrites it there).
mkdir -p "$tree/data"
printf 'ID=edgeprov-microvisor\nNAME="edgeprov Microvisor (e2e)"\nPRETTY_NAME="edgeprov Microvisor (e2e)"\n' >"$tree/etc/os-release"
cp "$tree/etc/os-release" "$work/osrel"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$tree/etc/hosts"
ln -s /run/initramfs-etc/resolv.conf "$tree/etc/resolv.conf"
"$tree/usr/bin/busybox" --list-full | while read -r applet; do
  [ -e "$tree/$applet" ] || [ -L "$tree/$applet" ] || ln -s /usr/bin/busybox "$tree/$applet"
done
mkfs.erofs --quiet --all-root "$work/root.img" "$tree" >/dev/null || die "mkfs.erofs failed"
erofs_bytes=$(stat -c %s "$work/root.img")
hash_offset=$(((erofs_bytes + 4095) / 4096 * 4096))
truncate -s "$hash_offset" "$work/root.img"
# /init takes the hash tree's offset from the superblock's block count (4 bytes at 1060).
[ $(($(od -An -tu4 -j 1060 -N 4 "$work/root.img"))) -eq $((hash_offset / 4096)) ] ||
  die "the EROFS superblock's block count is not the image's size in 4 KiB blocks"
verity_out=$(veritysetup format --hash-offset="$hash_offset" "$work/root.img" "$work/root.img") ||
  die "veritysetup format failed"
root_hash=$(awk '/^Root hash:/ { print $3 }' <<<"$verity_out")
[[ $root_hash =~ ^[0-9a-f]{64}$ ]] || die "veritysetup printed no root hash"
root_mib=$((($(stat -c %s "$work/root.img") + 1048575) >> 20))
# The agent's first block (read at every exec): where mkfs.erofs put it (dump.erofs), checked
# against the agent's own bytes.
agent_phys=$(dump.erofs --path=/usr/bin/edgeprov-agent -e "$work/root.img" |
  sed -n 's/^ *0: *0\.\. *[0-9]* *| *[0-9]* *: *\([0-9][0-9]*\)\.\..*/\1/p')
[ -n "$agent_phys" ] && cmp -s -n 4096 "$tree/usr/bin/edgeprov-agent" <(tail -c +$((agent_phys + 1)) "$work/root.img") ||
  die "cannot locate the agent's first block in the EROFS image"

# ---- the unified kernel image: sections after the stub's (as debian-image.sh lays them out) ----
cmdline="console=ttyS0,115200 edgeprov.installed=data edgeprov.root=root edgeprov.roothash=$root_hash"
printf '%s' "$cmdline" >"$work/cmdline"
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

# ---- data: ext4 at the partition's start, 16 MiB spare after it ----
truncate -s ${data_mib}M "$work/data.img"
mkfs.ext4 -q -F -L data -m 0 -E root_owner=0:0 "$work/data.img" >/dev/null || die "mkfs.ext4 failed"

img=$work/microvisor.img
data_part_mib=$((data_mib + luks_spare_mib))
total_mib=$((1 + esp_mib + root_mib + data_part_mib + 1))
truncate -s ${total_mib}M "$img"
sgdisk -a 2048 -n 1:0:+${esp_mib}M -t 1:ef00 -c 1:ESP -n 2:0:+${root_mib}M -t 2:8304 -c 2:root \
  -n 3:0:+${data_part_mib}M -t 3:8300 -c 3:data "$img" >/dev/null || die "sgdisk failed"
sgdisk -v "$img" | grep -q 'No problems found' || die "sgdisk -v finds problems in the partition table"
for part in 1:esp 2:root 3:data; do
  start=$(sgdisk -i "${part%%:*}" "$img" | awk '/^First sector/ { print $3 }')
  dd if="$work/${part#*:}.img" of="$img" bs=512 seek="$start" conv=notrunc status=none
  [ "${part#*:}" != root ] || root_offset=$((start * 512))
done
sha=$(sha256sum "$img" | cut -d' ' -f1)
zstd -q -T0 -9 -o "$work/microvisor.img.zst" "$img" || die "zstd failed"
echo "$sha" >"$work/microvisor.img.zst.sha256"
printf 'ROOT_HASH=%s\nROOT_OFFSET=%s\nHASH_OFFSET=%s\nAGENT_OFFSET=%s\n' "$root_hash" "$root_offset" "$hash_offset" \
  $((root_offset + agent_phys + 256)) >"$work/microvisor.img.verity.env"
for f in microvisor.img.zst microvisor.img.zst.sha256 microvisor.img.verity.env; do mv -f "$work/$f" "$out_dir/$f"; done
echo "microvisor-image: $total_mib MiB raw (ESP $esp_mib MiB, root $root_mib MiB: EROFS + dm-verity, data $data_part_mib MiB)," \
  "$(($(stat -c %s "$out_dir/microvisor.img.zst") >> 10)) KiB zstd${key:+, signed}, root hash $root_hash, sha256 $sha" >&2
echo "$out_dir/microvisor.img.zst"
echo "$out_dir/microvisor.img.zst.sha256"
