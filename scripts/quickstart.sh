#!/usr/bin/env bash
# The main command: installs what is needed, builds edgeprov, then boots one virtual edge
# node (QEMU, UEFI firmware) through the whole path against a real edgeprovd: UEFI HTTPS boot
# from a DHCP server (dnsmasq, in a network namespace the demo creates and removes) -> signed
# iPXE -> Micro-OS over HTTPS -> onboarding -> workflow (the small immutable microvisor image
# streamed to its disk) -> reboot into it -> RUNNING. Prints the node's timeline and the
# final inventory; takes about 2 minutes after the build. Needs root (network namespace).
#
#   scripts/quickstart.sh            the demo (tests/e2e/run.sh's "network" scenario)
#   scripts/quickstart.sh --daemon   instead start edgeprovd in the foreground on its embedded
#                                    defaults (Ctrl-C stops it); other arguments go to edgeprovd,
#                                    run from the caller's directory (--config site.conf works)
set -euo pipefail
here=$PWD # where the caller is: relative paths among edgeprovd's arguments (--config) are taken from there
cd "$(dirname "$0")/.."
root=$PWD

./scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)"
if [ "${1:-}" = --daemon ]; then
  shift
  echo "==> build/release/bin/edgeprovd ${*:-(embedded defaults)} (Ctrl-C stops it)"
  cd "$here"
  exec "$root/build/release/bin/edgeprovd" "$@"
fi
echo "==> booting one virtual edge node end to end (tests/e2e/run.sh build/release network)"
exec tests/e2e/run.sh build/release network
