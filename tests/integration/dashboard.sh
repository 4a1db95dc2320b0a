#!/usr/bin/env bash
# Integration test of the web dashboard (issue 18, point 5), against a real edgeprovd with
# listen.dashboard on loopback (over TLS: the site has tls.cert) and an operator token, and a
# node provisioned by a real edgeprov-agent (the test plugin osact: 10 steps of 1 MiB, logging
# a line with a password at each):
#   - without auth.operator_token_file the daemon refuses to start, naming the settings;
#   - the page (HTML, CSS, JS) is served without the token and names no other origin; every
#     /api/ request without the token, or with a wrong one, is 401; with it, 200 and JSON of
#     the documented shapes (fleet rows, a node's timeline and log); no secret in any answer;
#   - /api/events: server-sent events, a "change" naming the host while it provisions, the
#     catch-up after ?after= and Last-Event-ID; more streams than dashboard.streams_max are 503;
#   - headless Chromium (Debian's chromium) runs the page's JavaScript: the DOM holds the fleet
#     table's row of the node with its state, and the node page its timeline drawn in SVG (bars)
#     and a log line; a screenshot of each is kept in BUILD_DIR/test-output/.
# Usage: dashboard.sh SOURCE_DIR BUILD_DIR TEST_PLUGIN_DIR TEST_PLUGIN_REQUIRED_DIR TEST_PLUGIN_NODE_DIR
set -u
src=$1 build=$2 node_plugins=$5
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
chromium=$(command -v chromium || command -v chromium-browser) ||
  { echo "FAIL chromium is missing: run scripts/install-deps.sh (Debian's chromium)"; exit 1; }
out="$build/test-output"
mkdir -p "$out"
make_test_tls "$tmp"
grpc=$(free_port) https=$(free_port) dash=$(free_port)
TOKEN=dashboard-operator-token-0123456789
printf '%s\n' "$TOKEN" >"$tmp/operator.token"
chmod 600 "$tmp/operator.token"
site() { # site FILE EXTRA_AUTH: the site, with EXTRA_AUTH in its auth group
  cat >"$1" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https";
           dashboard = "127.0.0.1:$dash"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins", "$node_plugins" ]; };
tls = { cert = "$tmp/tls.pem"; key = "$tmp/tls.key"; ca = "$tmp/ca.pem"; };
auth = { $2 };
dashboard = { streams_max = 2; };
provisioning = { mode = "nztp"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "osact" ]; };
limits = { node_log_lines_per_s = 1000; node_log_lines_burst = 1000; };
osact = { image_url = "file:///srv/osact.img";
          template = "actions = ( { action = \"test.count\"; params = { steps = \"20\"; delay_ms = \"300\"; step_bytes = \"1048576\"; say = \"copying; password=hunter2\"; }; }, { action = \"test.count\"; params = { steps = \"2\"; say = \"settling\"; }; } );"; };
CONF
}

# ---- no operator token: no dashboard ----------------------------------------------------------
site "$tmp/notoken.conf" ""
check "without auth.operator_token_file edgeprovd does not start (exit 1)" \
  run_status 1 "$tmp/notoken.log" timeout 20 "$build/bin/edgeprovd" --config "$tmp/notoken.conf"
check "... naming listen.dashboard" contains "$tmp/notoken.log" "'listen.dashboard'"
check "... and auth.operator_token_file" contains "$tmp/notoken.log" "auth.operator_token_file"

site "$tmp/site.conf" "operator_token_file = \"$tmp/operator.token\";"
check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log" || { finish; exit 1; }
check "it logs where it serves the dashboard" contains "$tmp/daemon.log" "serving the dashboard at https://127.0.0.1:$dash/"
E="$build/bin/edgeprov --config $tmp/site.conf"
base="https://127.0.0.1:$dash"

# get NAME PATH [CURL_ARGS...]: GET PATH into $tmp/NAME (body, headers in NAME.headers); prints the status.
get() {
  local name=$1 path=$2
  shift 2
  curl -sS --max-time 10 --cacert "$tmp/ca.pem" -D "$tmp/$name.headers" -o "$tmp/$name" -w '%{http_code}' "$@" \
    "$base$path"
}
auth=(-H "Authorization: Bearer $TOKEN")

