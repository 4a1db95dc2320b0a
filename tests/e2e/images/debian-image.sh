#!/usr/bin/env bash
# debian-image.sh: the target OS image of the end-to-end tests (os-ubuntu-style provisioning).
#
# Usage: tests/e2e/images/debian-image.sh BUILD_DIR OUT_DIR [DB_KEY DB_CERT]
#
# With DB_KEY/DB_CERT the unified kernel image is signed with them (sbsign), so it boots under
# Secure Boot (the e2e harness signs with the snakeoil db key OVMF's snakeoil variables trust:
# the fde scenario seals disks to PCR 7 under Secure Boot). Signing happens after the cache.
#
# Writes OUT_DIR/debian.img.zst, a zstd-compressed raw GPT disk image, and
# OUT_DIR/debian.img.zst.sha256, the hex SHA-256 of the *decompressed* raw image (what
# image.stream compares: the SHA-256 of the bytes it wrote), and prints both paths.
#
# The image boots on its own through the UEFI removable-media path (OVMF, q35, virtio-blk):
#   1. ESP (FAT32, mkfs.vfat + mtools): \EFI\BOOT\BOOTX64.EFI, a unified kernel image
#      (systemd-boot-efi's stub + Debian's cloud kernel + an initramfs-tools initramfs +
#      the command line "root=LABEL=cloudimg-rootfs ro console=ttyS0,115200 ..."; unsigned).
#   2. root partition, GPT name "cloudimg-rootfs", 16 MiB larger than the ext4 file system
#      at its start (label "cloudimg-rootfs", made with mkfs.ext4 -d: no mounting, no loop
#      devices), where the workflow's file.write writes the NoCloud seed
#      (/var/lib/cloud/seed/nocloud/) and the installer and its unit. The last 16 MiB are
#      zeros (checked here): LUKS2's header room.
# One image, two modes (issue 20; docs/design/fde.md part A):
#   clear  image.stream writes it as it is; the 16 MiB stay unused.
#   FDE    image.stream (fde, fde_partition "cloudimg-rootfs") luksFormats the partition and
#          writes the ext4 into /dev/mapper/cryptroot (the LUKS2 header takes the 16 MiB; the
#          writer drops the zeros and refuses non-zero bytes there); systemd-cryptenroll
#          --tpm2-pcrs=7+15 adds the TPM keyslot + token. At boot the initramfs's local-top script
#          (initramfs/local-top/edgeprov-fde, with initramfs/hooks/edgeprov-fde: cryptsetup,
#          systemd 252's token plugin libcryptsetup-token-systemd-tpm2.so, the tpm2-tss
#          libraries it dlopen()s, tpm2-tools' tpm2, dm-crypt and the xts/ecb/aes modules) finds
#          a LUKS2 partition (cryptsetup isLuks; ext4: nothing to open), waits up to 10 s for
#          /dev/tpmrm0 and runs `cryptsetup open --token-only --token-type systemd-tpm2`. When
#          the TPM refuses it prints "edgeprov-fde: the TPM did not unlock the root file
#          system: ..." and halts (panic, no shell): the node never reaches RUNNING.
#   PCR 15 lock (docs/design/fde.md, pitfall 2): the key is sealed to PCR 7+15 (15 zero at
#   enrolment); the local-top script extends PCR 15 (`tpm2 pcrextend`) before anything from the
#   disk runs, on every path that continues the boot (unlocked, clear, no such partition), so
#   nothing booted after it (an attacker's stick labelled cloudimg-rootfs under this signed
#   kernel) can unseal; a TPM that refuses the extend halts the boot. No /dev/tpmrm0 within 1 s
#   (clear mode): no TPM, nothing to lock (TIS and CRB are built into the cloud kernel).
#   Also closed for the unlocked OS: systemd.gpt_auto=0 on the command line (no partitions
#   mounted by GPT type) and cloud-init's NoCloud reads only the seed directory (no cidata stick).
#   root=LABEL= and fstab's LABEL= find the ext4 in both modes (the partition in clear mode,
#   the mapping with FDE; initramfs-tools resolves LABEL= with blkid). No crypttab and no
#   cryptsetup-initramfs: a static crypttab entry would prompt forever in clear mode. The LUKS2
#   header itself must not carry the label "cloudimg-rootfs".
# The root is Debian bookworm (debootstrap --variant=minbase) with systemd, udev, dbus,
# cloud-init 22.4 (datasources NoCloud, reading the seed directory only, and None; a short
# module list; network rendered as ifupdown "eni" with DHCP on the first NIC by
# isc-dhcp-client), ca-certificates, the
# runtime libraries BUILD_DIR/bin/edgeprov-agent needs (found at build time with ldd and
# dpkg -S on this machine) and the agent itself as /usr/local/bin/edgeprov-agent (the agent
# loads no plugins in --installed mode, so none are copied). No growpart: the root keeps
# its size (about 70 MiB free).
#
# Cache: debootstrap and the package installation (minutes) are cached as a tarball
#   ${EDGEPROV_E2E_CACHE:-/var/cache/edgeprov-e2e}/debian-rootfs-<key>.tar.zst
# <key> = SHA-256 (16 hex digits) over the code that makes the root filesystem (this script's
# build_rootfs function as bash prints it: edits to the assembly do not discard the cache), the
# suite and the package list (which includes the agent's runtime packages). Written under a
# temporary name and renamed; an interrupted run (its debootstrap is stopped too) leaves no
# cache and no mounts. Other keys' tarballs unused for 30 days are removed. Each run
# assembles the image from the tarball with the freshly built agent; EDGEPROV_E2E_REBUILD=1
# ignores the cache. The output is not bit-reproducible (file system UUIDs, time stamps).
#
# Mirror: the Debian archive entry of this machine's own apt sources (/etc/apt/sources.list,
# sources.list.d/*.list and *.sources, as scripts/fetch-ipxe.sh reads them), at run time;
# EDGEPROV_E2E_MIRROR overrides it. The machine's apt configuration is not touched.
# Needs root (debootstrap, chroot, file owners) and scripts/install-deps.sh's packages.
# Other settings: EDGEPROV_E2E_SUITE (bookworm), EDGEPROV_E2E_ZSTD_LEVEL (6),
# EDGEPROV_E2E_MOZILLA_CAS=1 (keep Debian's public CAs trusted; costs 50 s of first boot).
#
# Console markers (serial, after stripping ANSI escapes): "EFI stub: Loaded initrd" (the
# kernel has control), FDE only: "edgeprov-fde: the root file system was unlocked with the TPM
# in N s" (or "edgeprov-fde: the TPM did not unlock ..." and "edgeprov-fde: boot stopped"),
# with a TPM (either mode): "edgeprov-fde: PCR 15 extended: the TPM unseals nothing more in this
# boot" (or "edgeprov-fde: cannot extend PCR 15 ..." and "edgeprov-fde: boot stopped"),
# "Welcome to Debian GNU/Linux 12 (bookworm)!" (systemd), and cloud-init's
# "Cloud-init v. 22.4.2 running 'init-local'", "... running 'modules:final'" and
# "Cloud-init v. 22.4.2 finished at" (all stages done, runcmd output printed before it).
#
# Measured on 2 cores (AMD EPYC):
#   first build (uncached) 248 s (88-99 s with a warm mirror cache); cached rebuild 17-25 s
#   raw image 514 MiB (ESP 64 MiB, root partition 447 MiB = ext4 431 MiB with 74 MiB free +
#   16 MiB), debian.img.zst 105 MiB; initramfs 13.6 MB (9.2 MB without tpm2-tools,
#   5.6 MB without any FDE part)
#   QEMU start to cloud-init's "finished at" line under TCG: 64 s (86 s with another TCG VM
#   on the machine): OVMF and the UKI load 7 s, kernel + initramfs 9 s, systemd to
#   cloud-init-local 14 s, the four cloud-init stages 4-5 s of Python start-up each.
#   qemu-system-x86_64 -accel tcg -M q35 -m 1024 -smp 2 -nographic, OVMF_CODE_4M + a copy of
#   OVMF_VARS_4M as pflash, virtio-blk-pci (bootindex=0), virtio-net-pci on user networking.
#   FDE (docs/design/fde-proto/prove-e2e-image.sh: Secure Boot OVMF, swtpm, TCG, the UKI signed
#   with the snakeoil db key, a seed): the unlock in the initramfs 1.3-2.5 s (4.0 s at load 7);
#   QEMU start to "Welcome to Debian" median 17.0 s clear / 22.4 s FDE (best 13.0 / 15.6 s), to
#   cloud-init's "finished at" median 46.3 / 46.4 s (best 30.0 / 34.1 s; runs vary by +-15 s on
#   the shared machine); a clear boot pays one `cryptsetup isLuks` (not measurable).
set -euo pipefail

