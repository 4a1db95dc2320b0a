#!/usr/bin/env bash
# Integration test: install the SDK to a temporary prefix, build the example plugin out of
# tree against it only, and have the installed core load the plugin and run its action.
# Usage: sdk_example.sh SOURCE_DIR BUILD_DIR ...
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG
prefix=$tmp/prefix

check "cmake --install" run_status 0 "$tmp/out" cmake --install "$build" --prefix "$prefix"
check "installed headers" test -f "$prefix/include/edgeprov/plugin.h" -a -f "$prefix/include/edgeprov/actions.h"
check "the plugin author's guide is installed" test -s "$prefix/share/doc/edgeprov-sdk/README.md"
check "installed pkg-config file" test -f "$prefix/lib/pkgconfig/edgeprov-sdk.pc"
check "installed CMake package" test -f "$prefix/lib/cmake/edgeprov-sdk/edgeprov-sdk-config.cmake"
check "pkg-config finds the SDK" run_status 0 "$tmp/pc" env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
  pkg-config --cflags edgeprov-sdk
incdir=$(tr ' ' '\n' <"$tmp/pc" | sed -n 's/^-I//p' | head -1)
check "pkg-config include dir holds the SDK" test "$(realpath "$incdir")" = "$(realpath "$prefix/include")"

# The example is copied away from the source tree so only the installed SDK can serve it.
cp -r "$src/sdk/examples/sha256-verify" "$tmp/example"
check "example configures against the installed SDK" run_status 0 "$tmp/out" \
  cmake -S "$tmp/example" -B "$tmp/example-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
check "example builds" run_status 0 "$tmp/out" cmake --build "$tmp/example-build"
# Its compile command shows which headers it was built against: the installed ones, and none of
# the source or build tree (where a CMake package registry or a stray path could lead it).
commands=$tmp/example-build/compile_commands.json
check "example build wrote its compile commands" test -s "$commands"
check "example compiles against the installed include dir" contains "$commands" "$prefix/include"
check "example uses no header of the source tree" lacks "$commands" "$src/sdk"
check "example uses nothing of the build tree" lacks "$commands" "$build/"
check "example installs into the plugin dir" run_status 0 "$tmp/out" cmake --install "$tmp/example-build"
check "plugin exports only its entry" test "$(nm -D --defined-only "$prefix/lib/edgeprov/plugins/example-sha256.so" \
  | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^_' | tr '\n' ' ')" = "ep_plugin "

# The installed edgeprov finds <prefix>/lib/edgeprov/plugins on its embedded defaults.
edgeprov=$prefix/bin/edgeprov
head -c 3145728 /dev/urandom >"$tmp/image.bin"
sum=$(sha256sum "$tmp/image.bin" | cut -d' ' -f1)
check "plugins list shows the example" run_status 0 "$tmp/out" "$edgeprov" plugins list
check "example is active" grep -qE '^example-sha256 +1\.0\.0 +active +edgeprov\.actions/1' "$tmp/out"
check "action verifies the file" run_status 0 "$tmp/out" "$edgeprov" actions run file.verify_sha256 \
  path="$tmp/image.bin" sha256="$sum"
check "action reported progress in bytes" contains "$tmp/out" "progress: 3145728/3145728 (100%) hashing"
check "action result" contains "$tmp/out" "action file.verify_sha256: ok"
bad=$(printf '%064d' 0)
check "wrong digest fails" run_status 1 "$tmp/out" "$edgeprov" actions run file.verify_sha256 \
  path="$tmp/image.bin" sha256="$bad"
check "mismatch names both digests" contains "$tmp/out" "sha256 mismatch: expected $bad, got $sum"
check "setting bound enforced" run_status 1 "$tmp/out" env EDGEPROV_CONFIG="$tmp/bad.conf" \
  sh -c "printf 'example-sha256 = { buffer_kib = 1; };\n' > '$tmp/bad.conf' && '$edgeprov' plugins list"
check "setting bound message" contains "$tmp/out" "bad.conf:1: error: plugin 'example-sha256': 'buffer_kib': 1 is out of range [4, 65536]"

finish
