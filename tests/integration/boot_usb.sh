#!/usr/bin/env bash
# Integration test of the boot-usb plugin, loaded by a stand-in host (boot_usb_driver):
# autoexec.ipxe from curate, and USB images from write_media checked with independent tools —
# sgdisk for the GPT, fsck.vfat for the ESP, mtools to read its files back (nothing is
# mounted, no loop device is used).
# Usage: boot_usb.sh SOURCE_DIR BUILD_DIR DRIVER
set -u
src=$1 build=$2 driver=$3
. "$src/tests/integration/lib.sh"
scratch
plugin=$build/lib/edgeprov/plugins/boot-usb.so
export MTOOLS_SKIP_CHECK=1

curate() { "$driver" "$plugin" curate "$@"; }
media() { "$driver" "$plugin" media "$@"; }

# esp_of IMG OUT: copies partition 1 of IMG, as its GPT places it, to OUT.
part_field() { sgdisk -i 1 "$1" | sed -n "s/^$2: \([0-9]*\).*/\1/p"; }
esp_of() {
  local first last
  first=$(part_field "$1" 'First sector') last=$(part_field "$1" 'Last sector')
  [ -n "$first" ] && [ -n "$last" ] || return 1
  dd if="$1" of="$2" bs=1M iflag=skip_bytes,count_bytes skip=$((first * 512)) count=$(((last - first + 1) * 512)) status=none
}

# image_ok IMG ESP: the GPT verifies, partition 1 is an ESP starting at 1 MiB and a whole
# number of MiB (at least 64), and the FAT in it passes fsck.vfat cleanly; ESP gets its copy.
image_ok() {
  local out=$tmp/check.out first last
  sgdisk -v "$1" >"$out" 2>&1 && contains "$out" "No problems found" || return 1
  sgdisk -i 1 "$1" >"$out" 2>&1 && contains "$out" "Partition GUID code: C12A7328-F81F-11D2-BA4B-00A0C93EC93B" || return 1
  first=$(part_field "$1" 'First sector') last=$(part_field "$1" 'Last sector')
  [ "$first" = 2048 ] && [ $(((last - first + 1) % 2048)) = 0 ] && [ $((last - first + 1)) -ge $((64 * 2048)) ] ||
    { echo "---- ESP at sectors $first..$last"; return 1; }
  # fsck.vfat exits 0 on some findings (a boot sector backup that differs): it may print
  # nothing but its version and the summary.
  esp_of "$1" "$2" && fsck.vfat -n "$2" >"$out" 2>&1 && [ "$(grep -cv -e '^fsck.fat ' -e ': [0-9]* files, ' "$out")" = 0 ] ||
    { sed 's/^/    /' "$out"; return 1; }
}

# esp_file ESP PATH: the file's bytes on stdout (mcopy).
esp_file() { mcopy -n -i "$1" "::$2" -; }
same_file() { esp_file "$1" "$2" | cmp -s - "$3" || { echo "---- ::$2 differs from $3"; return 1; }; }
no_temp_left() { [ -z "$(find "$tmp" -maxdepth 1 -name '.*.img.*')" ] || { echo "---- left:"; ls -a "$tmp"; return 1; }; }

# ---- curate: autoexec.ipxe ----------------------------------------------------------------
art=$tmp/art
mkdir "$art" "$tmp/art2"
check "curate adds an artifact" run_status 0 "$tmp/curate.out" curate "$art"
check "... only autoexec.ipxe" [ "$(ls "$art")" = autoexec.ipxe ]
check "... the capability names the method usb" contains "$tmp/curate.out" "boot method usb: 0"
check "autoexec.ipxe is an iPXE script" [ "$(head -n 1 "$art/autoexec.ipxe")" = '#!ipxe' ]
check "... with 5 rounds by default" contains "$art/autoexec.ipxe" 'round ${edgeprov-round}/5'
check "... 5 s apart" contains "$art/autoexec.ipxe" 'sleep 5'
check "... and DHCP in the Micro-OS (no ip=)" lacks "$art/autoexec.ipxe" ' ip=${net'
check "... fetching kernel and initrd from the base URL" contains "$art/autoexec.ipxe" 'set edgeprov-base https://10.0.2.2:8443/boot'
check "curate with attempts=7 retry_delay_s=30 network=static" \
  run_status 0 "$tmp/curate2.out" curate "$tmp/art2" attempts=7 retry_delay_s=30 network=static
check "... 7 rounds" contains "$tmp/art2/autoexec.ipxe" 'round ${edgeprov-round}/7'
check "... 30 s apart" contains "$tmp/art2/autoexec.ipxe" 'sleep 30'
check "... the address iPXE got as ip=" contains "$tmp/art2/autoexec.ipxe" ' ip=${net${edgeprov-nic}/ip}::'

# Settings out of range or unknown: init fails naming the setting.
bad_setting() {
  run_status 1 "$tmp/bad.out" curate "$tmp" "$1" && contains "$tmp/bad.out" "setting $2:"
}
check "attempts=0 is refused" bad_setting attempts=0 attempts
check "attempts=101 is refused" bad_setting attempts=101 attempts
check "retry_delay_s=301 is refused" bad_setting retry_delay_s=301 retry_delay_s
check "network=bogus is refused" bad_setting network=bogus network
check "payload=floppy is refused" bad_setting payload=floppy payload

