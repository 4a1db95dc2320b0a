#!/usr/bin/env bash
# Integration test of one enrolled node flooding its reports (security review finding 3): a
# stream of 5,000 RUNNING progress reports with 16 log lines each, then 5,000 identical
# ReportStatus calls (Node's @grpc/grpc-js as the node, tests/interop/flood_call.mjs). With the
# default limits.* the floods get RESOURCE_EXHAUSTED saying when to retry, the store grows by
# less than 1 MB and the daemon log by less than 200 KB, the node is served again once it waited
# that long, the dropped log lines are summed up in one line, a real agent still completes the
# workflow and a real change of status is stored. Prints the measured figures.
# Usage: report_flood.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY # (before npm too)
. "$src/tests/interop/npm_install.sh"
cp "$src/tests/interop/flood_call.mjs" "$modules/"

loopback_site
# EP_FLOOD_LIMITS: extra settings for a run by hand, e.g. 'limits = { node_reports_per_s = 0; node_log_lines_per_s = 0; };'
# shows the old, unlimited behaviour (the test then fails).
[ -n "${EP_FLOOD_LIMITS:-}" ] && printf '%s\n' "$EP_FLOOD_LIMITS" >>"$tmp/site.conf"
check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
E="$build/bin/edgeprov --config $tmp/site.conf"

U=dddddddd-0000-4000-8000-000000000003
check "the node onboards" enroll_node $U FLOOD03
token=$(node_token "$tmp/node" $U)
N="env NODE_NO_WARNINGS=1 node $modules/flood_call.mjs $src/core/proto 127.0.0.1:$grpc $tmp/ca.pem $token"

store_bytes() { find "$tmp/data" -type f \( -name '*.db' -o -name '*.db-wal' -o -name '*.sqlite*' \) -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
log_bytes() { stat -c %s "$tmp/daemon.log"; }
field() { sed -n "s/.*\b$1=\([0-9-]*\).*/\1/p" "$2" | head -1; } # field NAME FILE
# grown WHAT BEFORE_STORE BEFORE_LOG: prints and checks the growth of the store and the log.
grown() {
  local store=$(($(store_bytes) - $2)) log=$(($(log_bytes) - $3))
  echo "     $1: the store grew by $store bytes, the daemon log by $log bytes"
  check "$1: the store grew by less than 1 MB ($store bytes)" test "$store" -lt 1048576
  check "$1: the daemon log grew by less than 200 KB ($log bytes)" test "$log" -lt 204800
}
# served WHEN FILE: after waiting the retry time the flood was told, one ReportStatus is taken.
served() {
  local retry
  retry=$(field retry_ms "$2")
  [ "${retry:--1}" -ge 0 ] && sleep "$(awk -v ms="$retry" 'BEGIN {print ms / 1000 + 0.05}')"
  $N status 1 0 "Micro-OS: after the $1 flood" >"$tmp/after"
  echo "     $1: after waiting ${retry} ms: $(cat "$tmp/after")"
  check "$1: after waiting the retry time the node is served" test "$(field ok "$tmp/after")" = 1
}

# ---- a stream of 5,000 progress reports, 16 log lines each ---------------------------------------
store0=$(store_bytes) log0=$(log_bytes)
$N progress 5000 16 >"$tmp/progress"
echo "     progress flood: $(cat "$tmp/progress")"
check "progress flood: the 5,000 reports were sent" test "$(field calls "$tmp/progress")" = 5000
check "progress flood: refused with RESOURCE_EXHAUSTED, saying when to retry" \
  contains "$tmp/progress" "first_error=8 more than 5 reports a second (limits.node_reports_per_s); retry in"
grown "progress flood" "$store0" "$log0"
check "progress flood: the refusals are logged once, not per report" \
  test "$(grep -c 'report refused' "$tmp/daemon.log")" -le 1
served progress "$tmp/progress"

# ---- a real agent still completes the workflow (its reports are state changes) --------------------
truncate -s 1M "$tmp/disk"
check "agent: the workflow completes after the flood" run_status 0 "$tmp/agent.log" node_agent --no-reboot --target-disk "$tmp/disk"
check "agent: no report was refused" lacks "$tmp/agent.log" "refused a report"
$E instance list --json >"$tmp/instances.json"
check "agent: the instance's status says done (a real change is stored)" python3 -c '
import json, sys
i = json.load(open(sys.argv[1]))
assert len(i) == 1 and i[0]["provisioning_status"]["message"].startswith("1/1: done"), i' "$tmp/instances.json"
check "the dropped log lines are summed up once logging resumes" \
  grep -qE "host $U: [0-9]+ log lines dropped \(over limits.node_log_lines_per_s\)" "$tmp/daemon.log"

# ---- 5,000 identical ReportStatus calls from the installed OS --------------------------------------
store0=$(store_bytes) log0=$(log_bytes)
$N status 5000 1 "OS up" >"$tmp/status"
echo "     status flood: $(cat "$tmp/status")"
check "status flood: some calls are taken (the instance becomes RUNNING)" test "$(field ok "$tmp/status")" -ge 1
check "status flood: refused with RESOURCE_EXHAUSTED, saying when to retry" \
  contains "$tmp/status" "first_error=8 more than 5 reports a second (limits.node_reports_per_s); retry in"
check "status flood: most calls are refused" test "$(field exhausted "$tmp/status")" -ge 4000
grown "status flood" "$store0" "$log0"
served status "$tmp/status"
$E host show $U >"$tmp/show"
check "a real change of status after the flood is stored" contains "$tmp/show" "Micro-OS: after the status flood"
$E instance list --json >"$tmp/instances.json"
check "the instance is RUNNING" python3 -c '
import json, sys
i = json.load(open(sys.argv[1]))
assert i[0]["current_state"] in ("INSTANCE_STATE_RUNNING", "RUNNING"), i' "$tmp/instances.json"

# ---- 2,000 calls with a token that is not valid: refused, and logged once a minute per address ---
log0=$(log_bytes)
env NODE_NO_WARNINGS=1 node "$modules/flood_call.mjs" "$src/core/proto" "127.0.0.1:$grpc" "$tmp/ca.pem" not-a-token \
  status 2000 0 "forged" >"$tmp/forged"
echo "     unauthenticated flood: $(cat "$tmp/forged")"
check "unauthenticated flood: every call is refused" test "$(field ok "$tmp/forged")" = 0
refusals=$(tail -c +$((log0 + 1)) "$tmp/daemon.log" | grep -c 'ReportStatus from 127.0.0.1 refused')
check "unauthenticated flood: logged, in at most two lines ($refusals)" test "$refusals" -ge 1 -a "$refusals" -le 2
finish
