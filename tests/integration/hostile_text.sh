#!/usr/bin/env bash
# Integration test of hostile text from a node (security review finding 7): an enrolled node
# sends statuses, report messages and log lines holding C0/C1 controls (raw 0x9b and UTF-8
# U+009B), DEL, bidi overrides (U+202E, U+2066), 0xff, overlong forms and surrogates, as raw
# bytes (tests/interop/hostile_call.mjs encodes the protobuf by hand). The server refuses each
# naming the field; nothing raw reaches `edgeprov host list`/`host show`; --json output parses
# and still lists the host, also for a record stored with such bytes before the check; and an
# agent whose action logs DEL and invalid UTF-8 (its target disk's path) escapes them, so its
# report stream lives and the workflow completes.
# Usage: hostile_text.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY # (before npm too)
. "$src/tests/interop/npm_install.sh"
cp "$src/tests/interop/hostile_call.mjs" "$modules/"

# One action (disk.erase), whose log line holds the target disk's path, given to the agent below.
loopback_site
start_daemon() {
  "$build/bin/edgeprovd" --config "$tmp/site.conf" >>"$tmp/daemon.log" 2>&1 &
  daemon=$!
  for _ in $(seq 200); do [ "$(grep -c 'msg="ready' "$tmp/daemon.log")" -ge "$1" ] && return 0; sleep 0.05; done
  return 1
}
check "edgeprovd starts" start_daemon 1
E="$build/bin/edgeprov --config $tmp/site.conf"

U=dddddddd-0000-4000-8000-000000000007
check "the node onboards" enroll_node $U HOSTILE07
token=$(node_token "$tmp/node" $U)
N="env NODE_NO_WARNINGS=1 node $modules/hostile_call.mjs $src/core/proto 127.0.0.1:$grpc $tmp/ca.pem $token"

# raw_free FILE: no raw control (but newline), DEL, C1 (raw byte or UTF-8), bidi control or
# invalid UTF-8 in FILE.
raw_free() {
  python3 - "$1" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("invalid UTF-8 at byte %d: %r" % (e.start, data[max(0, e.start - 20):e.start + 20]))
bad = re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text)
if bad:
    sys.exit("raw U+%04X at %d: %r" % (ord(bad.group()), bad.start(), text[max(0, bad.start() - 20):bad.start() + 20]))
PY
}

# ---- a good status, multibyte text included, is taken and shown as it is --------------------
$N status "$(printf 'Micro-OS: gr\xc3\xbc\xc3\x9f \xe2\x82\xac' | od -An -tx1 | tr -d ' \n')" >"$tmp/call"
check "good: a status in UTF-8 is taken" contains "$tmp/call" "code=0 "
$E host show $U >"$tmp/show"
check "good: host show prints it as sent" contains "$tmp/show" "$(printf 'Micro-OS: gr\xc3\xbc\xc3\x9f \xe2\x82\xac')"

# ---- every hostile status is refused, naming the field, the reason and the byte ---------------
refused() { # NAME HEX EXPECTED
  $N status "$2" >"$tmp/call"
  check "status $1: refused: $3" contains "$tmp/call" "code=3 status: $3"
}
refused "raw C1 CSI 0x9b" 6f6b209b33316d "invalid UTF-8 at byte 3 (0x9b: a continuation byte without a lead byte)"
refused "UTF-8 C1 CSI U+009B" 6f6b20c29b33316d "control character at byte 3 (U+009B)"
refused "RLO U+202E" 6578652ee280ae747874 "bidi control character at byte 4 (U+202E)"
refused "LRI U+2066" e281a6616263 "bidi control character at byte 0 (U+2066)"
refused "0xff" 6f6b20ff "invalid UTF-8 at byte 3 (0xff: a byte that never appears in UTF-8)"
refused "DEL 0x7f" 64656c7f "control character at byte 3 (U+007F)"
refused "ESC" 1b5b324a "control character at byte 0 (U+001B)"
refused "tab" 61096209 "control character at byte 1 (U+0009)"
refused "overlong '/'" 61c0af "invalid UTF-8 at byte 1 (0xc0: an overlong encoding)"
refused "surrogate U+D800" 61eda080 "invalid UTF-8 at byte 1 (0xed: a UTF-16 surrogate)"
refused "past U+10FFFF" f4908080 "invalid UTF-8 at byte 0 (0xf4: past U+10FFFF)"

# ---- the workflow stream: a hostile message or log line is refused, naming the field ----------
$N report 6f6b 66696e65 >"$tmp/call"
check "report: a good message and log line are taken (the hand encoding is sound)" contains "$tmp/call" "code=0 "
$N report "" 6f6b209b33316d >"$tmp/call"
check "report: a log line with 0x9b is refused, naming log_lines[0]" contains "$tmp/call" "code=3 log_lines[0]"
$N report "" 6c696e657f >"$tmp/call"
check "report: a log line with DEL is refused" contains "$tmp/call" "code=3 log_lines[0]"
$N report 6578652ee280ae747874 "" >"$tmp/call"
check "report: a message with U+202E is refused, naming message" contains "$tmp/call" "code=3 message"
$N report c29b ff >"$tmp/call"
check "report: a message with U+009B is refused" contains "$tmp/call" "code=3 message"

