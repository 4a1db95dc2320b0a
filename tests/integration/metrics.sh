#!/usr/bin/env bash
# Integration test of the Prometheus figures (issue 18, point 4): edgeprovd with listen.metrics
# on loopback answers GET /metrics in text format 0.0.4 that `promtool check metrics` accepts
# (lint included), before and after nodes onboard; the figures move as they do (onboardings,
# nodes by state, RPC calls by method and code, storage commits); nothing else is served there;
# no secret shows; a public listen.metrics without metrics.public is refused naming the key.
# Usage: metrics.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
command -v promtool >/dev/null || { echo "FAIL promtool is missing: run scripts/install-deps.sh (Debian's prometheus)"; exit 1; }

loopback_site
metrics=$(free_port)
sed -i "s|^listen = { |listen = { metrics = \"127.0.0.1:$metrics\"; |" "$tmp/site.conf"
check "the site sets listen.metrics" contains "$tmp/site.conf" "metrics = \"127.0.0.1:$metrics\""
check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
check "it logs where it serves the figures" contains "$tmp/daemon.log" \
  "serving Prometheus metrics at http://127.0.0.1:$metrics/metrics"
E="$build/bin/edgeprov --config $tmp/site.conf"

# scrape NAME: GET /metrics into $tmp/NAME (body) and $tmp/NAME.headers; fails unless 200.
scrape() {
  curl -sS --max-time 10 -D "$tmp/$1.headers" -o "$tmp/$1" -w '%{http_code}' "http://127.0.0.1:$metrics/metrics" \
    >"$tmp/$1.code" && grep -qx 200 "$tmp/$1.code"
}
# promtool_accepts NAME: `promtool check metrics` exits 0 and reports no problem.
promtool_accepts() {
  promtool check metrics <"$tmp/$1" >"$tmp/$1.promtool" 2>&1
  local status=$?
  if [ $status -ne 0 ] || [ -s "$tmp/$1.promtool" ]; then
    echo "---- promtool exit status $status:"; sed 's/^/    /' "$tmp/$1.promtool"; return 1
  fi
}
# value NAME SERIES: the value of the sample SERIES (name and labels, verbatim) in $tmp/NAME.
value() { awk -v s="$2" 'index($0, s " ") == 1 { print $NF; found = 1 } END { if (!found) print "absent" }' "$tmp/$1"; }
# at_least NAME SERIES N: the sample is there with a value >= N.
at_least() {
  local v
  v=$(value "$1" "$2")
  [ "$v" != absent ] && awk -v v="$v" -v n="$3" 'BEGIN { exit !(v + 0 >= n + 0) }' && return 0
  echo "---- $2 is $v in $1, expected at least $3"; return 1
}

check "GET /metrics answers 200" scrape before
check "as text format 0.0.4" grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/before.headers"
check "promtool check metrics accepts it" promtool_accepts before
for name in edgeprov_nodes edgeprov_onboardings_total edgeprov_onboarding_failures_total \
  edgeprov_workflow_duration_seconds edgeprov_action_duration_seconds edgeprov_workflow_streamed_bytes_total \
  edgeprov_artifact_served_bytes_total edgeprov_rpc_calls_total edgeprov_rpc_calls_open \
  edgeprov_storage_txn_duration_seconds edgeprov_https_connections_open; do
  check "it has $name" contains "$tmp/before" "# TYPE $name "
done
check "no node onboarded yet" test "$(value before edgeprov_onboardings_total)" = 0
check "no node ONBOARDED yet" test "$(value before 'edgeprov_nodes{state="ONBOARDED"}')" = 0
check "no node at all" test "$(value before 'edgeprov_nodes{state="NEW"}')" = 0
check "only GET /metrics is served there" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics/")" = 404
check "... not POST" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$metrics/metrics")" = 405

U1=eeeeeeee-0000-4000-8000-000000000001
U2=eeeeeeee-0000-4000-8000-000000000002
check "a first node onboards" enroll_node $U1 METRICS01
secret1=$(sed -n 's/^client_secret=//p' "$tmp/node/state/credentials")
rm -rf "$tmp/node"
check "a second node onboards" enroll_node $U2 METRICS02
secret2=$(sed -n 's/^client_secret=//p' "$tmp/node/state/credentials")
$E host add --uuid eeeeeeee-0000-4000-8000-000000000003 --serial METRICS03 >/dev/null
sleep 2.2 # the node counts are cached for 2 s
check "GET /metrics answers 200 again" scrape after
check "promtool check metrics accepts it again" promtool_accepts after
check "onboardings counted" test "$(value after edgeprov_onboardings_total)" = 2
check "no onboarding failed" test "$(value after edgeprov_onboarding_failures_total)" = 0
check "nodes by state: 2 ONBOARDED" test "$(value after 'edgeprov_nodes{state="ONBOARDED"}')" = 2
check "nodes by state: 1 NEW (registered, not seen yet)" test "$(value after 'edgeprov_nodes{state="NEW"}')" = 1
check "nodes by state: none REGISTERED" test "$(value after 'edgeprov_nodes{state="REGISTERED"}')" = 0
check "RPC calls counted by method and code" at_least after \
  'edgeprov_rpc_calls_total{method="/onboardingmgr.v1.NonInteractiveOnboardingService/OnboardNodeStream",code="OK"}' 2
check "management calls too" at_least after 'edgeprov_rpc_calls_total{method="/edgeprov.v1.Management/AddHost",code="OK"}' 3
check "storage commits timed" at_least after edgeprov_storage_txn_duration_seconds_count 3
check "the secrets were read for the next check" test -n "$secret1" -a -n "$secret2"
check "no node's secret in the figures" absent -F -e "$secret1" -e "$secret2" "$tmp/before" "$tmp/after"
check "no TLS key in the figures" absent -F -f <(grep -v -- ----- "$tmp/tls.key") "$tmp/after"

# A public address is refused unless metrics.public, naming the key and why.
sed "s|metrics = \"127.0.0.1:$metrics\"|metrics = \"0.0.0.0:$(free_port)\"|" "$tmp/site.conf" >"$tmp/public.conf"
check "a public listen.metrics fails edgeprovd --check" run_status 1 "$tmp/public.out" \
  "$build/bin/edgeprovd" --config "$tmp/public.conf" --check
check "... naming the key and why" contains "$tmp/public.out" \
  "'listen.metrics': 0.0.0.0:"
check "... the fleet's size shows" contains "$tmp/public.out" "the figures show the fleet's size and activity"
check "... and what to set" contains "$tmp/public.out" "set metrics.public = true"
check "edgeprovd stops" stop_daemon
finish
