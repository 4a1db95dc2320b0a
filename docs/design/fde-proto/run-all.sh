#!/usr/bin/env bash
# docs/design/fde-proto/run-all.sh: the prototype's VM runs, one at a time (TCG, -smp 2 -m 1024, nice 19):
#   1 prov     the Micro-OS stand-in, TPM "A": writes the Debian image to target.img with the
#              root through dm-crypt, enrolls TPM2/PCR 7 + recovery key, dm-verity test, timings
#   2 deb-a    target.img with TPM "A": must unlock by itself and reach the marker unit
#   3 deb-b    a copy of target.img with a fresh TPM "B" (another machine): must NOT unlock
#   4 deb-nosb target.img, TPM "A", Secure Boot off (PCR 7 differs): must NOT unlock
#   5 recovery the recovery key printed in run 1 opens the header on this machine
#   deb-clear  the same Debian image without FDE (FDE=0 build-debian.sh): the boot-time baseline
# Steps can be picked: run-all.sh [prov] [deb-a] [deb-b] [deb-nosb] [recovery] [deb-clear]
set -uo pipefail
. "$(dirname "$0")/common.sh"
steps=("$@"); [ ${#steps[@]} -gt 0 ] || steps=(prov deb-a deb-b deb-nosb recovery)
. "$P/debian/layout.env"
res=$P/results.txt
for s in "${steps[@]}"; do
  case $s in
  prov)
    rm -rf "$P/tpm-A"; rm -f "$P/target.img"; truncate -s ${img_mib}M "$P/target.img"
    cp "$P/verity/disk.img" "$P/verity-test.img"
    cp "$P/debian/root.img" "$P/reenc.img"; truncate -s +32M "$P/reenc.img"
    vm prov "$P/tpm-A" 2400 'PROV: DONE' "$P/prov/boot.img" "$P/target.img" "$P/debian/debian-src.img" \
      "$P/verity-test.img" ${NO_REENC:+/dev/null} ${NO_REENC:-"$P/reenc.img"} | tee -a "$res"
    grep -a 'PROV:' "$P/prov.log" | tr -d '\r' | tee -a "$res" ;;
  deb-a)
    vm deb-a "$P/tpm-A" 400 'FDE-MARKER' "$P/target.img" | tee -a "$res"
    grep -aE 'tpm2-unlock|FDE-MARKER|Please unlock|cryptroot|EFI stub|Welcome' "$P/deb-a.log" | tr -d '\r' | tee -a "$res" ;;
  deb-b)
    rm -rf "$P/tpm-B"; cp --sparse=always "$P/target.img" "$P/target-copy.img"
    vm deb-b "$P/tpm-B" 120 'FDE-MARKER' "$P/target-copy.img" | tee -a "$res"
    grep -aE 'tpm2-unlock|FDE-MARKER|Please unlock|EFI stub' "$P/deb-b.log" | tr -d '\r' | tee -a "$res" ;;
  deb-nosb)
    SB_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd SB_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd \
      vm deb-nosb "$P/tpm-A" 120 'FDE-MARKER' "$P/target.img" | tee -a "$res"
    grep -aE 'tpm2-unlock|FDE-MARKER|Please unlock|EFI stub' "$P/deb-nosb.log" | tr -d '\r' | tee -a "$res" ;;
  deb-clear)
    cp --sparse=always "$P/debian-clear/debian-src.img" "$P/clear.img"
    vm deb-clear "$P/tpm-C" 400 'FDE-MARKER' "$P/clear.img" | tee -a "$res"
    grep -aE 'FDE-MARKER' "$P/deb-clear.log" | tr -d '\r' | tee -a "$res" ;;
  recovery)
    key=$(grep -a 'PROV: RECOVERY-KEY' "$P/prov.log" | tail -1 | awk '{ print $3 }' | tr -d '\r')
    dd if="$P/target.img" of="$P/luks-header.img" bs=512 skip=$root_start_sector count=32768 status=none
    if printf '%s' "$key" | cryptsetup open --test-passphrase --key-file - "$P/luks-header.img"; then
      echo "recovery: the recovery key opens the LUKS2 header (keyslot $(printf '%s' "$key" | cryptsetup open --test-passphrase -v --key-file - "$P/luks-header.img" 2>&1 | sed -n 's/.*Key slot \([0-9]*\) unlocked.*/\1/p'))" | tee -a "$res"
    else
      echo "recovery: FAILED" | tee -a "$res"
    fi
    printf 'wrong' | cryptsetup open --test-passphrase --key-file - "$P/luks-header.img" 2>&1 | sed 's/^/recovery: wrong key: /' | tee -a "$res" ;;
  *) die "unknown step $s" ;;
  esac
done
