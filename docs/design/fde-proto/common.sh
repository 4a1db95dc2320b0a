# shellcheck shell=bash
# docs/design/fde-proto/common.sh: shared settings of the FDE / dm-verity feasibility prototype (issue 20).
# Sourced by the other docs/design/fde-proto/ scripts. Big files live in $P (not in git).
P=${FDE_PROTO_DIR:-/var/tmp/fde-proto}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
STUB=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
SB_CODE=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
SB_VARS=/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd
SNAKEOIL_KEY=/usr/share/ovmf/PkKek-1-snakeoil.key
SNAKEOIL_CERT=/usr/share/ovmf/PkKek-1-snakeoil.pem
mkdir -p "$P"

die() { echo "fde-proto: error: $*" >&2; exit 1; }
say() { echo "fde-proto: $*" >&2; }

# db_keys: the snakeoil db key (unencrypted for sbsign) in $P/sb
db_keys() {
  mkdir -p "$P/sb"
  [ -s "$P/sb/db.key" ] || openssl pkey -in "$SNAKEOIL_KEY" -passin pass:snakeoil -out "$P/sb/db.key"
  cp "$SNAKEOIL_CERT" "$P/sb/db.crt"
}

# make_uki KERNEL INITRD CMDLINE OUT: a unified kernel image (the layout of
# tests/e2e/images/*.sh), signed with the snakeoil db key.
make_uki() {
  local kernel=$1 initrd=$2 cmdline=$3 out=$4 t
  t=$(mktemp -d)
  db_keys
  printf '%s' "$cmdline" >"$t/cmdline"
  printf 'ID=fdeproto\nNAME="fde proto"\nPRETTY_NAME="fde proto"\n' >"$t/osrel"
  local linux_vma=$((0x1000000)) initrd_vma
  initrd_vma=$(((linux_vma + $(stat -c %s "$kernel") + 0xfffff) / 0x100000 * 0x100000))
  objcopy \
    --add-section .osrel="$t/osrel" --change-section-vma .osrel=0x20000 \
    --add-section .cmdline="$t/cmdline" --change-section-vma .cmdline=0x30000 \
    --add-section .linux="$kernel" --change-section-vma ".linux=$(printf '0x%x' $linux_vma)" \
    --add-section .initrd="$initrd" --change-section-vma ".initrd=$(printf '0x%x' $initrd_vma)" \
    "$STUB" "$t/uki.efi" || die "objcopy failed"
  sbsign --key "$P/sb/db.key" --cert "$P/sb/db.crt" --output "$out" "$t/uki.efi" >/dev/null 2>&1 || die "sbsign failed"
  rm -rf "$t"
}

# make_esp UKI OUT MIB: a FAT ESP image with \EFI\BOOT\BOOTX64.EFI
make_esp() {
  local uki=$1 out=$2 mib=$3
  rm -f "$out"; truncate -s "${mib}M" "$out"
  mkfs.vfat -F 32 -S 512 -s 1 -n EFI "$out" >/dev/null
  MTOOLS_SKIP_CHECK=1 mmd -i "$out" ::/EFI ::/EFI/BOOT
  MTOOLS_SKIP_CHECK=1 mcopy -i "$out" "$uki" ::/EFI/BOOT/BOOTX64.EFI
}

# vm NAME TPMSTATE_DIR TIMEOUT_S DONE_REGEX DISK... : one QEMU VM (TCG, q35+SMM, OVMF Secure
# Boot with the snakeoil keys, swtpm TPM 2.0 from TPMSTATE_DIR (kept between runs: the same
# "machine"), the disks as virtio-blk, the first one bootindex 0), console in $P/NAME.log.
# Returns when the console matches DONE_REGEX, the VM exits, or TIMEOUT_S; then stops it.
# Prints the seconds from QEMU start to the match, and (VM_MARKS, an array of extended regexes)
# the seconds at which each mark first showed on the console (".. s  REGEX", "-" when never).
vm() {
  local name=$1 tpm=$2 limit=$3 done_re=$4; shift 4
  local log=$P/$name.log vars=$P/$name.vars.fd sock=$tpm/swtpm.sock i=0 d
  mkdir -p "$tpm"; rm -f "$sock" "$log"; cp "$SB_VARS" "$vars"
  swtpm socket --tpm2 --tpmstate dir="$tpm" --ctrl type=unixio,path="$sock" --terminate \
    --log file="$tpm/swtpm.log" &
  local swtpm_pid=$!
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  local drives=()
  for d in "$@"; do
    drives+=(-drive "if=none,id=d$i,format=raw,file=$d" -device "virtio-blk-pci,drive=d$i,serial=FDE$i$( [ $i = 0 ] && echo ,bootindex=0)")
    i=$((i + 1))
  done
  local t0; t0=$(date +%s.%N)
  nice -n 19 qemu-system-x86_64 -accel tcg -M q35,smm=on -m 1024 -smp 2 -display none -monitor none -no-user-config \
    -global driver=cfi.pflash01,property=secure,value=on \
    -drive "if=pflash,format=raw,readonly=on,file=$SB_CODE" -drive "if=pflash,format=raw,file=$vars" \
    -chardev "socket,id=chrtpm,path=$sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
    "${drives[@]}" -nic none -serial "file:$log" </dev/null >"$P/$name.qemu.out" 2>&1 &
  local qpid=$!
  local rc=1 t="" k marks=() seen=()
  [ -n "${VM_MARKS+x}" ] && marks=("${VM_MARKS[@]}")
  for k in "${!marks[@]}"; do seen[$k]=-; done
  while kill -0 "$qpid" 2>/dev/null; do
    for k in "${!marks[@]}"; do
      [ "${seen[$k]}" = - ] || continue
      sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\r//g' "$log" 2>/dev/null | grep -Eq "${marks[$k]}" &&
        seen[$k]=$(echo "$(date +%s.%N) - $t0" | bc | xargs printf '%.1f')
    done
    if sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\r//g' "$log" 2>/dev/null | grep -Eq "$done_re"; then
      t=$(echo "$(date +%s.%N) - $t0" | bc); rc=0; break
    fi
    if [ "$(echo "$(date +%s.%N) - $t0 > $limit" | bc)" = 1 ]; then break; fi
    sleep 0.5
  done
  if [ -z "$t" ]; then # the VM may have powered off between two looks
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\r//g' "$log" 2>/dev/null | grep -Eq "$done_re" && rc=0
  fi
  sleep 1
  kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null
  kill "$swtpm_pid" 2>/dev/null; wait "$swtpm_pid" 2>/dev/null
  echo "$name: $( [ $rc = 0 ] && echo matched || echo 'NO MATCH (timeout or exit)') after ${t} s"
  for k in "${!marks[@]}"; do printf '%s:   %6s s  %s\n' "$name" "${seen[$k]}" "${marks[$k]}"; done
  return $rc
}
