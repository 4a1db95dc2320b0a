#!/usr/bin/env bash
# Integration test of nodes' disk recovery keys (issue 20, point 4) on a real edgeprovd with
# auth-local and real agents onboarded for their tokens: a node stores its key with its token
# (recovery_key_client, a node API client of its own), an operator reads it back exactly
# (edgeprov host recovery-key, by UUID and serial, --json), and it is found nowhere else: not in
# the store's files in the clear, the daemon log, host show, events or the host's log, which
# says it was read. A node stores for its own host only; no token, a bad key, a site without
# secrets.recovery_key_file are refused on both sides; another site key is named by id; a
# deleted host's key goes with it.
# Usage: recovery_keys.sh SOURCE_DIR BUILD_DIR RECOVERY_KEY_CLIENT
set -u
src=$1 build=$2 client=$3
. "$src/tests/integration/lib.sh"
scratch

loopback_site
cp "$tmp/site.conf" "$tmp/plain.conf" # the same site without a site key
head -c 48 /dev/urandom | base64 >"$tmp/recovery.key"
chmod 600 "$tmp/recovery.key"
head -c 48 /dev/urandom | base64 >"$tmp/other.key"
chmod 600 "$tmp/other.key"
printf 'secrets = { recovery_key_file = "%s"; };\n' "$tmp/recovery.key" >>"$tmp/site.conf"
sed "s|$tmp/recovery.key|$tmp/other.key|" "$tmp/site.conf" >"$tmp/other.conf"
check "edgeprovd starts with a site key" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
E="$build/bin/edgeprov --config $tmp/site.conf"
store() { "$client" "127.0.0.1:$grpc" "$tmp/ca.pem" "$@"; } # store TOKEN|- KEY

U1=eeeeeeee-0000-4000-8000-000000000001 U2=eeeeeeee-0000-4000-8000-000000000002
check "node 1 onboards" enroll_node $U1 RECOVERY01
mv "$tmp/node" "$tmp/node1"
check "node 2 onboards" enroll_node $U2 RECOVERY02
mv "$tmp/node" "$tmp/node2"
token1=$(node_token "$tmp/node1" $U1) token2=$(node_token "$tmp/node2" $U2)
check "both nodes have tokens" test -n "$token1" -a -n "$token2"

K1="rk1-$(openssl rand -hex 24)" K2="rk2-$(openssl rand -hex 24)"
# ---- a node stores its key; the operator reads it back exactly ------------------------------------
store "$token1" "$K1" >"$tmp/store1"
check "node 1 stores its key" contains "$tmp/store1" "code=0 "
$E host recovery-key $U1 >"$tmp/read1" 2>&1
check "the operator reads it back exactly" test "$(cat "$tmp/read1")" = "$K1"
$E host recovery-key RECOVERY01 >"$tmp/read1s" 2>&1
check "... by serial too" test "$(cat "$tmp/read1s")" = "$K1"
$E host recovery-key --json $U1 >"$tmp/read1.json"
check "--json: uuid, recovery_key, stored_at" python3 -c '
import json, sys, time
d = json.load(open(sys.argv[1]))
assert set(d) == {"uuid", "recovery_key", "stored_at"}, d
assert d["uuid"] == sys.argv[2] and d["recovery_key"] == sys.argv[3], d
assert abs(d["stored_at"] - time.time()) < 600, d' "$tmp/read1.json" $U1 "$K1"
check "each read is a warning in the daemon log" \
  test "$(grep -c "host $U1: recovery key read by an operator" "$tmp/daemon.log")" -eq 3

# ---- a node stores for its own host only ------------------------------------------------------------
store "$token2" "$K2" >"$tmp/store2"
check "node 2 stores its key" contains "$tmp/store2" "code=0 "
check "node 2's key is its own host's" test "$($E host recovery-key $U2)" = "$K2"
check "node 1's key is untouched" test "$($E host recovery-key $U1)" = "$K1"

# ---- refusals: no token, bad keys (named, never echoed) --------------------------------------------
store - "$K1-notoken" >"$tmp/notoken"
check "no token: UNAUTHENTICATED" contains "$tmp/notoken" "code=16 "
store "not.a.token" "$K1-badtoken" >"$tmp/badtoken"
check "a bad token: UNAUTHENTICATED" contains "$tmp/badtoken" "code=16 "
bad_ctl=$'rk-control\x01character-key' bad_short=rk-fifteen-byte bad_long=$(printf 'L%.0s' $(seq 257))
for bad in "$bad_ctl" "$bad_short" "$bad_long"; do
  store "$token1" "$bad" >"$tmp/bad"
  check "a bad key (${#bad} bytes): INVALID_ARGUMENT naming recovery_key" contains "$tmp/bad" "code=3 recovery_key: "
  check "... without its value" lacks "$tmp/bad" "${bad:0:12}"
