#!/usr/bin/env bash
# Installs every build and test dependency of edgeprov from Debian packages.
# The one place that lists them. Idempotent and non-interactive: safe to run again.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # core libraries
  libconfig-dev libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
  libcurl4-openssl-dev libssl-dev libzstd-dev libsqlite3-dev libjansson-dev libmicrohttpd-dev
  # tests (clang and its runtime for the libFuzzer targets)
  libcmocka-dev openssl sqlite3 curl clang libclang-rt-14-dev
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
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
