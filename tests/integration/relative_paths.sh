#!/usr/bin/env bash
# Integration test: the programs take relative paths wherever a user gives one (issue 19, point
# 5), each from the current directory: edgeprovd --config, the agent's --ca, --sysroot,
# --state-dir and --target-disk (which the workflow's disk.erase takes absolute only), edgeprov artifacts nginx-conf's --cert, --key and --directory, and the
# benchmarks' EDGEPROVD and PLUGIN_DIR. Inside the site config, paths stay absolute.
# Usage: relative_paths.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
loopback_site
cd "$tmp" || exit 1

# ---- edgeprovd --config ---------------------------------------------------------------------
check "edgeprovd --check --config site.conf (relative)" run_status 0 "$tmp/check.log" \
  "$build/bin/edgeprovd" --check --config site.conf
check "edgeprovd --check --config ./site.conf" run_status 0 "$tmp/check2.log" \
  "$build/bin/edgeprovd" --check --config ./site.conf
check "it names the file by its absolute path" contains "$tmp/check2.log" "config=$tmp/site.conf"
sed 's|data = "[^"]*"|data = "data"|' site.conf >relative-data.conf
check "a relative path inside the config is refused, naming the key" run_status 1 "$tmp/refused.log" \
  "$build/bin/edgeprovd" --check --config relative-data.conf
check "as 'paths.data': must be an absolute path" contains "$tmp/refused.log" \
  "'paths.data': \\\"data\\\": must be an absolute path"

# ---- the agent: --ca, --sysroot, --state-dir --------------------------------------------------
check "edgeprovd starts with --config site.conf" start_daemon site.conf "$tmp/daemon.log"
uuid=55555555-5555-4555-8555-555555555555
check "a host is registered" "$build/bin/edgeprov" --config site.conf host add --uuid $uuid --serial SERIAL5 \
  --os microvisor --auto-onboard
node_sysroot "$tmp/node" $uuid SERIAL5
check "the agent onboards with --ca ca.pem --sysroot node --state-dir node/state" run_status 0 "$tmp/agent.log" \
  "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca ca.pem \
  --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot node --state-dir node/state \
  --backoff-ms 100 --backoff-max-ms 400 --onboard-only
check "it keeps its credentials under ./node/state" test -n "$(ls -A "$tmp/node/state" 2>/dev/null)"
truncate -s 1M disk
check "it runs the workflow's disk.erase on --target-disk disk (relative)" run_status 0 "$tmp/workflow.log" \
  "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca ca.pem \
  --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot node --state-dir node/state \
  --backoff-ms 100 --backoff-max-ms 400 --target-disk disk --no-reboot
check "... which the action got as an absolute path" contains "$tmp/workflow.log" "$tmp/disk"
check "edgeprovd stops" stop_daemon

# ---- edgeprov artifacts nginx-conf --cert/--key/--directory -----------------------------------
mkdir -p boot
check "artifacts nginx-conf takes relative --cert, --key and --directory" run_status 0 "$tmp/nginx.conf" \
  "$build/bin/edgeprov" --config site.conf artifacts nginx-conf --listen 127.0.0.1:9443 --cert tls.pem \
  --key ./tls.key --directory boot
check "and writes them absolute" contains "$tmp/nginx.conf" "$tmp/tls.pem"
check "the key too" contains "$tmp/nginx.conf" "$tmp/tls.key"
check "the directory too" contains "$tmp/nginx.conf" "$tmp/boot"

# ---- the benchmarks: EDGEPROVD and PLUGIN_DIR ------------------------------------------------
cd "$build" || exit 1
check "bench_register bin/edgeprovd lib/edgeprov/plugins (relative), 20 hosts" run_status 0 "$tmp/bench_register.log" \
  bin/bench_register bin/edgeprovd lib/edgeprov/plugins 20
check "bench_onboarding bin/edgeprovd lib/edgeprov/plugins (relative), 4 nodes" run_status 0 \
  "$tmp/bench_onboarding.log" bin/bench_onboarding bin/edgeprovd lib/edgeprov/plugins 4 2
check "every node onboarded" awk 'f { exit !($NF == 0) } /^seconds/ { f = 1 }' "$tmp/bench_onboarding.log"
finish
