#!/usr/bin/env bash
# Integration test of what an operator sees of a rollout (issue 18), against a real edgeprovd
# (storage-sqlite, auth-local, and the test plugin osact whose workflow is two test.count
# actions: 20 steps of 1 MiB, 150 ms each, logging a line with a password at each step; then 3
# quick steps) and real edgeprov-agent processes on fake sysroots:
#   - `edgeprov watch HOST --until running`, plain (one line per change) and --json (one object
#     per change): the node's states, its action, growing bytes; exit 0 once RUNNING, 1 when a
#     node's workflow fails; `--until onboarded` once approved; usage errors exit 2;
#   - `edgeprov logs HOST`: every line kept, in order, the password masked (and nowhere in the
#     store or the daemon log), --json, --run, --follow (lines arriving while it runs);
#   - `edgeprov host show HOST`: the timeline (connected, onboarded, each action with its bytes,
#     reboot, RUNNING), and in --json;
#   - `edgeprov events`: workflow changes.
# Usage: visibility.sh SOURCE_DIR BUILD_DIR TEST_PLUGIN_DIR TEST_PLUGIN_REQUIRED_DIR TEST_PLUGIN_NODE_DIR
set -u
src=$1 build=$2 node_plugins=$5
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
make_test_tls "$tmp"
grpc=$(free_port) https=$(free_port)
cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins", "$node_plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
provisioning = { mode = "nztp"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "osact" ]; };
limits = { node_log_lines_per_s = 1000; node_log_lines_burst = 1000; };
osact = { image_url = "file:///srv/osact.img";
          template = "actions = ( { action = \"test.count\"; params = { steps = \"20\"; delay_ms = \"150\"; step_bytes = \"1048576\"; say = \"copying; password=hunter2\"; }; }, { action = \"test.count\"; params = { steps = \"3\"; say = \"settling\"; }; } );"; };
CONF
check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log" || { finish; exit 1; }
E="$build/bin/edgeprov --config $tmp/site.conf"
mkdir -p "$tmp/nodeplugins" && cp "$node_plugins/osact.so" "$tmp/nodeplugins/"
# agent DIR ARGS...: the agent of the node whose sysroot is DIR, given a minute.
agent() {
  local dir=$1
  shift
  timeout 60 "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" \
    --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot "$dir" --state-dir "$dir/state" --backoff-ms 100 \
    --backoff-max-ms 200 "$@"
}

# ---- usage ----------------------------------------------------------------------------------
check "watch --until needs running or onboarded (exit 2)" run_status 2 "$tmp/out" $E watch --until never
check "... and says so" contains "$tmp/out" "Usage: edgeprov watch"
check "watch --help (exit 0)" run_status 0 "$tmp/out" $E watch --help
check "logs --help (exit 0)" run_status 0 "$tmp/out" $E logs --help
check "logs without a host (exit 2)" run_status 2 "$tmp/out" $E logs
check "logs of a malformed UUID (exit 1)" run_status 1 "$tmp/out" $E logs not-a-uuid
check "... names the field" contains "$tmp/out" "HOST_UUID"
check "logs of an unknown host (exit 1)" run_status 1 "$tmp/out" $E logs aaaaaaaa-0000-4000-8000-0000000000ff
check "... says there is no such host" contains "$tmp/out" "no host"
check "watch of an unknown host (exit 1)" run_status 1 "$tmp/out" $E watch aaaaaaaa-0000-4000-8000-0000000000ff

# ---- one node from power-on to RUNNING, watched -----------------------------------------------
U1=aaaaaaaa-0000-4000-8000-000000000001
$E host add --uuid $U1 --serial VISNODE01 --os osact-1 --auto-onboard >/dev/null
node_sysroot "$tmp/node" $U1 VISNODE01
timeout 120 $E watch $U1 --until running >"$tmp/watch.txt" 2>&1 &
watch_plain=$!
timeout 120 $E watch $U1 --until running --json >"$tmp/watch.json" 2>&1 &
watch_json=$!
timeout 120 $E logs $U1 --follow >"$tmp/follow.txt" 2>&1 &
follow=$!
pids+=($watch_plain $watch_json $follow)
sleep 0.5
check "the node runs its workflow" run_status 0 "$tmp/agent.log" agent "$tmp/node" --plugins "$tmp/nodeplugins" --no-reboot
check "the installed OS reports in" run_status 0 "$tmp/installed.log" agent "$tmp/node" --plugins "$tmp/nodeplugins" --installed
check "watch --until running exits 0 once it is RUNNING" wait $watch_plain
check "watch --until running --json exits 0 too" wait $watch_json
cat "$tmp/watch.txt" | head -40
check "plain watch: one line per change, the node's UUID on each" \
  sh -c "[ \$(grep -c '$U1' '$tmp/watch.txt') -ge 5 ] && [ \$(grep -vc '$U1' '$tmp/watch.txt') -eq 0 ]"
