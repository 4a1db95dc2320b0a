#!/usr/bin/env bash
# docs/design/fde-proto/build-provisioner.sh: a stand-in for the Micro-OS (issue 20, parts B, C, D): Debian's
# kernel that `edgeprov artifacts build` uses, a busybox initramfs with /init =
# docs/design/fde-proto/provisioner-init, and only these extra programs with the shared libraries ldd finds
# plus the ones they dlopen(): cryptsetup, veritysetup, systemd-cryptenroll (+
# libcryptsetup-token-systemd-tpm2.so and libtss2-{esys,rc,mu,tctildr,tcti-device}), tpm2
# (tpm2-tools, for tpm2_pcrread only). Signed UKI on its own boot disk ($P/prov/boot.img).
# Needs build-debian.sh (layout.env) and build-verity.sh (verity.env) first.
set -euo pipefail
. "$(dirname "$0")/common.sh"
out=$P/prov; mkdir -p "$out"
kver=6.1.0-57-amd64
[ -n "${MICROOS_KVER:-}" ] && kver=$MICROOS_KVER
kernel=/boot/vmlinuz-$kver; mods=/lib/modules/$kver
r=$out/root; rm -rf "$r"; mkdir -p "$r"/{usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,etc,proc,sys,dev,run,tmp,mnt}
for l in bin sbin lib lib64; do ln -s usr/$l "$r/$l"; done
cp /bin/busybox "$r/usr/bin/busybox"
ma=/usr/lib/x86_64-linux-gnu
progs=(/usr/sbin/cryptsetup /usr/sbin/veritysetup /usr/bin/systemd-cryptenroll /usr/bin/tpm2)
dl=("$ma/cryptsetup/libcryptsetup-token-systemd-tpm2.so" "$ma/libtss2-esys.so.0" "$ma/libtss2-rc.so.0" "$ma/libtss2-mu.so.0"
  "$ma/libtss2-tctildr.so.0" "$ma/libtss2-tcti-device.so.0")
copy() { # copy a file at its /usr path, following symlinks (merged /usr)
  local src=$1 dst; dst=/usr${1#/usr}; mkdir -p "$r$(dirname "$dst")"; cp -L "$src" "$r$dst"
}
for f in "${progs[@]}" "${dl[@]}"; do
  copy "$f"
  ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r l; do copy "$l"; done
done
ln -sf tpm2 "$r/usr/bin/tpm2_pcrread"
ldconfig -r "$r" 2>/dev/null || true
# modules: virtio, device mapper (crypt, verity), erofs, ecb + xts (+ aesni-intel where the CPU has
# AES-NI); with dependencies from modules.dep. Nothing runs modprobe, so the kernel cannot load
# crypto algorithms on demand: xts(aes) needs ecb and xts loaded, erofs needs crc32c_generic
# before libcrc32c.
want=(kernel/drivers/virtio/virtio_pci.ko kernel/drivers/block/virtio_blk.ko kernel/drivers/md/dm-crypt.ko
  kernel/drivers/md/dm-verity.ko kernel/crypto/crc32c_generic.ko kernel/fs/erofs/erofs.ko kernel/crypto/ecb.ko
  kernel/crypto/xts.ko kernel/arch/x86/crypto/aesni-intel.ko)
: >"$r/etc/modules"
add_mod() {
  local m=$1 d
  grep -qx "$m" "$r/etc/modules" && return 0
  for d in $(grep "^$m:" "$mods/modules.dep" | cut -d: -f2); do add_mod "$d"; done
  mkdir -p "$r/lib/modules/$kver/$(dirname "$m")"; cp "$mods/$m" "$r/lib/modules/$kver/$m"
  echo "$m" >>"$r/etc/modules"
}
for m in "${want[@]}"; do add_mod "$m"; done
echo "$kver" >"$r/etc/kver"
cp "$P/debian/layout.env" "$r/etc/layout.env"
cp "$P/verity/verity.env" "$r/etc/verity.env"
install -m 0755 "$HERE/provisioner-init" "$r/init"
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | zstd -q -19 -T0 >"$out/initrd.img")
. "$P/verity/verity.env"
# the dm-verity root hash rides on the signed command line (part D)
make_uki "$kernel" "$out/initrd.img" "console=ttyS0,115200 quiet fde.roothash=$roothash" "$out/BOOTX64.EFI"
make_esp "$out/BOOTX64.EFI" "$out/esp.img" 64
rm -f "$out/boot.img"; truncate -s 67M "$out/boot.img"
sgdisk -a 2048 -n 1:2048:+64M -t 1:ef00 -c 1:ESP "$out/boot.img" >/dev/null || die sgdisk
dd if="$out/esp.img" of="$out/boot.img" bs=1M seek=1 conv=notrunc status=none
say "provisioner initramfs $(du -h "$out/initrd.img" | cut -f1) (zstd), tree $(du -sh "$r" | cut -f1), modules $(wc -l <"$r/etc/modules")"