# ---- the page and the API's door ------------------------------------------------------------
check "GET / is the page, without a token" test "$(get index /)" = 200
check "... as HTML" grep -qi '^content-type: text/html' "$tmp/index.headers"
check "... loading dashboard.js" contains "$tmp/index" '<script src="dashboard.js"'
check "GET /dashboard.js" test "$(get js /dashboard.js)" = 200
check "... as JavaScript" grep -qi '^content-type: text/javascript' "$tmp/js.headers"
check "GET /dashboard.css" test "$(get css /dashboard.css)" = 200
check "the page names no other origin (no http:// or https:// but the SVG namespace)" \
  absent -E 'https?://' <(cat "$tmp/index" "$tmp/css" <(grep -v 'http://www.w3.org/2000/svg' "$tmp/js"))
check "the assets are the repository's, embedded" cmp -s "$tmp/js" "$src/core/dashboard/dashboard.js"
for path in /api/fleet /api/node/aaaaaaaa-0000-4000-8000-000000000001 /api/events; do
  check "GET $path without the token: 401" test "$(get noauth $path)" = 401
  check "GET $path with a wrong token: 401" test "$(get badauth $path -H "Authorization: Bearer x$TOKEN")" = 401
done
check "... the 401 says what is needed" contains "$tmp/noauth" "operator token is required"
check "POST is not served (405)" test "$(get post /api/fleet -X POST "${auth[@]}")" = 405
check "an unknown path: 404" test "$(get unknown /api/nothing "${auth[@]}")" = 404
check "GET /api/fleet with the token: 200, no host yet" test "$(get fleet0 /api/fleet "${auth[@]}")" = 200
check "... JSON: revision, hosts [], next null" python3 - "$tmp/fleet0" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
assert b["hosts"] == [] and b["next"] is None and b["revision"] >= 0, b
PY
check "a malformed node UUID: 400" test "$(get bad /api/node/not-a-uuid "${auth[@]}")" = 400
check "an unknown node: 404" test "$(get none /api/node/aaaaaaaa-0000-4000-8000-0000000000ff "${auth[@]}")" = 404

# ---- the page in headless Chromium ---------------------------------------------------------------
# chrome NAME FRAGMENT: the page at /#FRAGMENT, its DOM after the JavaScript ran in $tmp/NAME.html
# and a screenshot in $out/NAME.png. live=0: no event stream (it would hold Chromium's virtual
# time, which waits for open fetches); the stream is tested above.
chrome() {
  local flags=(--headless --no-sandbox --disable-gpu --ignore-certificate-errors --no-first-run --disable-extensions
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$tmp/chrome-$1"
    --virtual-time-budget=8000 --window-size=1280,800)
  timeout 90 "$chromium" "${flags[@]}" --dump-dom "$base/#$2" >"$tmp/$1.html" 2>"$tmp/$1.err" &&
    timeout 90 "$chromium" "${flags[@]}" --screenshot="$out/$1.png" "$base/#$2" >>"$tmp/$1.err" 2>&1
  local status=$?
  [ $status -eq 0 ] || { echo "---- chromium exit status $status:"; tail -n 20 "$tmp/$1.err"; }
  return $status
}
# ---- a node provisions while an event stream is open -----------------------------------------
U1=dddddddd-0000-4000-8000-000000000001
curl -sS -N --max-time 25 --cacert "$tmp/ca.pem" "${auth[@]}" "$base/api/events" >"$tmp/events.txt" 2>&1 &
events_pid=$!
pids+=($events_pid)
sleep 0.5
$E host add --uuid $U1 --serial DASHNODE01 --site lab-1 --os osact-1 --auto-onboard >/dev/null
node_sysroot "$tmp/node" $U1 DASHNODE01
mkdir -p "$tmp/nodeplugins" && cp "$node_plugins/osact.so" "$tmp/nodeplugins/"
agent() {
  timeout 60 "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" \
    --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot "$tmp/node" --state-dir "$tmp/node/state" \
    --backoff-ms 100 --backoff-max-ms 200 "$@"
}
agent --plugins "$tmp/nodeplugins" --no-reboot >"$tmp/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
# The fleet mid-way: the node provisions with a growing byte count.
mid=
for _ in $(seq 100); do
  if [ "$(get fleetmid /api/fleet "${auth[@]}")" = 200 ] && python3 - "$tmp/fleetmid" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["hosts"][0]