check "plain watch: the action with a progress bar" grep -qE "PROVISIONING +test\.count +\[#+\.*\] +[0-9]+% [0-9.]+ MiB/20\.0 MiB" "$tmp/watch.txt"
check "plain watch: a rate and an ETA while it streams" grep -qE "MiB/20\.0 MiB +[0-9.]+ (KiB|MiB)/s +[0-9]+s" "$tmp/watch.txt"
check "plain watch: ends RUNNING" sh -c "tail -n 1 '$tmp/watch.txt' | grep -q RUNNING"
check "json watch: every line is a JSON object of the node" python3 - "$tmp/watch.json" "$U1" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert rows and all(r["host"] == sys.argv[2] for r in rows), rows
states = [r["state"] for r in rows]
assert "PROVISIONING" in states and states[-1] == "RUNNING", states
done = [r["bytes_done"] for r in rows if r["action"] == "test.count" and r["bytes_total"] == 20 * 1048576]
assert len(done) >= 3 and done == sorted(done) and done[-1] > done[0], done
assert all(r["elapsed_s"] is None or r["elapsed_s"] >= 0 for r in rows)
PY

# ---- its log ------------------------------------------------------------------------------------
check "logs: exit 0" run_status 0 "$tmp/logs.txt" $E logs $U1
check "logs: every step of the first action, in order" sh -c \
  "grep -o 'step [0-9]*: copying' '$tmp/logs.txt' | sed -n '1p;20p' | tr '\n' ' ' | grep -q '^step 1: copying step 20: copying'"
check "logs: the second action's lines" grep -qE "run [0-9]+ test\.count: step 3: settling" "$tmp/logs.txt"
check "logs: the password is masked" grep -q "password=\*\*\*\*\*\*\*\*" "$tmp/logs.txt"
check "logs: ... and nowhere in the output" lacks "$tmp/logs.txt" "hunter2"
check "logs: not in the daemon log either (test_node_log checks the store)" lacks "$tmp/daemon.log" "hunter2"
# 29 lines: each action's attempt and SUCCESS lines (the agent's), 20 steps and "counted to
# 20", 3 steps and "counted to 3".
check "logs --json: one object a line, numbered, of one run" python3 - <<PY
import json, subprocess
out = subprocess.run("$E logs $U1 --json".split(), capture_output=True, text=True, check=True).stdout
lines = [json.loads(l) for l in out.splitlines()]
assert len(lines) == 29, len(lines)
assert [l["seq"] for l in lines] == list(range(1, 30))
assert lines[0]["text"] == "action 1/2 test.count: attempt 1 of 1", lines[0]
assert lines[-1]["text"].startswith("action test.count: SUCCESS in "), lines[-1]
assert len({l["run"] for l in lines}) == 1 and all(l["action_name"] == "test.count" for l in lines)
assert {l["action"] for l in lines} == {0, 1}
open("$tmp/run", "w").write(str(lines[0]["run"]))
PY
check "logs --run: the lines of that run" sh -c "[ \$($E logs $U1 --run \$(cat $tmp/run) | wc -l) -eq 29 ]"
check "logs --run of another run: none" sh -c "[ -z \"\$($E logs $U1 --run 1)\" ]"
kill $follow 2>/dev/null
check "logs --follow printed the lines as they came" sh -c "[ \$(grep -c 'test.count: ' '$tmp/follow.txt') -eq 29 ]"