suite=${EDGEPROV_E2E_SUITE:-bookworm}
cache_dir=${EDGEPROV_E2E_CACHE:-/var/cache/edgeprov-e2e}
# panic=0: every initramfs panic halts instead of opening its (initramfs) shell, which in FDE mode
# would sit beside an unlocked root. systemd.gpt_auto=0: systemd-gpt-auto-generator would mount
# /home, /srv, /var/tmp or swap partitions found by type in the (unauthenticated) GPT into the
# unlocked OS.
cmdline="root=LABEL=cloudimg-rootfs ro console=ttyS0,115200 loglevel=5 systemd.show_status=1 net.ifnames=0 panic=0 systemd.gpt_auto=0"
esp_mib=64       # FAT32 needs at least 65525 clusters: 33 MiB with 512-byte clusters
free_mib=64      # free space left in the root filesystem
luks_mib=16      # the root partition is this much larger than its filesystem: LUKS2's header room
zstd_level=${EDGEPROV_E2E_ZSTD_LEVEL:-6}

die() { echo "debian-image: error: $*" >&2; exit 1; }
say() { echo "debian-image: $*" >&2; }

[ $# -eq 2 ] || [ $# -eq 4 ] || { echo "usage: $0 BUILD_DIR OUT_DIR [DB_KEY DB_CERT]" >&2; exit 2; }
build_dir=$(readlink -f "$1") || die "BUILD_DIR $1 does not exist"
sign_key=${3:-} sign_cert=${4:-}
if [ -n "$sign_key" ]; then
  command -v sbsign >/dev/null || die "sbsign not found: run scripts/install-deps.sh"
  [ -r "$sign_key" ] && [ -r "$sign_cert" ] || die "cannot read the signing key $sign_key or certificate $sign_cert"
fi
here=$(cd "$(dirname "$0")" && pwd)
for f in initramfs/hooks/edgeprov-fde initramfs/local-top/edgeprov-fde; do
  [ -r "$here/$f" ] || die "$here/$f is missing"
done
out_dir=$2
agent=$build_dir/bin/edgeprov-agent
[ -x "$agent" ] || die "$agent not found or not executable (build the project first)"
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, file owners in the image)"
for tool in debootstrap mkfs.ext4 mkfs.vfat mmd mcopy sgdisk objcopy zstd sha256sum ldd dpkg tar chroot; do
  command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
