#!/usr/bin/env bash
# docs/design/fde-proto/build-debian.sh: the Debian bookworm image of debian-image.sh, FDE-ready (issue 20, part A).
# Differences from tests/e2e/images/debian-image.sh:
#   + packages cryptsetup-initramfs (cryptsetup, dmsetup, busybox in the initramfs, the
#     cryptroot scripts) and libtss2-esys-3.0.2-0 libtss2-rc0 libtss2-mu0 (dlopen()ed by
#     systemd's LUKS2 token plugin libcryptsetup-token-systemd-tpm2.so, shipped by systemd)
#   + /etc/crypttab "cryptroot PARTLABEL=cloudimg-rootfs none luks,discard,initramfs"
#   + initramfs-tools hook copying the token plugin and the tss2 libraries, and a local-top
#     script that runs `cryptsetup open --token-only --token-type systemd-tpm2` before
#     Debian's cryptroot (which then finds the mapping and does nothing; when the TPM refuses,
#     cryptroot asks for the passphrase = the recovery key on the console)
#   + command line root=/dev/mapper/cryptroot; fstab /dev/mapper/cryptroot
#   - no agent; cloud-init disabled (no seed here); a marker unit prints the root's device,
#     PCR 7 and the boot time on the console.
# Outputs in $P/debian: root.img (clear ext4, the "image payload"), BOOTX64.EFI (signed UKI),
# debian-src.img (the raw disk image: GPT, ESP, partition cloudimg-rootfs = ext4 size + 16 MiB
# for the LUKS2 header), layout.env (sector offsets).
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$REPO/scripts/apt-mirror.sh"
# FDE=0: the same image without encryption (the baseline of the boot-time comparison), in $P/debian-clear
fde=${FDE:-1}
out=$P/debian; [ "$fde" = 1 ] || out=$P/debian-clear
mkdir -p "$out" "$P/cache"
cache=$P/cache/debian-fde-rootfs.tar.zst
packages=(systemd-sysv udev dbus kmod linux-image-cloud-amd64 initramfs-tools zstd
  cloud-init ifupdown isc-dhcp-client isc-dhcp-common iproute2 netbase python3-cffi-backend
  ca-certificates openssl e2fsprogs
  cryptsetup-initramfs libtss2-esys-3.0.2-0 libtss2-rc0 libtss2-mu0)
