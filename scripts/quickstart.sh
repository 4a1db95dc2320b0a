#!/usr/bin/env bash
# The main command: installs what is needed, builds edgeprov, and starts the orchestrator
# daemon edgeprovd on its embedded defaults (no config file). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)"
echo "==> build/release/bin/edgeprovd (embedded defaults; Ctrl-C stops it)"
exec build/release/bin/edgeprovd "$@"
