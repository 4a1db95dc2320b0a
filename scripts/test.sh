#!/usr/bin/env bash
# The test command: installs what is needed, checks the layers of core/lib and the plugin
# ABI, then builds edgeprov twice, plainly and with AddressSanitizer +
# UndefinedBehaviorSanitizer, and runs the whole suite (ctest) in both; then boots QEMU virtual edge nodes end to end (tests/e2e), then runs the libFuzzer targets
# of tests/fuzz for a bounded time each.
# Usage: scripts/test.sh            (build trees go to build/release and build/sanitize)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

# The layers of core/lib (README, "Layout"): no include upwards or sideways, no cycle.
python3 scripts/check-layers.py
# The plugin ABI against its baseline in sdk/abi/ (README, "Keeping the ABI"): a minor only adds.
scripts/check-abi.sh

jobs=$(nproc)
run_suite() {
  local name=$1
  shift
  echo "==> $name: configure and build"
  cmake -S . -B "build/$name" -G Ninja "$@" >/dev/null
  cmake --build "build/$name" -j "$jobs"
  echo "==> $name: test"
  ctest --test-dir "build/$name" --output-on-failure -j "$jobs"
}

run_suite release -DCMAKE_BUILD_TYPE=RelWithDebInfo
# Sanitizer findings fail the run (-fno-sanitize-recover=all, halt_on_error).
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_suite sanitize -DCMAKE_BUILD_TYPE=Debug -DEP_SANITIZE=ON

# End to end on QEMU (TCG): virtual edge nodes boot, onboard, provision and report RUNNING,
# against the release build (tests/e2e/run.sh; the Debian target image is cached).
echo "==> e2e: QEMU virtual edge nodes"
tests/e2e/run.sh build/release

# The fuzzers (libFuzzer needs clang), each for a bounded time on its seed corpus.
echo "==> fuzz: configure and build (clang)"
CC=clang cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DEP_SANITIZE=ON -DEP_FUZZ=ON >/dev/null
cmake --build build/fuzz -j "$jobs" --target fuzzers
echo "==> fuzz: run"
ctest --test-dir build/fuzz -R '^fuzz\.' --output-on-failure
