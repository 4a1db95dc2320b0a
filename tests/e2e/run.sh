#!/usr/bin/env bash
# End-to-end tests on QEMU: virtual edge nodes (TCG, OVMF, a blank virtio target disk) boot
# over the network or from a USB image, load the signed iPXE and the Micro-OS over HTTPS,
# onboard at a real edgeprovd, run their workflow (an OS image streamed to the disk, its
# NoCloud seed written), reboot into the installed OS and report RUNNING.
#
# Usage: tests/e2e/run.sh BUILD_DIR [SCENARIO...]     (default: every scenario)
# Scenarios:
#   network     UEFI HTTPS boot as the reference does it (tests/e2e/network.sh): dnsmasq in a
#               network namespace offers the https:// ipxe.efi URL, the firmware fetches the
#               signed iPXE over TLS -> Micro-OS over HTTPS -> nZTP -> the os-microvisor
#               workflow (the small immutable image) -> reboot from the disk -> RUNNING;
#               power-on to RUNNING printed against the 60 s target
#   usb         the boot-usb image as a USB stick -> Micro-OS -> nZTP -> the os-ubuntu
#               workflow (the Debian image, cloud-init) -> RUNNING
#   secureboot  OVMF enforcing Secure Boot (Debian's snakeoil keys): the signed iPXE, Micro-OS
#               and microvisor image boot through to RUNNING; an unsigned iPXE is refused
#   nonztp      the node waits in the Micro-OS until `edgeprov instance create` (Debian image)
#   two         two VMs at once (Debian image)
#   ha          three edgeprovd replicas on PostgreSQL behind HAProxy (tests/e2e/ha.sh): the node
#               boots and provisions through HAProxy (os-microvisor), the replica holding its
#               workflow stream is killed while it waits, then the next while the workflow runs;
#               the node reconnects to a survivor each time and reaches RUNNING
#   identity    a node proves it holds the TPM registered for its host; a copy with another TPM
#               is refused
#   fde         Secure Boot + swtpm: a Debian node (encrypted root) and a microvisor node
#               (verified root, encrypted data) provisioned with FDE reach RUNNING; tamper
#               checks (the disk in another machine, a changed byte of the verified root, the
#               recovery key), and a node without a TPM ends FAILED with nothing written
#               (tests/e2e/fde.sh)
# Each stage is a console marker waited for with its own timeout; each node's timeline is
# printed, and the final inventory. KEEP=1 keeps the scratch directory.
# Target images: tests/e2e/images/debian-image.sh (os-ubuntu style, cloud-init; cached between
# runs) and tests/e2e/images/microvisor-image.sh (os-microvisor, made from each run's artifacts).
set -u
if [ $# -lt 1 ]; then
  sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
BUILD=$(cd "$1" && pwd)
shift
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(network usb secureboot nonztp two ha identity fde)
. "$src/tests/integration/lib.sh"
. "$here/lib.sh"
. "$here/network.sh"
. "$here/ha.sh"
. "$here/fde.sh"
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY SOURCE_DATE_EPOCH

for tool in qemu-system-x86_64 nginx curl zstd sgdisk mcopy bc; do
  command -v "$tool" >/dev/null || e2e_die "$tool is missing (scripts/install-deps.sh)"
done
for f in "$E2E_OVMF_CODE" "$E2E_OVMF_VARS" "$E2E_OVMF_SB_CODE" "$E2E_OVMF_SB_VARS"; do
  [ -r "$f" ] || e2e_die "$f is missing (package ovmf)"
done

E2E=$(mktemp -d /tmp/edgeprov-e2e.XXXXXX)
E2E_T0=$(e2e_now)
cleanup() {
  e2e_stop_all
  if [ -n "${KEEP:-}" ]; then echo "kept $E2E"; else rm -rf "$E2E"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the orchestrator on QEMU's user network -------------------------------------------------
# Started for the first scenario that needs it (all but network and ha, which bring their own):
# the Debian target image, then e2e_orchestrator_start. E2E_IMAGE=FILE.zst (with FILE.zst.sha256,
# the SHA-256 of the raw image) uses that image instead of building one.
MAIN_STARTED=
main_orchestrator() {
  [ -n "$MAIN_STARTED" ] && return 0
  mkdir -p "$E2E/images"
  if [ -n "${E2E_IMAGE:-}" ]; then
    cp "$E2E_IMAGE" "$E2E/images/debian.img.zst" && cp "$E2E_IMAGE.sha256" "$E2E/images/debian.img.zst.sha256" ||
      e2e_die "E2E_IMAGE: cannot read $E2E_IMAGE and $E2E_IMAGE.sha256"
  else
    # Signed with the snakeoil db key, so it boots under Secure Boot too (the fde scenario).
    e2e_log "the Debian target image (tests/e2e/images/debian-image.sh, cached)"
    e2e_snakeoil_keys "$E2E/sb"
    "$here/images/debian-image.sh" "$BUILD" "$E2E/images" "$E2E/sb/db.key" "$E2E/sb/db.crt" >"$E2E/image.out" 2>&1 ||
      { tail -n 40 "$E2E/image.out"; e2e_die "the target image could not be built"; }
  fi
  e2e_orchestrator_start nztp "$E2E/images/debian.img.zst" "$(cut -d' ' -f1 "$E2E/images/debian.img.zst.sha256")"
  MAIN_STARTED=1
}

# ---- stages of one node --------------------------------------------------------------------
# The stages from power-on to RUNNING, each with its limit: power-on to the Micro-OS agent,
# then onboarding, then the workflow to RUNNING.
node_to_micro_os() {
  local n=$1
  vm_wait "$n" "iPXE runs" 90 'iPXE initialising devices|iPXE 1\.' &&
    vm_wait "$n" "Micro-OS kernel starts" 90 'Linux version' &&
    vm_wait "$n" "Micro-OS /init" 60 'edgeprov-microos: init' &&
    vm_wait "$n" "network up" 90 'edgeprov-microos: network up' &&
    vm_wait "$n" "agent starts" 30 'edgeprov-microos: agent starting'
}
node_micro_os_to_running() {
  vm_wait "$1" "onboarded" 120 'onboarded as' && node_workflow_to_running "$1"
}
node_workflow_to_running() {
  local n=$1
  vm_wait "$n" "workflow received" 120 'disk\.erase' &&
    vm_wait "$n" "workflow done, rebooting" 300 'workflow done; restarting' &&
    vm_wait "$n" "installed OS kernel starts" 120 'Debian GNU/Linux|cloud-init\[|Cloud-init v\.' &&
    vm_wait "$n" "cloud-init finished" 480 'Cloud-init v\. .* finished' &&
    vm_wait "$n" "RUNNING in the inventory" 360 @running
}

no_instance() { ! e2e_cli instance list | grep -q "$1"; }

uuid_of() { printf '6f1e2d3c-4b5a-4978-8a9b-%012x' "$1"; }

# ---- scenarios -----------------------------------------------------------------------------
# report_total NAME SCENARIO: prints power-on to RUNNING from the node's timeline.
report_total() {
  vm_timeline "$1"
  printf '%s: power-on to RUNNING: %s s\n' "$2" "$(awk 'END { print $1 }' "$E2E/$1/timeline")"
}

scenario_usb() {
  local u
  u=$(uuid_of 2)
  check "usb: usb-image writes the stick" run_status 0 "$E2E/usb.out" e2e_cli usb-image --out "$E2E/usb.img"
  check "usb: host registered" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$u" --serial E2ENODE02 \
    --os debian-12 --auto-onboard
  vm_start usb1 "$u" E2ENODE02 usb
  check "usb: power-on to the Micro-OS agent" node_to_micro_os usb1
  check "usb: Micro-OS to RUNNING" node_micro_os_to_running usb1
  check "usb: the image went to the virtio disk, not to the stick" sh -c \
    "zstd -dc '$E2E/images/debian.img.zst' | head -c 1048576 | cmp -s - '$E2E/usb1/target.img' -n 1048576"
  report_total usb1 usb
  vm_stop usb1
}

# Secure Boot with Debian's snakeoil keys: the artifacts and the microvisor image are signed
# with the snakeoil db key (e2e_snakeoil_keys), so the node boots signed code from power-on to
# RUNNING: iPXE, the Micro-OS, and after the reboot the installed image.
# root_verified UUID: host show's disk line says the installed OS runs on its dm-verity root.
root_verified() { e2e_cli host show "$1" | grep -E '^disk:' | tee -a /dev/stderr | grep -qE 'root verified: .*/ on vroot \(dm-verity\)'; }
secure_boot_seen_twice() { [ "$(vm_console "$1" | grep -cE 'Secure boot enabled')" -ge 2 ]; }
# The Micro-OS started neither shell (the one edgeprov.shell asks for, the rescue one) nor the
# debug trace. (grep reads a pipe here: its status 1 is "absent", nothing else.)
no_shell_no_debug() { vm_console "$1" | absent -E 'starting a shell|edgeprov-microos: debug:|^\+ say '; }
# edited_boot_script: $E2E/edited/ (see e2e_netboot_start) holds the signed iPXE and the site's
# boot.ipxe with "edgeprov.shell edgeprov.debug" added to the command line it passes the signed
# UKI, as anyone who can answer the node's DHCP or edit the unsigned script could.
edited_boot_script() {
  mkdir -p "$E2E/edited" && cp "$E2E_ART/ipxe.efi" "$E2E/edited/ipxe.efi" &&
    sed 's|^chain micro-os.efi |chain micro-os.efi edgeprov.shell edgeprov.debug |' "$E2E_ART/boot.ipxe" >"$E2E/edited/boot.ipxe" &&
    chmod 755 "$E2E/edited" && chmod 644 "$E2E/edited/ipxe.efi" "$E2E/edited/boot.ipxe" &&
    grep -q '^chain micro-os.efi edgeprov.shell edgeprov.debug ' "$E2E/edited/boot.ipxe" &&
    ! grep -qE 'vmlinuz|initrd' "$E2E/edited/boot.ipxe"
}
# uki_cmdline_only NAME: the kernel ran with the UKI's own signed command line (the site's
# edgeprov.orchestrator=), none of the words the edited script passed (edgeprov.shell, and iPXE's
# edgeprov.mac=), and /init never saw them (it would say it ignores them).
uki_cmdline_only() {
  local line
  line=$(vm_console "$1" | grep -m1 'Kernel command line:') || return 1
  echo "$line" >&2
  case $line in *edgeprov.orchestrator=*) ;; *) return 1 ;; esac
  case $line in *edgeprov.shell* | *edgeprov.debug* | *edgeprov.mac=*) return 1 ;; esac
  vm_console "$1" | absent 'ignoring edgeprov.shell'
}