# ---- write_media, payload ipxe ------------------------------------------------------------
head -c 300001 /dev/urandom >"$art/ipxe.efi"
img=$tmp/usb.img esp=$tmp/esp.img
check "an iPXE image is written" run_status 0 "$tmp/media.out" media "$art" "$img" ""
check "... it is a valid GPT disk with a valid FAT ESP" image_ok "$img" "$esp"
check "... sized to 64 MiB + 2 MiB for the tables" [ "$(stat -c %s "$img")" = $((66 << 20)) ]
mdir -i "$esp" ::/EFI/BOOT >"$tmp/mdir.out" 2>&1
check "... \\EFI\\BOOT lists BOOTX64.EFI" contains "$tmp/mdir.out" "BOOTX64  EFI"
check "... BOOTX64.EFI is ipxe.efi, byte for byte" same_file "$esp" /EFI/BOOT/BOOTX64.EFI "$art/ipxe.efi"
check "... \\autoexec.ipxe is the script" same_file "$esp" /autoexec.ipxe "$art/autoexec.ipxe"
check "... \\EFI\\BOOT\\autoexec.ipxe too" same_file "$esp" /EFI/BOOT/autoexec.ipxe "$art/autoexec.ipxe"
check "... and starts with #!ipxe" [ "$(esp_file "$esp" /autoexec.ipxe | head -c 6)" = '#!ipxe' ]
check "... no temporary file is left" no_temp_left

# Reproducible: the same input gives the same bytes, at another time and under another name.
sleep 1
check "a second build succeeds" run_status 0 "$tmp/media2.out" media "$art" "$tmp/again.img" ipxe
check "... with the same sha256" [ "$(sha256sum <"$img")" = "$(sha256sum <"$tmp/again.img")" ]
printf 'x' >>"$tmp/art2/autoexec.ipxe"
cp "$art/ipxe.efi" "$tmp/art2/"
media "$tmp/art2" "$tmp/other.img" "" >/dev/null 2>&1
disk_guid() { sgdisk -p "$1" | sed -n 's/^Disk identifier (GUID): //p'; }
part_guid() { sgdisk -i 1 "$1" | sed -n 's/^Partition unique GUID: //p'; }
differ() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ]; }
check "other content gives another disk GUID" differ "$(disk_guid "$img")" "$(disk_guid "$tmp/other.img")"
check "... and another partition GUID" differ "$(part_guid "$img")" "$(part_guid "$tmp/other.img")"

# ---- missing input: nothing is written, an existing image stays --------------------------
mkdir "$tmp/art3"
cp "$art/autoexec.ipxe" "$tmp/art3/"
check "a missing ipxe.efi fails" run_status 1 "$tmp/missing.out" media "$tmp/art3" "$tmp/missing.img" ""
check "... naming the file" contains "$tmp/missing.out" "$tmp/art3/ipxe.efi is missing"
check "... and what to run" contains "$tmp/missing.out" "edgeprov artifacts build"
check "... leaving no image" [ ! -e "$tmp/missing.img" ]
before=$(sha256sum <"$img")
check "a failed build over an existing image fails" run_status 1 "$tmp/missing2.out" media "$tmp/art3" "$img" ipxe
check "... and leaves it as it was" [ "$(sha256sum <"$img")" = "$before" ]
check "... and no temporary file" no_temp_left
check "a missing artifact directory fails" run_status 1 "$tmp/nodir.out" media "$tmp/nowhere" "$tmp/nodir.img" ""
check "... naming it" contains "$tmp/nodir.out" "$tmp/nowhere"
check "an unknown payload fails" run_status 1 "$tmp/payload.out" media "$art" "$tmp/payload.img" floppy
check "... naming it" contains "$tmp/payload.out" "payload 'floppy'"

# ---- payload micro-os ---------------------------------------------------------------------
check "a micro-os.efi missing fails naming it" run_status 1 "$tmp/nouki.out" media "$art" "$tmp/uki.img" micro-os
check "..." contains "$tmp/nouki.out" "$art/micro-os.efi is missing"
head -c 2000003 /dev/urandom >"$art/micro-os.efi"
check "a Micro-OS image is written" run_status 0 "$tmp/uki.out" media "$art" "$tmp/uki.img" micro-os
check "... valid GPT and ESP" image_ok "$tmp/uki.img" "$tmp/uki-esp.img"
check "... BOOTX64.EFI is micro-os.efi" same_file "$tmp/uki-esp.img" /EFI/BOOT/BOOTX64.EFI "$art/micro-os.efi"
mdir -i "$tmp/uki-esp.img" ::/ >"$tmp/uki-mdir.out" 2>&1
check "... and has no autoexec.ipxe" lacks "$tmp/uki-mdir.out" autoexec
check "the payload setting is the default (payload=micro-os, request \"\")" \
  run_status 0 "$tmp/uki2.out" media "$art" "$tmp/uki2.img" "" payload=micro-os
check "... the same image" cmp -s "$tmp/uki.img" "$tmp/uki2.img"

# ---- a large payload: the ESP grows past 512 MiB and uses 4 KiB clusters --------------------
truncate -s 400M "$tmp/art3/micro-os.efi"
head -c 65536 /dev/urandom | dd of="$tmp/art3/micro-os.efi" conv=notrunc status=none
head -c 65536 /dev/urandom | dd of="$tmp/art3/micro-os.efi" bs=1M seek=399 conv=notrunc status=none
check "a 400 MiB Micro-OS image is written" run_status 0 "$tmp/big.out" media "$tmp/art3" "$tmp/big.img" micro-os
check "... valid GPT and ESP" image_ok "$tmp/big.img" "$tmp/big-esp.img"
check "... with 4 KiB clusters" sh -c "fsck.vfat -n -v '$tmp/big-esp.img' | grep -q '4096 bytes per cluster'"
check "... BOOTX64.EFI is micro-os.efi" same_file "$tmp/big-esp.img" /EFI/BOOT/BOOTX64.EFI "$tmp/art3/micro-os.efi"
rm -f "$tmp"/big*.img

finish