[ -r "$stub" ] || die "$stub not found: install systemd-boot-efi (scripts/install-deps.sh)"
mkdir -p "$out_dir" || die "cannot create $out_dir"
out_dir=$(readlink -f "$out_dir")

t0=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/edgeprov-debian-image.XXXXXX")
# cleanup: unmount whatever an interrupted debootstrap left mounted in the chroot (deepest
# first) before removing anything, and never cross into another filesystem.
bootstrap_pid=""
cleanup() {
  local m
  if [ -n "$bootstrap_pid" ]; then
    kill -TERM -- "-$bootstrap_pid" 2>/dev/null || true
    sleep 1
    kill -KILL -- "-$bootstrap_pid" 2>/dev/null || true
    wait "$bootstrap_pid" 2>/dev/null || true
  fi
  if [ -d "$work" ]; then
    for m in $(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$work"
  fi
  rm -f "$cache_dir"/.tmp-"$$"-* "$out_dir"/.debian.img.zst.tmp-"$$" "$out_dir"/.debian.img.zst.sha256.tmp-"$$" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the mirror: this machine's own Debian archive entry (the logic of scripts/fetch-ipxe.sh) --

codename=$( (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true)
[ -n "$codename" ] || die "cannot tell this machine's Debian codename (VERSION_CODENAME in /etc/os-release)"

# shellcheck source=scripts/apt-mirror.sh
. "$(dirname "$0")/../../../scripts/apt-mirror.sh"
find_mirror() { ep_apt_mirror "$codename"; }

# --- the package list --------------------------------------------------------------------------

packages=(
  systemd-sysv udev dbus kmod
  # the kernel (the cloud flavour: virtio and the usual VM devices, a fraction of the modules)
  # and its initramfs, generated in the chroot
  linux-image-cloud-amd64 initramfs-tools zstd
  # cloud-init (NoCloud) and the network it renders: ifupdown ("eni") with DHCP on the first NIC
  cloud-init ifupdown isc-dhcp-client isc-dhcp-common iproute2 netbase
  # provides python3-cffi-backend-api-{min,max} (python3-cryptography's virtual dependencies,
  # which debootstrap's resolver does not follow)
  python3-cffi-backend
  # cloud-init's ca_certs module runs update-ca-certificates
  ca-certificates openssl
  # fsck of the root at boot
  e2fsprogs
  # FDE: the initramfs opens a LUKS2 root with systemd 252's TPM2 token plugin (shipped by
  # systemd) through cryptsetup; the plugin dlopen()s these tpm2-tss libraries. tpm2-tools:
  # `tpm2 pcrextend` locks PCR 15 in the initramfs. busybox: the initramfs's shell utilities
  # (cut, awk) for initramfs/local-top/edgeprov-fde
  cryptsetup-bin libtss2-esys-3.0.2-0 libtss2-rc0 libtss2-mu0 libtss2-tcti-device0 tpm2-tools busybox
)

# The Debian packages of the agent's shared libraries on this machine (ldd + dpkg -S), so the
# image holds the same sonames; libraries under BUILD_DIR (the project's own) are copied instead.
agent_libs_own=()
agent_libs=()
while read -r lib; do
  case $(readlink -f "$lib") in
    "$build_dir"/*) agent_libs_own+=("$lib") ;;
    *) agent_libs+=("$lib") ;;
  esac
done < <(ldd "$agent" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ ${#agent_libs[@]} -gt 0 ] || die "ldd found no libraries for $agent"
# One dpkg -S for all (one call per library costs 0.3 s each): each library as ldd names it,
# resolved, and with and without /usr (merged /usr: dpkg knows only the path the package ships).
mapfile -t lib_paths < <(for l in "${agent_libs[@]}"; do
  r=$(readlink -f "$l"); printf '%s\n' "$l" "$r" "/usr${l#/usr}" "${l#/usr}" "/usr${r#/usr}" "${r#/usr}"
done | sort -u)
owners=$(dpkg -S "${lib_paths[@]}" 2>/dev/null | grep -v '^diversion ' || true)
agent_pkgs=()
for l in "${agent_libs[@]}"; do
  r=$(readlink -f "$l")
  pkg=$(awk -v a="$l" -v b="$r" '
    { i = index($0, ": "); p = substr($0, 1, i - 1); f = substr($0, i + 2); sub(/^\/usr/, "", f) }
    { x = a; y = b; sub(/^\/usr/, "", x); sub(/^\/usr/, "", y) }
    f == x || f == y { split(p, q, ":"); print q[1]; exit }' <<<"$owners")
  [ -n "$pkg" ] || die "no Debian package owns $l (a library of $agent); cannot put it in the image"
  agent_pkgs+=("$pkg")
done
mapfile -t all_pkgs < <(printf '%s\n' "${packages[@]}" "${agent_pkgs[@]}" | sort -u)

# The key: what makes the root filesystem (this script's build_rootfs function, as bash prints
# it, so edits to the assembly below do not throw the cache away), the initramfs files it
# installs, the suite, the package list.
rootfs_key() {
  declare -f build_rootfs
  cat "$here/initramfs/hooks/edgeprov-fde" "$here/initramfs/local-top/edgeprov-fde"
  echo "suite=$suite"; printf '%s\n' "${all_pkgs[@]}"
}

# --- the cached root filesystem ------------------------------------------------------------------

build_rootfs() {
  local root=$1 mirror
  mirror=${EDGEPROV_E2E_MIRROR:-$(find_mirror)}
  [ -n "$mirror" ] || die "no apt source for suite '$codename' found in /etc/apt/sources.list{,.d/}; set EDGEPROV_E2E_MIRROR to a Debian archive URI"
  case $mirror in cdrom:*) die "the apt source for '$codename' is a CD-ROM ($mirror); set EDGEPROV_E2E_MIRROR" ;; esac
  mirror=${mirror%/}
  say "debootstrap $suite from $mirror (${#all_pkgs[@]} packages and their dependencies; a few minutes)"
  local inc
  inc=$(IFS=,; echo "${all_pkgs[*]}")
  # in its own session, so that cleanup can stop it and all its children when we are stopped
  setsid debootstrap --variant=minbase --arch=amd64 --components=main --include="$inc" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 &
  bootstrap_pid=$!
  local rc=0
  wait "$bootstrap_pid" || rc=$?
  bootstrap_pid=""
  if [ $rc -ne 0 ]; then
    tail -n 30 "$work/debootstrap.log" >&2
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (see above)"
  fi
  for m in $(awk -v w="$root/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r); do umount -l "$m"; done

  # fstab first: the initramfs's fsck hook takes the root's type from it (fsck.ext4 goes in)
  echo 'LABEL=cloudimg-rootfs / ext4 defaults,errors=remount-ro 0 1' >"$root/etc/fstab"
  # The initramfs: the modules that reach a virtio, SATA or NVMe root on ext4, root found by
  # its ext4 label (blkid); zstd. FDE: the hook and local-top script that open a LUKS2 root
  # partition with the TPM (tests/e2e/images/initramfs/, see their comments).
  cat >"$root/etc/initramfs-tools/conf.d/edgeprov.conf" <<'EOF'
MODULES=list
COMPRESS=zstd
EOF
  cat >"$root/etc/initramfs-tools/modules" <<'EOF'
virtio_pci
virtio_blk
virtio_scsi
virtio_net
sd_mod
ahci
nvme
ext4
crc32c_generic
EOF
  install -m 0755 "$here/initramfs/hooks/edgeprov-fde" "$root/etc/initramfs-tools/hooks/edgeprov-fde"
  install -m 0755 "$here/initramfs/local-top/edgeprov-fde" "$root/etc/initramfs-tools/scripts/local-top/edgeprov-fde"
  chroot "$root" update-initramfs -u -k all >"$work/initramfs.log" 2>&1 ||
    { cat "$work/initramfs.log" >&2; die "update-initramfs in the chroot failed"; }

  # cloud-init: NoCloud only (no probing), the network as ifupdown config, few modules.
  # NoCloud reads the seed directory only: fs_label null (DataSourceNoCloud skips the search when
  # the label is None) keeps it from merging a vfat/iso9660 file system labelled cidata (a stick
  # of anyone's) over the seed, as root, in the unlocked OS.
  cat >"$root/etc/cloud/cloud.cfg.d/10_edgeprov.cfg" <<'EOF'
# edgeprov e2e image (tests/e2e/images/debian-image.sh)
datasource_list: [ NoCloud, None ]
datasource:
  NoCloud:
    fs_label: null
system_info:
  network:
    renderers: [ eni ]
cloud_init_modules:
 - seed_random
 - bootcmd
 - write-files
 - set_hostname
 - update_hostname
 - update_etc_hosts
 - ca-certs
 - users-groups
cloud_config_modules:
 - runcmd
cloud_final_modules:
 - write-files-deferred
 - scripts-per-once
 - scripts-per-boot
 - scripts-per-instance
 - scripts-user
 - final-message
 - power-state-change
EOF
  # ifupdown reads what cloud-init renders in interfaces.d
  cat >"$root/etc/network/interfaces" <<'EOF'
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback
EOF
  mkdir -p "$root/etc/network/interfaces.d"
  echo debian >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  rm -f "$root/etc/resolv.conf" && : >"$root/etc/resolv.conf"
  # a new machine-id at first boot
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # what costs boot time and does nothing here
  local u
  for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
      getty@tty1.service systemd-pstore.service; do
    chroot "$root" systemctl disable "$u" >/dev/null 2>&1 || true
    chroot "$root" systemctl mask "$u" >/dev/null 2>&1 || true
  done
  # shrink: documentation, manuals, translations, apt's lists and caches
  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/usr/share/i18n/charmaps/* "$root"/usr/share/lintian \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/debootstrap "$root"/root/.bash_history
  # keep every copyright file: cheap, and what a distributed image should carry
}

key=$(rootfs_key | sha256sum | cut -c1-16)
cache=$cache_dir/debian-rootfs-$key.tar.zst
if [ -s "$cache" ] && [ "${EDGEPROV_E2E_REBUILD:-0}" != 1 ]; then
  say "root filesystem from the cache: $cache"
  touch "$cache"   # in use: see the pruning below
else
  say "no cached root filesystem $cache: building it"
  mkdir -p "$cache_dir" || die "cannot create the cache directory $cache_dir"
  build_rootfs "$work/build"
  tmp_cache=$cache_dir/.tmp-$$-$(basename "$cache")
  tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$work/build" -cf - . |
    zstd -q -T0 -3 -o "$tmp_cache" || die "cannot write $tmp_cache"
  mv -f "$tmp_cache" "$cache"
  say "cached the root filesystem: $cache ($(du -h "$cache" | cut -f1))"
  rm -rf --one-file-system "$work/build"
  # other keys' root filesystems unused for 30 days go
  find "$cache_dir" -maxdepth 1 -name 'debian-rootfs-*.tar.zst' ! -name "${cache##*/}" -mtime +30 -delete 2>/dev/null || true
fi

# --- assembly ----------------------------------------------------------------------------------

root=$work/root
mkdir -p "$root"
zstd -q -dc "$cache" | tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$root" -xf - ||
  die "cannot unpack $cache (remove it to rebuild)"

install -D -m 0755 "$agent" "$root/usr/local/bin/edgeprov-agent"
if [ ${#agent_libs_own[@]} -gt 0 ]; then
  install -d "$root/usr/local/lib"
  install -m 0644 "${agent_libs_own[@]}" "$root/usr/local/lib/"
fi
chroot "$root" /sbin/ldconfig

# Trust: only the CAs cloud-init's ca_certs adds (the orchestrator's). With Debian's 140
# Mozilla CAs selected, update-ca-certificates (run by ca_certs at first boot) forks a few
# processes per CA: 50 s under TCG. EDGEPROV_E2E_MOZILLA_CAS=1 keeps them.
if [ "${EDGEPROV_E2E_MOZILLA_CAS:-0}" != 1 ]; then
  sed -i '/^mozilla\//d' "$root/etc/ca-certificates.conf"
  chroot "$root" update-ca-certificates --fresh >/dev/null 2>&1 || die "update-ca-certificates in the image's root failed"
fi
chroot "$root" /usr/local/bin/edgeprov-agent --help >"$work/agent-help.txt" 2>&1 ||
  { cat "$work/agent-help.txt" >&2; die "edgeprov-agent --help fails in the image's root"; }
grep -q '^Usage: edgeprov-agent' "$work/agent-help.txt" || die "edgeprov-agent --help printed no usage in the image's root"

# The unified kernel image: the newest kernel and its initramfs; both leave the root (the UKI
# holds them) to save space.
kernel=$(ls -1 "$root"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)
[ -n "$kernel" ] || die "no kernel in the cached root's /boot"
kver=${kernel##*/vmlinuz-}
initrd=$root/boot/initrd.img-$kver
[ -s "$initrd" ] || die "no initramfs for kernel $kver in the cached root"
cp "$kernel" "$work/vmlinuz" && cp "$initrd" "$work/initrd.img"
rm -f "$root"/boot/vmlinuz-* "$root"/boot/initrd.img-* "$root"/boot/System.map-* "$root"/vmlinuz* "$root"/initrd.img*
. "$root/etc/os-release"
printf 'ID=%s\nVERSION_ID=%s\nNAME="%s"\nPRETTY_NAME="%s (edgeprov e2e)"\n' "$ID" "$VERSION_ID" "$NAME" "$PRETTY_NAME" >"$work/osrel"
printf '%s' "$cmdline" >"$work/cmdline"
ksize=$(stat -c %s "$work/vmlinuz")
linux_vma=$((0x1000000))
initrd_vma=$(((linux_vma + ksize + 0xfffff) / 0x100000 * 0x100000))
objcopy \
  --add-section .osrel="$work/osrel" --change-section-vma .osrel=0x20000 \
  --add-section .cmdline="$work/cmdline" --change-section-vma .cmdline=0x30000 \
  --add-section .linux="$work/vmlinuz" --change-section-vma ".linux=$(printf '0x%x' $linux_vma)" \
  --add-section .initrd="$work/initrd.img" --change-section-vma ".initrd=$(printf '0x%x' $initrd_vma)" \
  "$stub" "$work/BOOTX64.EFI" || die "objcopy could not assemble the unified kernel image"
if [ -n "$sign_key" ]; then
  sbsign --key "$sign_key" --cert "$sign_cert" --output "$work/BOOTX64.signed" "$work/BOOTX64.EFI" >/dev/null 2>&1 ||
    die "sbsign could not sign the unified kernel image"
  mv "$work/BOOTX64.signed" "$work/BOOTX64.EFI"
fi

# ESP: FAT32 with \EFI\BOOT\BOOTX64.EFI
uki_mib=$(( ($(stat -c %s "$work/BOOTX64.EFI") >> 20) + 1 ))
[ $uki_mib -lt $((esp_mib - 8)) ] || die "the unified kernel image ($uki_mib MiB) does not fit the $esp_mib MiB ESP"
truncate -s ${esp_mib}M "$work/esp.img"
mkfs.vfat -F 32 -S 512 -s 1 -n EFI -i 0ed9e00e "$work/esp.img" >/dev/null || die "mkfs.vfat failed"
export MTOOLS_SKIP_CHECK=1
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT && mcopy -i "$work/esp.img" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI ||
  die "mtools could not write the ESP"

# root: ext4 from the directory, sized to its content plus $free_mib MiB free
used_kib=$(du -s -k --apparent-size "$root" | cut -f1)
nfiles=$(find "$root" -xdev | wc -l)
inodes=$((nfiles + nfiles / 4 + 8192))
# content + 10% (blocks of small files, directories, extent trees) + inode tables + journal + free
root_mib=$(( used_kib / 1024 * 11 / 10 + inodes * 256 / 1048576 + 16 + free_mib ))
truncate -s ${root_mib}M "$work/root.img"
mkfs.ext4 -q -F -b 4096 -L cloudimg-rootfs -N "$inodes" -m 0 -E root_owner=0:0 -d "$root" "$work/root.img" \
  >"$work/mkfs.log" 2>&1 || { cat "$work/mkfs.log" >&2; die "mkfs.ext4 -d failed"; }
free_kib=$(dumpe2fs -h "$work/root.img" 2>/dev/null | awk -F: '/^Free blocks/ { f = $2 } /^Block size/ { b = $2 } END { print int(f * b / 1024) }')
[ "$free_kib" -ge $((free_mib * 1024 / 2)) ] || die "the root filesystem has only $((free_kib / 1024)) MiB free"

# GPT: 1 MiB, ESP, root partition (the filesystem + $luks_mib MiB of zeros), 2 MiB for the
# backup table (which needs the last 33 sectors)
img=$work/debian.img
part_mib=$((root_mib + luks_mib))
total_mib=$((1 + esp_mib + part_mib + 2))
truncate -s ${total_mib}M "$img"
sgdisk -q -Z "$img" >/dev/null 2>&1 || true
sgdisk -a 2048 \
  -n 1:2048:+${esp_mib}M -t 1:ef00 -c 1:"EFI System Partition" \
  -n 2:0:+${part_mib}M -t 2:8300 -c 2:cloudimg-rootfs "$img" >/dev/null || die "sgdisk failed"
sgdisk -v "$img" | grep -q 'No problems found' || die "sgdisk -v finds problems in the partition table"
esp_start=$(sgdisk -i 1 "$img" | awk '/^First sector/ { print $3 }')
root_start=$(sgdisk -i 2 "$img" | awk '/^First sector/ { print $3 }')
[ -n "$esp_start" ] && [ -n "$root_start" ] || die "sgdisk did not create both partitions"
dd if="$work/esp.img" of="$img" bs=512 seek="$esp_start" conv=notrunc,sparse status=none
dd if="$work/root.img" of="$img" bs=1M seek=$((root_start / 2048)) conv=notrunc,sparse status=none
[ $((root_start % 2048)) -eq 0 ] || die "the root partition is not MiB-aligned"
# the FDE writer drops the partition's last $luks_mib MiB and refuses anything but zeros there
root_end=$(sgdisk -i 2 "$img" | awk '/^Last sector/ { print $3 }')
[ $((root_end + 1 - root_start)) -eq $((part_mib * 2048)) ] || die "the root partition is not $part_mib MiB"
cmp -s -n $((luks_mib << 20)) <(dd if="$img" bs=1M skip=$((root_start / 2048 + root_mib)) count=$luks_mib status=none) /dev/zero ||
  die "the last $luks_mib MiB of the root partition are not zeros"
rm -f "$work/esp.img" "$work/root.img"

sha=$(sha256sum "$img" | cut -d' ' -f1)
tmp_img=$out_dir/.debian.img.zst.tmp-$$
tmp_sha=$out_dir/.debian.img.zst.sha256.tmp-$$
zstd -q -T0 -"$zstd_level" -o "$tmp_img" "$img" || die "zstd failed"
echo "$sha" >"$tmp_sha"
mv -f "$tmp_img" "$out_dir/debian.img.zst"
mv -f "$tmp_sha" "$out_dir/debian.img.zst.sha256"
say "image: $((total_mib)) MiB raw, $(( $(stat -c %s "$out_dir/debian.img.zst") >> 20 )) MiB zstd, kernel $kver, sha256 $sha ($(( $(date +%s) - t0 )) s)"
echo "$out_dir/debian.img.zst"
echo "$out_dir/debian.img.zst.sha256"
