#!/usr/bin/env bash
# Integration test: the real edgeprov CLI and edgeprovd against the real test plugins.
# Usage: cli.sh SOURCE_DIR BUILD_DIR MIXED_PLUGIN_DIR REQUIRED_PLUGIN_DIR
set -u
src=$1 build=$2 mixed=$3 required=$4
. "$src/tests/integration/lib.sh"
edgeprov=$build/bin/edgeprov
edgeprovd=$build/bin/edgeprovd
scratch
unset EDGEPROV_CONFIG
# Every site below also loads the in-tree plugins (edgeprovd needs a storage plugin) and
# keeps its data and socket in the temporary directory.
site="listen = { management = \"unix:$tmp/mgmt.sock\"; grpc = \"127.0.0.1:0\"; https = \"127.0.0.1:0\"; };"
dirs="paths = { data = \"$tmp/data\"; plugins = [ \"$mixed\", \"$build/lib/edgeprov/plugins\" ]; };"

# ---- config check ------------------------------------------------------------------------
cat >"$tmp/misspelt.conf" <<CONF
# a site config with a misspelt key on line 3
paths = { plugins = [ "$mixed" ]; };
plugns = { enabled = [ "alpha" ]; };
alpha = { workers = 8; };
CONF
check "config check: misspelt key exits 1" run_status 1 "$tmp/out" "$edgeprov" config check "$tmp/misspelt.conf"
check "config check: file:line and suggestion" contains "$tmp/out" \
  "$tmp/misspelt.conf:3: error: unknown key 'plugns' (did you mean 'plugins'?)"

cat >"$tmp/site.conf" <<CONF
$site
$dirs
plugins = { enabled = [ "storage-sqlite", "beta", "alpha", "flaky" ]; };
alpha = { workers = 8; wokers = 2; };
CONF
check "config check: misspelt plugin setting exits 1" run_status 1 "$tmp/out" "$edgeprov" config check "$tmp/site.conf"
check "config check: plugin setting suggestion" contains "$tmp/out" \
  "$tmp/site.conf:4: error: unknown key 'alpha.wokers' (did you mean 'workers'?)"
sed -i 's/ wokers = 2;//' "$tmp/site.conf"
check "config check: good config" run_status 0 "$tmp/out" "$edgeprov" config check "$tmp/site.conf"
check "config check: says ok" contains "$tmp/out" "$tmp/site.conf: ok (mode nztp, 4 plugins enabled)"

# ---- plugins list / describe ---------------------------------------------------------------
cat >"$tmp/all.conf" <<CONF
$site
$dirs
CONF
check "plugins list: runs" run_status 0 "$tmp/out" "$edgeprov" --config "$tmp/all.conf" plugins list
check "plugins list: alpha active" grep -qE '^alpha +0\.0\.1 +active +edgeprov\.actions/1' "$tmp/out"
check "plugins list: beta active" grep -qE '^beta +0\.0\.1 +active' "$tmp/out"
check "plugins list: no entry symbol" contains "$tmp/out" "why: not a plugin (no entry symbol 'ep_plugin')"
minor=$(sed -n 's/^#define EP_ABI_MINOR \([0-9][0-9]*\)$/\1/p' "$src/sdk/include/edgeprov/abi.h")
check "plugins list: ABI major" contains "$tmp/out" "why: ABI major mismatch: plugin built for ABI 2.$minor, host is 1.$minor"
check "plugins list: ABI minor" contains "$tmp/out" "why: ABI minor newer than the host"
check "plugins list: signature" contains "$tmp/out" "why: bad build signature"
check "plugins list: duplicate" contains "$tmp/out" "why: duplicate plugin ID 'alpha'"
check "plugins list: unknown capability" contains "$tmp/out" "why: unknown capability ID 'edgeprov.teleport/1'"
check "plugins list: init failure" contains "$tmp/out" "why: init failed: cannot reach the vendor API"