done
check "refused keys did not replace the stored one" test "$($E host recovery-key $U1)" = "$K1"

# ---- the key is nowhere else ---------------------------------------------------------------------------
db="$tmp/data/inventory.sqlite"
check "the store holds a record of its own for the host" \
  test "$(sqlite3 "$db" "select count(*) from kv where key = 'recovery/$U1'")" = 1
sqlite3 "$db" .dump >"$tmp/dump.sql"
check "the store's dump holds no record in the clear (dump made)" test -s "$tmp/dump.sql"
for k in "$K1" "$K2"; do
  check "not in the store's dump" lacks "$tmp/dump.sql" "$k"
  check "not in the store's files (-a: binary too)" absent -r -a -F -- "$k" "$tmp/data"
  check "not in the daemon log" lacks "$tmp/daemon.log" "$k"
done
$E host show --json $U1 >"$tmp/show.json"
$E host list --json >"$tmp/list.json"
$E events --json >"$tmp/events.json"
$E logs --json $U1 >"$tmp/logs.json"
$E logs $U1 >"$tmp/logs.txt"
for f in show.json list.json events.json logs.json logs.txt; do
  check "$f: made" test -s "$tmp/$f"
  check "$f: no key" lacks "$tmp/$f" "$K1"
done
check "the host's log says the node stored a key" contains "$tmp/logs.txt" "node: recovery key stored"
check "the host's log says an operator read it" contains "$tmp/logs.txt" "operator: recovery key read by an operator"
check "the daemon log says a key was stored, not which" grep -q "host $U1: recovery key stored (sealed under site key" "$tmp/daemon.log"

# ---- a node's new key replaces the old one --------------------------------------------------------------
K1b="rk1b-$(openssl rand -hex 24)"
store "$token1" "$K1b" >"$tmp/store1b"
check "node 1 sends a new key" contains "$tmp/store1b" "code=0 "
check "it replaces the old one" test "$($E host recovery-key $U1)" = "$K1b"
check "the replacement is logged" grep -q "host $U1: recovery key replaced: the node sent a new one" "$tmp/daemon.log"
check "... without the key" lacks "$tmp/daemon.log" "$K1b"

# ---- another site key: the key ids differ, and say so ------------------------------------------------
check "edgeprovd stops" stop_daemon
check "edgeprovd starts with another site key" start_daemon "$tmp/other.conf" "$tmp/daemon2.log"
check "another site key: the read fails (exit 1)" run_status 1 "$tmp/other.out" $E host recovery-key $U1
check "another site key: FAILED_PRECONDITION naming both key ids" \
  grep -qE "stored under site key [0-9a-f]{16}, but secrets.recovery_key_file holds site key [0-9a-f]{16}" "$tmp/other.out"
check "... and no key" lacks "$tmp/other.out" "$K1b"

# ---- a site without secrets.recovery_key_file: refused on both sides -------------------------------
check "edgeprovd stops again" stop_daemon
check "edgeprovd starts without a site key" start_daemon "$tmp/plain.conf" "$tmp/daemon3.log"
store "$token1" "$K1-nosite" >"$tmp/nosite"
check "no site key: the node's store is FAILED_PRECONDITION naming secrets.recovery_key_file" \
  grep -qE "^code=9 .*secrets.recovery_key_file" "$tmp/nosite"
check "no site key: the read fails (exit 1)" run_status 1 "$tmp/nosite.out" $E host recovery-key $U1
check "no site key: the operator's read is refused naming secrets.recovery_key_file" \
  contains "$tmp/nosite.out" "secrets.recovery_key_file"

# ---- the site key back: readable again; a deleted host's key goes with it ---------------------------
check "edgeprovd stops a third time" stop_daemon
check "edgeprovd starts with its site key again" start_daemon "$tmp/site.conf" "$tmp/daemon4.log"
check "the key is read again with its site key" test "$($E host recovery-key $U1)" = "$K1b"
instance=$($E host show --json $U1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["instance_id"])')
[ -n "$instance" ] && $E instance delete "$instance" >/dev/null
check "the host is deleted" run_status 0 "$tmp/delete.out" $E host delete $U1
check "its record is gone from the store" \
  test "$(sqlite3 "$db" "select count(*) from kv where key = 'recovery/$U1'")" = 0
$E host add --uuid $U1 --serial RECOVERY01 >/dev/null
check "added again: the read fails (exit 1)" run_status 1 "$tmp/readded.out" $E host recovery-key $U1
check "added again under the same UUID, it has no key (NOT_FOUND)" contains "$tmp/readded.out" "no recovery key is stored"
check "node 2's key is still there" test "$($E host recovery-key $U2)" = "$K2"
for log in daemon2.log daemon3.log daemon4.log; do
  for k in "$K1" "$K1b" "$K2"; do check "$log: no key" lacks "$tmp/$log" "$k"; done
done
finish
