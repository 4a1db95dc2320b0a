#!/usr/bin/env bash
# Installs every build and test dependency of edgeprov from Debian packages.
# The one place that lists them. Idempotent and non-interactive: safe to run again.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # core libraries
  libconfig-dev libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
  libcurl4-openssl-dev libssl-dev libzstd-dev zlib1g-dev libblkid-dev libsqlite3-dev libjansson-dev libmicrohttpd-dev
  # storage-postgres: libpq; its tests run a throwaway cluster of the server (initdb, pg_ctl)
  libpq-dev postgresql
  # the front door of several replicas (deploy/haproxy/edgeprov.cfg), real in replicas.sh
  haproxy
  # libyaml: the cloud-init user-data and meta-data are emitted with its emitter
  libyaml-dev
  # tests (clang and its runtime for the libFuzzer targets)
  libcmocka-dev openssl sqlite3 curl clang libclang-rt-14-dev
  # scripts/check-layers.py and the tests' small helpers (free ports, JSON)
  python3
  # promtool checks the /metrics text (tests/integration/metrics.sh); the prometheus server
  # that comes with it is stopped and disabled below
  prometheus
  # the web dashboard's test (tests/integration/dashboard.sh) runs its page in headless Chromium
  chromium
  # scripts/check-abi.sh: libabigail's abidw records the SDK's ABI, abidiff compares it with sdk/abi/
  abigail-tools
  # cloud-init: its schema check validates the rendered user-data (brings python3-yaml)
  cloud-init
  # the image.stream, disk.erase and node actions tests: a real HTTP(S) server and proxy,
  # zstd and partitioning tools, a loop device's util-linux, an ESP's FAT tools
  nginx-light zstd gdisk e2fsprogs util-linux dosfstools mtools
  # the Micro-OS boot image: libarchive writes the initramfs cpio; busybox-static is its
  # userland; linux-image-amd64 its kernel and modules; systemd-boot-efi the EFI stub of its
  # unified kernel image, which binutils' objcopy assembles; sbsigntool signs it for Secure Boot
  # (sbverify in the tests) under faketime, which pins the signature's time for reproducible
  # output; file identifies the EFI binaries
  libarchive-dev busybox-static linux-image-amd64 systemd-boot-efi binutils sbsigntool faketime file
  # full-disk encryption and dm-verity (docs/design/fde.md): the Micro-OS carries this machine's
  # cryptsetup and veritysetup (cryptsetup-bin) and systemd-cryptenroll with systemd's LUKS2
  # TPM2 token plugin (systemd, below; tpm2-tss from libtss2-dev); the microvisor image's
  # verified root is EROFS (mkfs.erofs)
  cryptsetup-bin erofs-utils
  # the microvisor image script unpacks the Micro-OS initramfs into its verified root
  cpio
  # the QEMU boot tests: a UEFI firmware (OVMF), a software TPM, and dnsmasq's DHCP for the
  # UEFI HTTPS boot test
  qemu-system-x86 ovmf swtpm swtpm-tools dnsmasq-base
  # the node's TPM identity: tpm2-tss (the agent's ESAPI and TCTI loader; its marshalling library
  # in edgeprovd), tpm2-tools for operators' EKs and the tests' check of TPM2_MakeCredential
  libtss2-dev tpm2-tools
  # full-disk encryption (image.stream fde=true): libcryptsetup for LUKS2 in actions-core;
  # cryptsetup-bin (cryptsetup, veritysetup) and erofs-utils for the tests and the image scripts
  libcryptsetup-dev cryptsetup-bin erofs-utils
  # the Debian packages (cmake/Packaging.cmake, tests/integration/package.sh): dpkg-shlibdeps
  # (dpkg-dev) computes their dependencies, lintian checks them, systemd-analyze (systemd)
  # verifies the unit, libsystemd-dev gives edgeprovd sd_notify (Type=notify); the test's
  # Debian root is made with debootstrap (below) and booted with systemd-nspawn (systemd-container)
  lintian systemd systemd-container libsystemd-dev dpkg-dev
  # the e2e target OS image (tests/e2e/images/debian-image.sh): debootstrap makes its Debian
  # root filesystem; mkfs.ext4 -d (e2fsprogs), mkfs.vfat + mtools, sgdisk, objcopy and the
  # systemd-boot-efi stub (all above) make the disk and its unified kernel image
  debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js runs the independent gRPC client of the wire-compatibility test; a node already on
# the PATH (any source) will do.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# prometheus is here for promtool only: its server must not run, nor hold port 9090, nor be
# what a test talks to.
if [ -e /lib/systemd/system/prometheus.service ] && command -v systemctl >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  else
    $sudo systemctl disable prometheus.service >/dev/null 2>&1 || true
  fi
fi

# iPXE with HTTPS (bookworm's has none): trixie's ipxe package's EFI binary, unpacked to
# /usr/local/share/edgeprov/ipxe/ (does nothing when it is there already).
"$(dirname "$0")/fetch-ipxe.sh"