check "plugins describe: runs" run_status 0 "$tmp/out" "$edgeprov" --config "$tmp/all.conf" plugins describe alpha
check "plugins describe: int setting with bounds" grep -qE '^  workers +int +no +4 +worker threads \[1\.\.64\]' "$tmp/out"
check "plugins describe: capabilities" contains "$tmp/out" "capabilities: edgeprov.actions/1"
check "plugins describe: unknown name" run_status 1 "$tmp/out" "$edgeprov" --config "$tmp/all.conf" plugins describe alpah
check "plugins describe: suggestion" contains "$tmp/out" "no plugin 'alpah' (did you mean 'alpha'?)"

# ---- actions ------------------------------------------------------------------------------
check "actions list" run_status 0 "$tmp/out" "$edgeprov" --config "$tmp/site.conf" actions list
check "actions list: test.count" contains "$tmp/out" "test.count (plugin alpha)"
check "actions run: ok" run_status 0 "$tmp/out" "$edgeprov" --config "$tmp/site.conf" actions run test.count steps=4
check "actions run: progress" contains "$tmp/out" "progress: 4/4 (100%) counting"
check "actions run: result" contains "$tmp/out" "action test.count: ok"
check "actions run: the plugin's INFO lines are not shown by default" lacks "$tmp/out" "counted to 4"
check "actions run --log-level info: ok" run_status 0 "$tmp/out" "$edgeprov" --config "$tmp/site.conf" actions run \
  --log-level info test.count steps=4
check "actions run --log-level info: the plugin's own line" contains "$tmp/out" "counted to 4"
check "actions run --log-level: a bad level is a usage error" run_status 2 "$tmp/out" "$edgeprov" --config \
  "$tmp/site.conf" actions run --log-level loud test.count
check "actions run --log-level: says which levels" contains "$tmp/out" "--log-level needs one of error, warn, info, debug (got 'loud')"
check "actions run: failure exits 1" run_status 1 "$tmp/out" "$edgeprov" --config "$tmp/site.conf" actions run test.count fail_at=2
check "actions run: failure message" contains "$tmp/out" "action test.count (plugin alpha): failed at step 2 as asked"
check "actions run: bad parameter" run_status 1 "$tmp/out" "$edgeprov" --config "$tmp/site.conf" actions run test.count steps=0
check "actions run: bad parameter named" contains "$tmp/out" "'steps': 0 is out of range [1, 1000]"

# ---- usage ----------------------------------------------------------------------------------
check "help" run_status 0 "$tmp/out" "$edgeprov" --help
check "help lists config check" contains "$tmp/out" "config check FILE"
check "unknown command exits 2" run_status 2 "$tmp/out" "$edgeprov" frobnicate

# ---- edgeprovd -------------------------------------------------------------------------------
check "edgeprovd --check: optional failures skipped" run_status 0 "$tmp/out" "$edgeprovd" --check --config "$tmp/all.conf"
check "edgeprovd: refused plugin logged with file" contains "$tmp/out" \
  "plugin $mixed/no-entry.so: refused: not a plugin (no entry symbol 'ep_plugin') (skipped)"
check "edgeprovd: ready" contains "$tmp/out" "msg=\"ready mode=nztp plugins=7 management=unix:$tmp/mgmt.sock"

cat >"$tmp/required.conf" <<CONF
$site
$dirs
plugins = { enabled = [ "storage-sqlite", "alpha", "flaky" ]; required = [ "flaky" ]; };
CONF
check "edgeprovd: required failure stops startup" run_status 1 "$tmp/out" "$edgeprovd" --check --config "$tmp/required.conf"
check "edgeprovd: says why" contains "$tmp/out" "not starting: required plugin 'flaky' ($mixed/init-fails.so): init failed"
check "edgeprovd: bad config refused" run_status 1 "$tmp/out" "$edgeprovd" --config "$tmp/misspelt.conf"
check "edgeprovd: bad config line" contains "$tmp/out" "misspelt.conf:3: unknown key 'plugns'"

"$edgeprovd" --config "$tmp/site.conf" >"$tmp/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'msg="ready' "$tmp/daemon.log" && break; sleep 0.05; done
kill -TERM "$pid"
wait "$pid"
check "edgeprovd: stops cleanly on SIGTERM" test $? -eq 0
check "edgeprovd: logged stop" contains "$tmp/daemon.log" 'msg="stopping on SIGTERM"'

finish