# ---- nothing raw reaches the operator; JSON parses and lists the host --------------------------
cli_checks() { # WHEN
  check "$1: host list exits 0" run_status 0 "$tmp/list" $E host list
  check "$1: host list has no raw control, bidi or invalid byte" raw_free "$tmp/list"
  check "$1: host list lists the host" contains "$tmp/list" "$U"
  check "$1: host show exits 0" run_status 0 "$tmp/show" $E host show $U
  check "$1: host show has no raw control, bidi or invalid byte" raw_free "$tmp/show"
  $E host list --json >"$tmp/list.json" 2>"$tmp/err"
  check "$1: host list --json exits 0" test $? -eq 0
  check "$1: host list --json is ASCII, no DEL" raw_free "$tmp/list.json"
  check "$1: host list --json parses and lists the host" python3 -c '
import json, sys
hosts = json.load(open(sys.argv[1]))
assert [h["uuid"] for h in hosts] == [sys.argv[2]], hosts' "$tmp/list.json" $U
  $E host show $U --json >"$tmp/show.json" 2>"$tmp/err"
  check "$1: host show --json exits 0" test $? -eq 0
  check "$1: host show --json parses" python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["uuid"] == sys.argv[2]' \
    "$tmp/show.json" $U
  $E events --json >"$tmp/events.json" 2>"$tmp/err"
  check "$1: events --json exits 0, every line parses" python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines and all(json.loads(l)["revision"] for l in lines)' "$tmp/events.json"
  check "$1: events --json has no raw control, bidi or invalid byte" raw_free "$tmp/events.json"
  $E events >"$tmp/events"
  check "$1: events has no raw control, bidi or invalid byte" raw_free "$tmp/events"
}
cli_checks "after the refusals"
check "the host status is the last one taken" contains "$tmp/show" "$(printf 'Micro-OS: gr\xc3\xbc\xc3\x9f \xe2\x82\xac')"

# ---- an agent whose action logs DEL, ESC and invalid UTF-8 keeps its stream and finishes --------
disk="$tmp/disk$(printf '\x7f\x1b\xff\xc0\xaf')x"
truncate -s 1M "$disk"
node_agent --no-reboot --target-disk "$disk" >"$tmp/agent.log" 2>&1 &
apid=$!
finished=1
for _ in $(seq 600); do kill -0 $apid 2>/dev/null || { wait $apid; finished=$?; break; }; sleep 0.1; done
kill $apid 2>/dev/null
check "agent: the workflow completes (exit 0)" test "$finished" -eq 0
check "agent: no report was refused" lacks "$tmp/agent.log" "refused a report"
check "agent: the action's log line reached the orchestrator, escaped" \
  grep -qF 'disk\\x7f\\x1b\\xff\\xc0\\xafx: partition tables and signatures erased' "$tmp/daemon.log"
$E instance list --json >"$tmp/instances.json"
check "agent: the instance's status says done" python3 -c '
import json, sys
i = json.load(open(sys.argv[1]))
assert len(i) == 1 and i[0]["provisioning_status"]["message"].startswith("1/1: done"), i' "$tmp/instances.json"

# ---- a record stored before the check (written into the store while the daemon is down) ------
placeholder="Micro-OS: PLACEHOLDER-FOR-HOSTILE-BYTES-0123"
$N status "$(printf '%s' "$placeholder" | od -An -tx1 | tr -d ' \n')" >"$tmp/call"
check "stored: the placeholder status is taken" contains "$tmp/call" "code=0 "
kill $daemon
wait $daemon 2>/dev/null
python3 - "$tmp/data" "$placeholder" <<'PY' >"$tmp/patch"
import glob, os, sqlite3, sys
old = sys.argv[2].encode()
new = (b"\x1b[31m \x9b \xc2\x9b \xe2\x80\xae \xff \x7f \xed\xa0\x80 \xc0\xaf \xe2\x81\xa6 end").ljust(len(old), b"!")
assert len(new) == len(old)
n = 0
for path in glob.glob(os.path.join(sys.argv[1], "**", "*.db"), recursive=True) + glob.glob(os.path.join(sys.argv[1], "**", "*.sqlite*"), recursive=True):
    if path.endswith(("-wal", "-shm")):
        continue
    db = sqlite3.connect(path)
    for table in ("kv", "changes"):
        try:
            rows = db.execute("SELECT key, value FROM %s" % table).fetchall()
        except sqlite3.Error:
            continue
        for key, value in rows:
            if value is not None and old in value:
                db.execute("UPDATE %s SET value = ? WHERE key = ? AND value = ?" % table, (value.replace(old, new), key, value))
                n += 1
    db.commit()
    db.close()
print(n)
PY
check "stored: the hostile bytes were written into the store" test "$(cat "$tmp/patch")" -ge 1
check "stored: edgeprovd comes up again" start_daemon 2
$E host show $U >"$tmp/show"
check "stored: host show makes the bytes visible" contains "$tmp/show" '\x1b[31m \x9b \u{009b} \u{202e} \xff \x7f \xed\xa0\x80 \xc0\xaf \u{2066} end'
cli_checks "stored hostile record"
check "stored: --json keeps the valid characters and marks the invalid bytes U+FFFD" python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["host_status"]["message"]
assert m.startswith("\x1b[31m \ufffd \x9b \u202e \ufffd \x7f \ufffd\ufffd\ufffd \ufffd\ufffd \u2066 end"), repr(m)' "$tmp/show.json"
finish
