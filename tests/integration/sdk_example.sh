#!/usr/bin/env bash
# Integration test: install the SDK to a temporary prefix, build the example plugins out of
# tree against it only, and have the installed core use them: the action example
# (sha256-verify) runs its action; the OS example (vendor-os: an OS plugin on the plugin kit
# and its own node action) passes the template check and provisions a simulated node, the
# installed edgeprovd and agent on loopback with a file as its disk, to the end.
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

# ---- an out-of-tree OS plugin and node action provision a node (sdk/examples/vendor-os) ----------
check "the plugin kit is installed" test -f "$prefix/lib/libedgeprov-kit.a" -a -f "$prefix/include/edgeprov-kit/os_image.h"
check "pkg-config finds the kit" run_status 0 "$tmp/pc" env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
  pkg-config --libs edgeprov-kit
check "pkg-config: the kit's library" contains "$tmp/pc" "-ledgeprov-kit"
check "pkg-config: the workflows directory" run_status 0 "$tmp/pc" env PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
  pkg-config --variable=workflowsdir edgeprov-sdk
check "pkg-config: ... under the prefix" test "$(realpath -m "$(cat "$tmp/pc")")" = "$(realpath -m "$prefix/share/edgeprov/workflows")"
cp -r "$src/sdk/examples/vendor-os" "$tmp/vendor"
check "vendor-os configures against the installed SDK" run_status 0 "$tmp/out" \
  cmake -S "$tmp/vendor" -B "$tmp/vendor-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
check "vendor-os builds" run_status 0 "$tmp/out" cmake --build "$tmp/vendor-build"
check "vendor-os uses no header of the source tree" lacks "$tmp/vendor-build/compile_commands.json" "$src/"
check "vendor-os uses nothing of the build tree" lacks "$tmp/vendor-build/compile_commands.json" "$build/"
check "vendor-os installs" run_status 0 "$tmp/out" cmake --install "$tmp/vendor-build"
check "vendor-os: its template's copy is in the workflows directory" cmp "$tmp/vendor/workflow.conf" \
  "$prefix/share/edgeprov/workflows/vendor-os.conf"
for so in vendor-os vendor-actions; do
  check "$so exports only its entry (the kit's symbols stay inside)" test "$(nm -D --defined-only \
    "$prefix/lib/edgeprov/plugins/$so.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^_' | tr '\n' ' ')" = "ep_plugin "
done

make_test_tls "$tmp"
grpc=$(free_port) https=$(free_port)
sha=$(printf x | sha256sum | cut -d' ' -f1)
cat >"$tmp/vendor.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$prefix/lib/edgeprov/plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
provisioning = { mode = "nztp"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "actions-core", "vendor-actions", "vendor-os" ];
            required = [ "vendor-os" ]; };
vendor-os = { image_url = "https://127.0.0.1:1/vendor.img"; image_sha256 = "$sha"; };
CONF
E="$prefix/bin/edgeprov --config $tmp/vendor.conf"
check "vendor-os: config check passes (its template against its action)" run_status 0 "$tmp/out" $E config check "$tmp/vendor.conf"
check "vendor-os: the installed edgeprovd starts" start_daemon "$tmp/vendor.conf" "$tmp/daemon.log"
check "vendor-os: dry run" run_status 0 "$tmp/out" $E instance render --os vendor-1
check "vendor-os: dry run: the vendor's action with its values" contains "$tmp/out" "text = vendor-os vendor-1 on SAMPLE"
U=ffffffff-0000-4000-8000-000000000001
$E host add --uuid $U --serial VENDOR01 --os vendor-1 --auto-onboard >/dev/null
node_sysroot "$tmp/node" $U VENDOR01
head -c 1048576 /dev/urandom >"$tmp/disk"
check "vendor-os: the installed agent runs the node's workflow to the end" run_status 0 "$tmp/agent.log" \
  timeout 120 "$prefix/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" \
  --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot "$tmp/node" --state-dir "$tmp/node/state" \
  --backoff-ms 100 --backoff-max-ms 400 --target-disk "$tmp/disk" --no-reboot
check "vendor-os: the agent used the installed plugins" contains "$tmp/agent.log" "vendor.stamp"
check "vendor-os: the disk was erased, then stamped by the vendor's action" python3 - "$tmp/disk" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
stamp = b"vendor-os vendor-1 on VENDOR01"
assert d.startswith(stamp), d[:64]
assert d[len(stamp):].count(0) == len(d) - len(stamp), "not erased"
PY
instance=$($E host show $U --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')
check "vendor-os: instance show" run_status 0 "$tmp/out" $E instance show "$instance"
check "vendor-os: ... both actions succeeded" grep -qE '^  2 +vendor\.stamp +SUCCESS' "$tmp/out"
check "vendor-os: ... the workflow is done" contains "$tmp/out" "2/2: done"
stop_daemon

finish