sys.exit(0 if h["state"] == "PROVISIONING" and 0 < h["bytes_done"] < h["bytes_total"] else 1)
PY
  then mid=1; break; fi
  sleep 0.1
done
check "the fleet shows the node PROVISIONING with bytes done of total mid-way" test -n "$mid"
check "... as a documented row" python3 - "$tmp/fleetmid" "$U1" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))["hosts"][0]
keys = {"uuid", "serial", "site", "state", "host_state", "instance_state", "status", "action", "action_index", "actions",
        "action_state", "bytes_done", "bytes_total", "started_at", "elapsed_s"}
assert keys <= set(h), sorted(keys - set(h))
assert h["uuid"] == sys.argv[2] and h["serial"] == "DASHNODE01" and h["site"] == "lab-1", h
assert h["action"] == "test.count" and h["action_index"] == 1 and h["actions"] == 2, h
assert h["bytes_total"] == 20 * 1048576 and h["instance_state"] == "PROVISIONING", h
assert h["elapsed_s"] is not None and h["elapsed_s"] >= 0, h
PY
check "Chromium loads the fleet page mid-way" chrome dashboard-fleet-progress "token=$TOKEN&live=0"
check "... the node's row has a progress bar of its bytes" python3 - "$tmp/dashboard-fleet-progress.html" "$U1" <<'PY'
import re, sys
dom = open(sys.argv[1]).read()
row = re.search(r'<tr data-uuid="%s">.*?</tr>' % sys.argv[2], dom, re.S)
assert row, "no row"
bar = re.search(r'<div class="bar" role="progressbar" aria-valuenow="(\d+)">.*?<span class="label">(\d+)% [0-9.]+ MiB / 20\.0 MiB</span>', row.group(0), re.S)
assert bar and 0 < int(bar.group(1)) < 100, row.group(0)
assert ">PROVISIONING<" in row.group(0)
PY
check "the node runs its workflow" wait $agent_pid
check "the installed OS reports in" run_status 0 "$tmp/installed.log" agent --plugins "$tmp/nodeplugins" --installed
sleep 1.5 # the last changes reach the stream
kill $events_pid 2>/dev/null
check "the event stream said it is ready, with a revision" grep -qE '^event: ready$' "$tmp/events.txt"
check "... and told the changes, each with its revision as id" python3 - "$tmp/events.txt" "$U1" <<'PY'
import json, sys
blocks = [b for b in open(sys.argv[1]).read().split("\n\n") if "event: change" in b]
assert len(blocks) >= 10, len(blocks)
ids = []
kinds = set()
for b in blocks:
    f = dict(l.split(": ", 1) for l in b.strip().split("\n") if not l.startswith(":") and ": " in l)
    d = json.loads(f["data"])
    assert int(f["id"]) == d["revision"], b
    ids.append(d["revision"])
    kinds.add(d["kind"])
    assert d["host"] in (sys.argv[2], None), d
assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
assert {"host", "instance", "workflow", "log"} <= kinds, kinds
assert any(json.loads(dict(l.split(": ", 1) for l in b.split("\n") if ": " in l)["data"])["host"] == sys.argv[2] for b in blocks)
PY
check "the stream is text/event-stream" test "$(curl -sS --max-time 2 --cacert "$tmp/ca.pem" "${auth[@]}" -o /dev/null \
  -w '%{content_type}' "$base/api/events" 2>/dev/null)" = "text/event-stream; charset=utf-8"

# ---- the API's answers for the provisioned node ------------------------------------------------
check "GET /api/fleet: 200" test "$(get fleet /api/fleet "${auth[@]}")" = 200
check "... the node RUNNING, 1 host" python3 - "$tmp/fleet" "$U1" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
assert len(b["hosts"]) == 1 and b["hosts"][0]["uuid"] == sys.argv[2], b
h = b["hosts"][0]
assert h["state"] == "RUNNING" and h["instance_state"] == "RUNNING" and h["action"] is None, h
PY
check "GET /api/fleet?limit=1: a page" test "$(get page /api/fleet?limit=1 "${auth[@]}")" = 200
check "GET /api/fleet?limit=100000: 400" test "$(get bigpage /api/fleet?limit=100000 "${auth[@]}")" = 400
check "GET /api/node/UUID: 200" test "$(get nodejson /api/node/$U1 "${auth[@]}")" = 200
# A host that asks for full-disk encryption (it never provisions: osact-1's template encrypts nothing).
UF=dddddddd-0000-4000-8000-0000000000f1
$E host add --uuid $UF --serial DASHNODEF1 --site lab-1 --os osact-1 --fde >/dev/null
check "GET /api/node/UUID of a host added with --fde: its fde is true" sh -c \
  "test \"\$1\" = 200 && python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))[\"host\"][\"fde\"] is True' '$tmp/nodefde'" \
  _ "$(get nodefde /api/node/$UF "${auth[@]}")"
