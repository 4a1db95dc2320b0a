#!/usr/bin/env bash
# Integration test: the change log is compacted to storage.change_log_retention revisions
# by edgeprovd's housekeeping, so a stream of changes through the CLI leaves the store
# bounded, and a watcher asking for a compacted revision is told to re-list.
# Usage: compaction.sh SOURCE_DIR BUILD_DIR ...
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
edgeprov=$build/bin/edgeprov
plugins=$build/lib/edgeprov/plugins
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

# ---- the setting is validated and named ------------------------------------------------------
base="listen = { management = \"unix:$tmp/run/mgmt.sock\"; grpc = \"127.0.0.1:0\"; https = \"127.0.0.1:0\"; };
paths = { data = \"$tmp/data\"; plugins = [ \"$plugins\" ]; };
plugins = { enabled = [ \"storage-sqlite\" ]; required = [ \"storage-sqlite\" ]; };"
printf '%s\nstorage = {\n  change_log_retention = 50;\n};\n' "$base" >"$tmp/small.conf"
check "config check: retention below the minimum exits 1" run_status 1 "$tmp/out" "$edgeprov" config check "$tmp/small.conf"
check "config check: names the key, the line and the range" contains "$tmp/out" \
  "small.conf:5: error: 'storage.change_log_retention': 50 is out of range [100, 100000000]"
printf '%s\nstorage = { change_log_retention = "lots"; };\n' "$base" >"$tmp/text.conf"
check "config check: a string is refused" run_status 1 "$tmp/out" "$edgeprov" config check "$tmp/text.conf"
check "config check: says an integer is expected" contains "$tmp/out" \
  "'storage.change_log_retention': expected an integer, got a string"
printf '%s\nstorage = { change_log_retention = 100; };\n' "$base" >"$tmp/site.conf"
check "config check: retention 100 is accepted" run_status 0 "$tmp/out" "$edgeprov" config check "$tmp/site.conf"

# ---- many changes through the CLI leave the store bounded ------------------------------------
check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
E="$edgeprov --config $tmp/site.conf"
U=123e4567-e89b-12d3-a456-426614174000
churn() { # COUNT: adds and deletes one host COUNT times (2 revisions each)
  local n=$1
  while [ "$n" -gt 0 ]; do
    n=$((n - 1))
    $E host add --uuid $U --serial ABC12345 --mac 52-54-00-12-34-56 --ip 10.1.2.3 --site lab-1 --os ubuntu-22.04 \
      >/dev/null || return 1
    $E host delete $U >/dev/null || return 1
  done
}
db=$tmp/data/inventory.sqlite
# Sizes are taken with edgeprovd stopped: its clean close checkpoints the WAL into the
# database file, so the file holds everything the store keeps.
check "60 add/delete rounds" churn 60
check "edgeprovd stops cleanly" stop_daemon
db_1=$(size_of "$db")
check "edgeprovd starts again" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
check "240 more add/delete rounds" churn 240
wal=$(size_of "$db-wal")
check "edgeprovd stops cleanly" stop_daemon
db_2=$(size_of "$db")
echo "inventory.sqlite after 120 revisions: $db_1 bytes; after 600: $db_2 bytes (its WAL before the stop: $wal bytes)"
# Without compaction the change log holds all 600 revisions: the file grows about 4x.
check "inventory.sqlite stays bounded" test "$db_2" -le $((db_1 + db_1 / 2))
check "the WAL stays within storage-sqlite's 8 MiB limit" test "$wal" -le 8388608
check "edgeprovd starts again" start_daemon "$tmp/site.conf" "$tmp/daemon.log"

# ---- a watcher behind the compaction is told to re-list --------------------------------------
check "events --after 1: refused" run_status 1 "$tmp/out" $E events --after 1
sed 's/^/    /' "$tmp/out"
check "events --after 1: says the events are gone" contains "$tmp/out" "events after revision 1 are no longer kept"
check "events --after 1: names the retention setting" contains "$tmp/out" "storage.change_log_retention"
check "events --after 1: says to re-list and watch again" contains "$tmp/out" \
  "Re-list hosts and instances (edgeprov host list, edgeprov instance list), then watch again from revision 600"
check "events --after 1: no event printed" lacks "$tmp/out" " host $U "
check "events --after 1 --json: refused the same way" run_status 1 "$tmp/out" $E events --after 1 --json
check "events --after 1 --json: message" contains "$tmp/out" "are no longer kept"
check "events --after 550: the newest 50 revisions are kept" run_status 0 "$tmp/out" $E events --after 550
check "events --after 550: 50 events" test "$(grep -c " host $U " "$tmp/out")" -eq 50
check "events --after 500: within the retention" run_status 0 "$tmp/out" $E events --after 500
check "edgeprovd stops cleanly" stop_daemon
finish