# ---- its timeline -------------------------------------------------------------------------------
$E host show $U1 >"$tmp/show.txt"
cat "$tmp/show.txt"
check "host show: a timeline" contains "$tmp/show.txt" "timeline:"
check "timeline: the Micro-OS connected" contains "$tmp/show.txt" "Micro-OS connected, onboarding"
check "timeline: onboarded" contains "$tmp/show.txt" "onboarded (credentials handed out)"
check "timeline: the first action, its duration and bytes" grep -qE "\+[0-9]+s +[0-9]+s +test\.count  SUCCESS  20\.0 MiB of 20\.0 MiB" "$tmp/show.txt"
check "timeline: the reboot" contains "$tmp/show.txt" "workflow done, rebooting into the installed OS"
check "timeline: RUNNING" contains "$tmp/show.txt" "RUNNING (the installed OS reported in)"
check "host show --json: the timeline's phases" python3 - <<PY
import json, subprocess
h = json.loads(subprocess.run("$E host show $U1 --json".split(), capture_output=True, text=True, check=True).stdout)
phases = [p["phase"] for p in h["timeline"]]
assert phases[-1].startswith("RUNNING"), phases
actions = [p for p in h["timeline"] if p.get("state")]
assert len(actions) == 2 and actions[0]["bytes_done"] == 20 * 1048576 and actions[0]["end"], actions
PY

# ---- events -------------------------------------------------------------------------------------
$E events >"$tmp/events.txt"
check "events: the workflow's changes" grep -qE "workflow [0-9a-f-]{36} put: host $U1, 1/2: test\.count" "$tmp/events.txt"
check "events: the log's growth" grep -q "log of host $U1: 29 lines" "$tmp/events.txt"

# ---- a failing node, and --until onboarded -------------------------------------------------------
U2=aaaaaaaa-0000-4000-8000-000000000002
$E host add --uuid $U2 --serial VISNODE02 --os osact-1 --auto-onboard >/dev/null
node_sysroot "$tmp/node2" $U2 VISNODE02
mkdir -p "$tmp/noplugins"
timeout 60 $E watch $U2 --until running >"$tmp/watch2.txt" 2>&1 &
watch_fail=$!
pids+=($watch_fail)
agent "$tmp/node2" --plugins "$tmp/noplugins" --no-reboot >"$tmp/agent2.log" 2>&1 &
pids+=($!)
wait $watch_fail
check "watch --until running exits 1 when the node's workflow fails" test $? -eq 1
check "... and shows it FAILED" grep -q "FAILED" "$tmp/watch2.txt"

U3=aaaaaaaa-0000-4000-8000-000000000003
$E host add --uuid $U3 --serial VISNODE03 --os osact-1 >/dev/null
node_sysroot "$tmp/node3" $U3 VISNODE03
timeout 60 $E watch $U3 --until onboarded --json >"$tmp/watch3.json" 2>&1 &
watch_onboarded=$!
pids+=($watch_onboarded)
agent "$tmp/node3" --onboard-only >"$tmp/agent3.log" 2>&1 &
pids+=($!)
sleep 1
check "watch --until onboarded waits while the node waits for approval" kill -0 $watch_onboarded
$E host approve $U3 >/dev/null
check "... and exits 0 once it is onboarded" wait $watch_onboarded
check "... its last line says ONBOARDED" sh -c "tail -n 1 '$tmp/watch3.json' | grep -q '\"state\": *\"ONBOARDED\"'"

# ---- the boot log of a node whose onboarding is refused --------------------------------------
U4=aaaaaaaa-0000-4000-8000-000000000004
$E host add --uuid $U4 --serial VISNODE04 --os osact-1 --auto-onboard >/dev/null
$E host invalidate $U4 >/dev/null
node_sysroot "$tmp/node4" $U4 VISNODE04
printf 'Linux version 6.1.0-test\nedgeprov-microos: network up\nenv: API_TOKEN=hunter2-boot\n' >"$tmp/boot.log"
agent "$tmp/node4" --onboard-only --boot-log "$tmp/boot.log" >"$tmp/agent4.log" 2>&1 &
agent4=$!
pids+=($agent4)
for _ in $(seq 100); do grep -q "boot log" "$tmp/agent4.log" && break; sleep 0.1; done
kill $agent4 2>/dev/null
check "a refused node sends its boot log" contains "$tmp/agent4.log" "sent 3 lines of the boot log ($tmp/boot.log) to the orchestrator"
$E logs $U4 >"$tmp/logs4.txt"
check "... edgeprov logs shows it, marked" grep -q "run 0 boot log (no token, from 127.0.0.1): edgeprov-microos: network up" "$tmp/logs4.txt"
check "... masked" grep -q "API_TOKEN=\*\*\*\*\*\*\*\*" "$tmp/logs4.txt"
check "... the secret nowhere" lacks "$tmp/logs4.txt" "hunter2"

finish