check "... host, instance, workflow, timeline (moments and actions with bytes) and log" python3 - "$tmp/nodejson" "$U1" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
assert b["host"]["uuid"] == sys.argv[2] and b["host"]["state"] == "RUNNING", b["host"]
assert b["instance"]["state"] == "RUNNING" and b["workflow"]["generation"] >= 1, b
assert b["host"]["fde"] is False and b["instance"]["fde"] is False, (b["host"], b["instance"])
acts = [a for a in b["workflow"]["actions"]]
assert [a["state"] for a in acts] == ["SUCCESS", "SUCCESS"], acts
assert all("params" not in a for a in acts)
tl = b["timeline"]
phases = [p["phase"] for p in tl]
assert "Micro-OS connected, onboarding" in phases and "onboarded (credentials handed out)" in phases, phases
assert any(p.startswith("RUNNING") for p in phases), phases
steps = [p for p in tl if p["kind"] == "action"]
assert len(steps) == 2 and steps[0]["bytes_total"] == 20 * 1048576 and steps[0]["state"] == "SUCCESS", steps
assert all(p["end"] is None or p["end"] >= p["start"] for p in tl), tl
assert [p["start"] for p in tl] == sorted(p["start"] for p in tl), tl
log = b["log"]
# 28 lines: per action the agent's attempt and SUCCESS lines, its steps and "counted to N"
assert len(log) == 28 and [l["seq"] for l in log] == list(range(1, 29)), [l["seq"] for l in log]
assert log[0]["text"] == "action 1/2 test.count: attempt 1 of 1", log[0]
assert log[1]["text"].startswith("step 1: copying") and "password=********" in log[1]["text"], log[1]
PY
check "GET /api/node/UUID?lines=3: the last 3 lines" python3 - "$(get node3 "/api/node/$U1?lines=3" "${auth[@]}")" "$tmp/node3" <<'PY'
import json, sys
assert sys.argv[1] == "200"
log = json.load(open(sys.argv[2]))["log"]
assert [l["seq"] for l in log] == [26, 27, 28], log
PY
client_secret=$(sed -n 's/^client_secret=//p' "$tmp/node/state/credentials")
check "the node has a client secret to look for" test -n "$client_secret"
for f in fleetmid fleet nodejson node3 events.txt; do
  check "no secret in $f (the password, the token, the node's client secret)" \
    absent -F -e hunter2 -e "$TOKEN" -e "$client_secret" "$tmp/$f"
done

# ---- catching up, and the cap on streams -------------------------------------------------------
# (Each stream above is gone: the server ends a waiting stream whose client left within a tick.)
first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["revision"])' "$tmp/fleet0")
curl -sS -N --max-time 2 --cacert "$tmp/ca.pem" "${auth[@]}" "$base/api/events?after=$first" >"$tmp/after.txt" 2>/dev/null
check "?after=REV replays the changes since" sh -c "[ \$(grep -c '^event: change' '$tmp/after.txt') -ge 10 ]"
curl -sS -N --max-time 2 --cacert "$tmp/ca.pem" "${auth[@]}" -H "Last-Event-ID: $first" "$base/api/events" \
  >"$tmp/lastid.txt" 2>/dev/null
check "... so does Last-Event-ID" cmp -s <(grep '^id: ' "$tmp/after.txt" | tail -n +2) <(grep '^id: ' "$tmp/lastid.txt" | tail -n +2)
curl -sS -N --max-time 2 --cacert "$tmp/ca.pem" "${auth[@]}" "$base/api/events?after=999999999" >"$tmp/future.txt" 2>/dev/null
check "a revision the store has not reached: resync" grep -q '^event: resync$' "$tmp/future.txt"