# attacker_boot_script: $E2E/edited/ holds what an attacker who holds an FDE node and can reach
# the boot URL would try: the signed iPXE with a script of theirs that boots the site's bare
# vmlinuz, then the kernel taken out of the signed UKI (its .linux section), each with the site's
# initramfs and rdinit=/bin/sh; then, as the control that the script, the network and iPXE work,
# the signed UKI itself. Each refusal is echoed with iPXE's error.
attacker_boot_script() {
  local d=$E2E/edited url=${E2E_NETBOOT_URL%/*}/edited
  rm -f "$d"/* && cp "$E2E_ART/ipxe.efi" "$E2E_ART/vmlinuz" "$E2E_ART/initrd.img" "$E2E_ART/micro-os.efi" "$d/" &&
    objcopy -O binary --only-section=.linux "$E2E_ART/micro-os.efi" "$d/linux.efi" && [ -s "$d/linux.efi" ] &&
    cat >"$d/boot.ipxe" <<IPXE &&
#!ipxe
dhcp || goto fail
kernel $url/vmlinuz initrd=initrd.img rdinit=/bin/sh console=ttyS0,115200 edgeprov-attack=bare || goto fail
initrd $url/initrd.img || goto fail
echo edgeprov-attack: booting the bare kernel
boot || echo edgeprov-attack: the bare kernel refused: \${errno}
imgfree
kernel $url/linux.efi initrd=initrd.img rdinit=/bin/sh console=ttyS0,115200 edgeprov-attack=inner || goto fail
initrd $url/initrd.img || goto fail
echo edgeprov-attack: booting the UKI's inner kernel
boot || echo edgeprov-attack: the UKI's inner kernel refused: \${errno}
imgfree
echo edgeprov-attack: control: chaining the signed UKI
chain $url/micro-os.efi || echo edgeprov-attack: the signed UKI refused: \${errno}
:fail
echo edgeprov-attack: script failed: \${errno}
shell
IPXE
    chmod 755 "$d" && chmod 644 "$d"/*
}
# attack_refused NAME: the firmware refused both attacker kernels: iPXE's error 0x7f04818f is
# EEFI_LOAD ("could not load image", disambiguator 1) carrying EFI status 15, EFI_ACCESS_DENIED,
# what edk2's image verification answers for an image no db key signed (a broken image would
# give another code); no kernel ran with rdinit=/bin/sh; the one kernel that did start is the
# signed UKI's (the control).
attack_refused() {
  local c
  c=$(vm_console "$1")
  printf '%s\n' "$c" | grep -E 'edgeprov-attack:|Could not|Kernel command line' >&2
  printf '%s\n' "$c" | grep -q 'edgeprov-attack: the bare kernel refused: 0x7f04818f' &&
    printf '%s\n' "$c" | grep -q "edgeprov-attack: the UKI's inner kernel refused: 0x7f04818f" &&
    printf '%s\n' "$c" | absent -E 'rdinit=/bin/sh|edgeprov-attack=|edgeprov-attack: (script failed|the signed UKI refused)' &&
    [ "$(printf '%s\n' "$c" | grep -c 'Linux version')" = 1 ]
}

scenario_secureboot() {
  local u
  u=$(uuid_of 3)
  check "secureboot: host registered (os-microvisor profile)" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$u" \
    --serial E2ENODE03 --os microvisor --auto-onboard
  check "secureboot: a boot script that adds edgeprov.shell edgeprov.debug" edited_boot_script
  VM_BOOTFILE=${E2E_NETBOOT_URL%/*}/edited/netboot.efi vm_start sb1 "$u" E2ENODE03 net secureboot
  check "secureboot: the signed iPXE runs" vm_wait sb1 "signed iPXE runs" 120 'iPXE initialising devices|iPXE 1\.'
  check "secureboot: the signed iPXE chains the signed UKI" vm_wait sb1 "signed UKI chained" 120 'edgeprov: booting micro-os\.efi'
  check "secureboot: the UKI's kernel starts" vm_wait sb1 "signed Micro-OS kernel starts" 120 'Linux version'
  check "secureboot: the kernel sees Secure Boot on" vm_wait sb1 "Secure Boot enabled" 60 'Secure boot enabled|secureboot: Secure boot enabled'
  check "secureboot: the Micro-OS network comes up (DHCP, no edgeprov.mac)" vm_wait sb1 "Micro-OS network up" 120 \
    'edgeprov-microos: network up'
  check "secureboot: ... with the UKI's own command line: the edited script's words never reach /init" uki_cmdline_only sb1
  check "secureboot: the Micro-OS agent onboards" vm_wait sb1 "agent reports in" 180 'reported in on the node API'
  check "secureboot: ... with no shell and no debug trace" no_shell_no_debug sb1
  check "secureboot: the workflow ends, the node reboots" vm_wait sb1 "workflow done, rebooting" 300 'workflow done; restarting'
  check "secureboot: the signed installed image mounts its dm-verity root" vm_wait sb1 "installed OS mounts its verified root" 150 \
    'edgeprov-microos: verified root on'
  check "secureboot: ... and reads its seed" vm_wait sb1 "installed OS reads its seed" 30 'edgeprov-microos: seed on'
  check "secureboot: ... with Secure Boot on (both kernels said so)" secure_boot_seen_twice sb1
  check "secureboot: RUNNING in the inventory" vm_wait sb1 "RUNNING in the inventory" 120 @running
  check "secureboot: the installed OS reports its root verified (dm-verity on /)" root_verified "$u"
  vm_timeline sb1
  vm_stop sb1
  # The unsigned iPXE binary as Debian ships it: the firmware must refuse it.
  VM_BOOTFILE=${E2E_NETBOOT_URL%/*}/unsigned/ipxe.efi vm_start sb2 "$(uuid_of 4)" E2ENODE04 net secureboot
  check "secureboot: an unsigned iPXE is refused" vm_wait sb2 "unsigned iPXE refused" 120 'Access Denied|Security Violation'
  vm_stop sb2
  check "secureboot: ... and never ran" sh -c "! grep -q 'iPXE initialising devices' '$E2E/sb2/console.log'"
  # An attacker's script in front of the signed iPXE: the site's bare kernel and the UKI's inner
  # kernel with rdinit=/bin/sh are refused (neither carries the db key's signature), the signed UKI
  # boots (the control).
  check "secureboot: an attacker's boot script (bare kernel, the UKI's inner kernel, rdinit=/bin/sh)" attacker_boot_script
  VM_BOOTFILE=${E2E_NETBOOT_URL%/*}/edited/netboot.efi vm_start sb3 "$(uuid_of 4)" E2ENODE04 net secureboot
  check "secureboot: ... its control, the signed UKI, starts" vm_wait sb3 "the control UKI starts" 240 \
    'edgeprov-attack: control: chaining the signed UKI'
  check "secureboot: ... (its kernel runs)" vm_wait sb3 "a kernel starts" 120 'Linux version'
  vm_stop sb3
  check "secureboot: ... both attacker kernels were refused, none ran with rdinit=/bin/sh" attack_refused sb3
}

# non-ZTP: the node onboards and waits in the Micro-OS until an operator creates its Instance.
scenario_nonztp() {
  local u
  u=$(uuid_of 5)
  e2e_orchestrator_mode non-ztp
  check "nonztp: host registered without instance" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$u" \
    --serial E2ENODE05 --os debian-12 --auto-onboard
  vm_start ntz1 "$u" E2ENODE05 net
  check "nonztp: power-on to the Micro-OS agent" node_to_micro_os ntz1
  check "nonztp: onboarded" vm_wait ntz1 "onboarded" 120 'onboarded as'
  sleep 20
  check "nonztp: no workflow runs without an instance" sh -c "! grep -q 'disk\.erase' '$E2E/ntz1/console.log'"
  check "nonztp: the host has no instance" no_instance "$u"
  check "nonztp: instance create" run_status 0 "$E2E/create.out" e2e_cli instance create "$u" --os debian-12
  check "nonztp: then it provisions to RUNNING" node_workflow_to_running ntz1
  report_total ntz1 nonztp
  vm_stop ntz1
  e2e_orchestrator_mode nztp
}

# A node identity that cannot be copied: the host is registered with the endorsement key of its
# node's TPM (swtpm, read with tpm2_createek as an operator would); the Micro-OS agent proves it
# holds that TPM (/dev/tpmrm0) and onboards; a second machine with the same UUID and serial but
# a TPM of its own is refused, and host show says why.
two_tpms() { tpm_new "$E2E/tpm-a" && tpm_new "$E2E/tpm-b"; }
scenario_identity() {
  local u
  u=$(uuid_of 8)
  check "identity: two machines' TPMs (swtpm), their EKs read" two_tpms
  check "identity: host registered with TPM A's EK" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$u" \
    --serial E2ENODE08 --os microvisor --auto-onboard --ek "$E2E/tpm-a/ek.pem"
  VM_TPM=$E2E/tpm-a vm_start id1 "$u" E2ENODE08 net
  check "identity: the Micro-OS agent answers the TPM challenge" vm_wait id1 "TPM challenge answered" 240 \
    "answering the orchestrator's TPM challenge"
  check "identity: ... and onboards" vm_wait id1 "onboarded" 60 'onboarded as'
  vm_stop id1
  VM_TPM=$E2E/tpm-b vm_start id2 "$u" E2ENODE08 net
  check "identity: a copy with another TPM is refused" vm_wait id2 "refused" 240 \
    "PERMISSION_DENIED: the node's TPM is not the one registered"
  vm_stop id2
  e2e_cli host show "$u" >"$E2E/id-show.out"
  check "identity: host show says why" grep -q "Onboarding refused: the node's TPM is not the one registered" "$E2E/id-show.out"
}

# Two nodes at once.
scenario_two() {
  local u1 u2
  u1=$(uuid_of 6) u2=$(uuid_of 7)
  check "two: first host registered" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$u1" --serial E2ENODE06 \
    --os debian-12 --auto-onboard
  check "two: second host registered" run_status 0 "$E2E/add.out" e2e_cli host add --uuid "$u2" --serial E2ENODE07 \
    --os debian-12 --auto-onboard
  vm_start two1 "$u1" E2ENODE06 net
  vm_start two2 "$u2" E2ENODE07 net
  (node_to_micro_os two1 && node_micro_os_to_running two1) >"$E2E/two1.out" 2>&1 &
  local p1=$!
  (node_to_micro_os two2 && node_micro_os_to_running two2) >"$E2E/two2.out" 2>&1 &
  local p2=$!
  check "two: the first node reaches RUNNING" wait "$p1"
  check "two: the second node reaches RUNNING" wait "$p2"
  cat "$E2E/two1.out" "$E2E/two2.out"
  report_total two1 two
  report_total two2 two
  vm_stop two1
  vm_stop two2
}

for s in "${scenarios[@]}"; do
  declare -F "scenario_$s" >/dev/null || e2e_die "unknown scenario $s"
done
for s in "${scenarios[@]}"; do
  case $s in network | ha) ;; *) main_orchestrator ;; esac
  "scenario_$s"
done

if [ -n "$MAIN_STARTED" ]; then
  echo "final inventory:"
  e2e_cli host list | sed 's/^/  /'
  e2e_cli instance list | sed 's/^/  /'
fi
finish