work=$out/work
root=$work/root
if [ ! -s "$cache" ]; then
  rm -rf --one-file-system "$work"; mkdir -p "$work"
  mirror=$(ep_apt_mirror bookworm)
  say "debootstrap (${#packages[@]} packages) from $mirror"
  inc=$(IFS=,; echo "${packages[*]}")
  debootstrap --variant=minbase --arch=amd64 --components=main --include="$inc" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -30 "$work/debootstrap.log"; die debootstrap; }
  for m in $(awk -v w="$root/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r); do umount -l "$m"; done
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*
  tar --numeric-owner --xattrs --acls -C "$root" -cf - . | zstd -q -T0 -3 -o "$cache"
else
  rm -rf --one-file-system "$work"; mkdir -p "$root"
  zstd -q -dc "$cache" | tar --numeric-owner --xattrs --acls -C "$root" -xf -
fi

# --- FDE configuration of the installed OS ------------------------------------------------------
cmdline="root=/dev/mapper/cryptroot ro console=ttyS0,115200 loglevel=5 systemd.show_status=1 net.ifnames=0"
if [ "$fde" = 1 ]; then
  echo '/dev/mapper/cryptroot / ext4 defaults,errors=remount-ro 0 1' >"$root/etc/fstab"
  echo 'cryptroot PARTLABEL=cloudimg-rootfs none luks,discard,initramfs' >"$root/etc/crypttab"
  # include cryptsetup even though the build chroot's root is not encrypted
  echo 'CRYPTSETUP=y' >>"$root/etc/cryptsetup-initramfs/conf-hook"
  printf 'MODULES=list\nCOMPRESS=zstd\n' >"$root/etc/initramfs-tools/conf.d/edgeprov.conf"
  printf '%s\n' virtio_pci virtio_blk virtio_scsi sd_mod ahci nvme ext4 crc32c_generic \
    dm_mod dm_crypt xts aesni_intel aes_generic >"$root/etc/initramfs-tools/modules"
  install -m 0755 "$HERE/initramfs/hooks/tpm2-token" "$root/etc/initramfs-tools/hooks/tpm2-token"
  install -m 0755 "$HERE/initramfs/local-top/tpm2-unlock" "$root/etc/initramfs-tools/scripts/local-top/tpm2-unlock"
  chroot "$root" update-initramfs -c -k all >"$work/initramfs.log" 2>&1 || { cat "$work/initramfs.log"; die update-initramfs; }
  grep -i "warn\|error" "$work/initramfs.log" >&2 || true
else
  cmdline="root=PARTLABEL=cloudimg-rootfs ro console=ttyS0,115200 loglevel=5 systemd.show_status=1 net.ifnames=0"
  echo 'LABEL=cloudimg-rootfs / ext4 defaults,errors=remount-ro 0 1' >"$root/etc/fstab"
  printf 'MODULES=list\nCOMPRESS=zstd\n' >"$root/etc/initramfs-tools/conf.d/edgeprov.conf"
  printf '%s\n' virtio_pci virtio_blk virtio_scsi sd_mod ahci nvme ext4 crc32c_generic >"$root/etc/initramfs-tools/modules"
  chroot "$root" update-initramfs -c -k all >"$work/initramfs.log" 2>&1 || { cat "$work/initramfs.log"; die update-initramfs; }
fi

# --- the rest as debian-image.sh, minus the agent -------------------------------------------------
touch "$root/etc/cloud/cloud-init.disabled"
echo debian >"$root/etc/hostname"
: >"$root/etc/machine-id"
echo 'root:fde' | chroot "$root" chpasswd
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer getty@tty1.service systemd-pstore.service; do
  chroot "$root" systemctl mask "$u" >/dev/null 2>&1 || true
done
cat >"$root/etc/systemd/system/fde-marker.service" <<'UNIT'
[Unit]
Description=FDE prototype marker
After=local-fs.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "FDE-MARKER root=$(findmnt -no SOURCE /) type=$(dmsetup table cryptroot 2>/dev/null | cut -d" " -f3,4) pcr7=$(cat /sys/class/tpm/tpm0/pcr-sha256/7) uptime=$(cut -d" " -f1 /proc/uptime)" >/dev/console'
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable fde-marker.service >/dev/null 2>&1

kernel=$(ls -1 "$root"/boot/vmlinuz-* | sort -V | tail -n1); kver=${kernel##*/vmlinuz-}
cp "$kernel" "$out/vmlinuz"; cp "$root/boot/initrd.img-$kver" "$out/initrd.img"
zstd -q -dc "$out/initrd.img" >/dev/null 2>&1 || true
rm -f "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* "$root"/vmlinuz* "$root"/initrd.img*
make_uki "$out/vmlinuz" "$out/initrd.img" "$cmdline" "$out/BOOTX64.EFI"
make_esp "$out/BOOTX64.EFI" "$out/esp.img" 64

used_kib=$(du -s -k --apparent-size "$root" | cut -f1)
nfiles=$(find "$root" -xdev | wc -l); inodes=$((nfiles + nfiles / 4 + 8192))
root_mib=$(( used_kib / 1024 * 11 / 10 + inodes * 256 / 1048576 + 16 + 64 ))
rm -f "$out/root.img"; truncate -s ${root_mib}M "$out/root.img"
mkfs.ext4 -q -F -b 4096 -L cloudimg-rootfs -N "$inodes" -m 0 -E root_owner=0:0 -d "$root" "$out/root.img"
luks_mib=16
part_mib=$((root_mib + luks_mib))
img=$out/debian-src.img; rm -f "$img"
truncate -s $((1 + 64 + part_mib + 2))M "$img"
sgdisk -a 2048 -n 1:2048:+64M -t 1:ef00 -c 1:"EFI System Partition" -n 2:0:+${part_mib}M -t 2:8300 -c 2:cloudimg-rootfs "$img" >/dev/null || die sgdisk
esp_start=$(sgdisk -i 1 "$img" | awk '/^First sector/ { print $3 }')
root_start=$(sgdisk -i 2 "$img" | awk '/^First sector/ { print $3 }')
dd if="$out/esp.img" of="$img" bs=512 seek="$esp_start" conv=notrunc,sparse status=none
dd if="$out/root.img" of="$img" bs=1M seek=$((root_start / 2048)) conv=notrunc,sparse status=none
cat >"$out/layout.env" <<ENV
kver=$kver
img_mib=$((1 + 64 + part_mib + 2))
root_start_sector=$root_start
root_fs_mib=$root_mib
root_part_mib=$part_mib
ENV
cat "$out/layout.env" >&2
rm -rf --one-file-system "$work"
say "debian: $(ls -la "$img")"