# ---- the page in headless Chromium, the node RUNNING ---------------------------------------------
check "Chromium loads the fleet page" chrome dashboard-fleet "token=$TOKEN&live=0"
check "... the DOM has the fleet table's row of the node with its state, drawn by the JavaScript" python3 - \
  "$tmp/dashboard-fleet.html" "$U1" <<'PY'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(s):
        super().__init__(); s.stack = []; s.row = None; s.rows = {}; s.cells = []
    def handle_starttag(s, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and a.get("data-uuid"): s.row = a["data-uuid"]; s.rows[s.row] = []
        if s.row and tag == "td": s.rows[s.row].append("")
    def handle_endtag(s, tag):
        if tag == "tr": s.row = None
    def handle_data(s, d):
        if s.row and s.rows[s.row]: s.rows[s.row][-1] += d
p = P(); p.feed(open(sys.argv[1]).read())
row = p.rows.get(sys.argv[2])
assert row, ("no row of the node", p.rows)
assert row[0] == sys.argv[2] and row[1] == "DASHNODE01" and row[2] == "lab-1" and row[3] == "RUNNING", row
PY
check "Chromium loads the node's page" chrome dashboard "node=$U1&token=$TOKEN&live=0"
check "... the DOM has its timeline drawn as SVG bars on a time axis, and its log lines" python3 - \
  "$tmp/dashboard.html" "$U1" <<'PY'
import re, sys
dom = open(sys.argv[1]).read()
svg = re.search(r'<svg[^>]*id="timeline-svg".*?</svg>', dom, re.S)
assert svg, "no timeline SVG"
svg = svg.group(0)
bars = re.findall(r'<rect[^>]*class="phase SUCCESS"', svg)
assert len(bars) == 2, bars
assert len(re.findall(r'<path[^>]*class="moment"', svg)) >= 4, "moments"
assert re.search(r'<g class="axis">.*?<text[^>]*>\+0s</text>', svg, re.S), "no time axis"
assert "Micro-OS connected, onboarding" in svg and "test.count" in svg
assert re.search(r'<div class="line"><span class="meta">[^<]*test\.count </span>step 1: copying; password=\*+</div>', dom), "no log line"
assert sys.argv[2] in dom and ">RUNNING<" in dom
assert "<dt>disk encryption</dt><dd>not asked by the host or instance</dd>" in dom, "no disk encryption fact"
PY
check "the pages name no other origin in a src or href" python3 - "$tmp/dashboard-fleet.html" "$tmp/dashboard.html" "$dash" <<'PY'
import re, sys
for f in sys.argv[1:3]:
    for attr, url in re.findall(r'\b(src|href)="([^"]*)"', open(f).read()):
        assert not re.match(r'(?i)^(https?:)?//', url) or url.startswith("https://127.0.0.1:%s/" % sys.argv[3]), (f, attr, url)
PY
check "a screenshot of the node page is written" sh -c "head -c 8 '$out/dashboard.png' | od -An -c | grep -q 'P   N   G'"
check "... and of the fleet" sh -c "head -c 8 '$out/dashboard-fleet.png' | od -An -c | grep -q 'P   N   G'"
echo "screenshots: $out/dashboard.png $out/dashboard-fleet.png"

check "the page goes live in Chromium (its event stream says ready)" chrome dashboard-live "token=$TOKEN"
check "... the live badge is on" grep -q 'class="live on"' "$tmp/dashboard-live.html"

# ---- at most dashboard.streams_max (2) streams -------------------------------------------------
# hold K: an event stream in the background, once it is ready (the streams of the pages above may
# take a tick to be seen gone: a 503 is tried again).
hold() {
  local pid
  for _ in $(seq 20); do
    curl -sS -N --max-time 20 --cacert "$tmp/ca.pem" "${auth[@]}" "$base/api/events" >"$tmp/hold$1.txt" 2>&1 &
    pid=$!
    for _ in $(seq 20); do grep -q '^event: ready' "$tmp/hold$1.txt" && { pids+=($pid); return 0; }; sleep 0.05; done
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
    sleep 0.3
  done
  return 1
}
check "a first stream" hold 1
check "a second stream" hold 2
check "a third stream over dashboard.streams_max: 503" test "$(get third /api/events "${auth[@]}")" = 503
check "... while the API answers" test "$(get fleet2 /api/fleet "${auth[@]}")" = 200

check "edgeprovd stops cleanly with streams open" stop_daemon
finish
