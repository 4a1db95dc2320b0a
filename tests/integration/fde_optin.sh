#!/usr/bin/env bash
# Integration test of asking for full-disk encryption (issue 20, point 1): `host add --fde` and
# `instance create --fde` are stored and shown (host show, instance show, --json; without the
# flag, as an old client sends it, false), and the workflow's ${instance.fde} renders "true"
# when the host, the instance (render --fde) or the OS profile (setting fde) asks, else
# "false". On a real edgeprovd, once on storage-sqlite and once on storage-postgres (a
# throwaway cluster of its own, tests/pg_cluster.sh). No node runs the workflow. With fde asked,
# the render fails, naming why, when the template's image.stream does not take fde =
# "${instance.fde}" or the site keeps no recovery keys (secrets.recovery_key_file).
# Usage: fde_optin.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
if [ -z "${PG_TEST_DIR:-}" ]; then exec bash "$src/tests/pg_cluster.sh" run bash "$0" "$@"; fi
. "$src/tests/integration/lib.sh"
scratch
loopback_site
# A site that asks for fde keeps the nodes' recovery keys.
head -c 48 /dev/urandom | base64 >"$tmp/recovery-site.key"
chmod 600 "$tmp/recovery-site.key"
printf 'secrets = { recovery_key_file = "%s"; };\n' "$tmp/recovery-site.key" >>"$tmp/site.conf"
# The profile's workflow encrypts when asked and writes what it got for ${instance.fde}
# (rendered only, never run).
cat >"$tmp/workflow.conf" <<'CONF'
actions = (
  { action = "disk.erase"; params = { target = "${node.target_disk}"; fde = "${instance.fde}"; }; },
  { action = "image.stream"; params = { url = "${profile.image_url}"; sha256 = "${profile.image_sha256}";
      target = "${node.target_disk}"; fde = "${instance.fde}"; fde_partition = "data"; }; },
  { action = "file.write"; params = { target = "${node.target_disk}"; path = "/fde"; content = "fde=${instance.fde}"; }; }
);
CONF
E="$build/bin/edgeprov --config $tmp/site.conf"

# rendered_fde FILE: what the file.write of a `render --json` in FILE got.
rendered_fde() {
  python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print([a["params"]["content"] for a in w["actions"] if a["action"] == "file.write"][0])' "$1"
}
# expect_render WANT ARGS...: `instance render ARGS --json` renders fde=WANT.
expect_render() {
  local want=$1 have
  shift
  run_status 0 "$tmp/render.json" $E instance render --json "$@" || return 1
  have=$(rendered_fde "$tmp/render.json")
  [ "$have" = "fde=$want" ] || { echo "---- render $*: $have, want fde=$want"; return 1; }
}
# json_field FILE KEY: the JSON object's KEY in FILE, as Python prints it (True, False).
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# scenario STORE: the checks on a fresh inventory in that store (its site config in $tmp/STORE.conf).
scenario() {
  local s=$1 conf=$tmp/$1.conf
  local U1=fdefdefd-0000-4000-8000-00000000000${2} U2=fdefdefd-0000-4000-8000-00000000001${2}
  E="$build/bin/edgeprov --config $conf"
  check "$s: edgeprovd starts" start_daemon "$conf" "$tmp/$s.log"

  check "$s: host add --fde" run_status 0 "$tmp/out" $E host add --uuid $U1 --serial FDE0000$2 --os microvisor --fde
  check "$s: host show says it asks" run_status 0 "$tmp/out" $E host show $U1
  check "$s: ... fde: yes" contains "$tmp/out" "fde:           yes (every instance encrypts its disk)"
  check "$s: host show --json" run_status 0 "$tmp/host.json" $E host show $U1 --json
  check "$s: ... fde true" test "$(json_field "$tmp/host.json" fde)" = True
  check "$s: host add without --fde (what an old client sends)" run_status 0 "$tmp/out" $E host add --uuid $U2 --os microvisor
  check "$s: ... host show --json" run_status 0 "$tmp/host.json" $E host show $U2 --json
  check "$s: ... fde false" test "$(json_field "$tmp/host.json" fde)" = False
  check "$s: ... host show: fde: no" run_status 0 "$tmp/out" $E host show $U2
  check "$s: ... fde: no" contains "$tmp/out" "fde:           no"
  check "$s: host list --json has it" run_status 0 "$tmp/out" $E host list --json
  check "$s: ... for each host" python3 -c '
import json, sys
hosts = {h["uuid"]: h["fde"] for h in json.load(open(sys.argv[1]))}
assert hosts == {sys.argv[2]: True, sys.argv[3]: False}, hosts' "$tmp/out" $U1 $U2

  check "$s: render, no one asks: false" expect_render false --host $U2
  check "$s: render, the host asks: true" expect_render true --host $U1
  check "$s: render, the instance asks (--fde): true" expect_render true --host $U2 --fde
  check "$s: render of a sample host: false" expect_render false --os microvisor

  check "$s: instance create --fde" run_status 0 "$tmp/out" $E instance create $U2 --fde
  check "$s: ... prints fde: yes" contains "$tmp/out" "fde:           yes (asked by the instance)"
  local id
  id=$(sed -n 's/^instance \([0-9a-f-]*\) created.*/\1/p' "$tmp/out")
  check "$s: instance show --json" run_status 0 "$tmp/inst.json" $E instance show "$id" --json
  check "$s: ... fde true" test "$(json_field "$tmp/inst.json" fde)" = True
  check "$s: instance create without --fde" run_status 0 "$tmp/out" $E instance create $U1 --json
  check "$s: ... fde false (its host asks, at the render)" test "$(json_field "$tmp/out" fde)" = False
  check "$s: instance list --json has it" run_status 0 "$tmp/out" $E instance list --json
  check "$s: ... for each instance" python3 -c '
import json, sys
insts = {i["host_uuid"]: i["fde"] for i in json.load(open(sys.argv[1]))}
assert insts == {sys.argv[2]: False, sys.argv[3]: True}, insts' "$tmp/out" $U1 $U2
  check "$s: edgeprovd stops" stop_daemon

  # The OS profile asks: every instance of it, whatever the host and the instance say.
  sed -i 's|template_file = |fde = true; template_file = |' "$conf"
  check "$s: config check takes the profile's fde" run_status 0 "$tmp/out" $build/bin/edgeprov config check "$conf"
  check "$s: edgeprovd restarts with the profile asking" start_daemon "$conf" "$tmp/$s-2.log"
  check "$s: the inventory kept the host's fde" run_status 0 "$tmp/host.json" $E host show $U1 --json
  check "$s: ... true" test "$(json_field "$tmp/host.json" fde)" = True
  check "$s: render of a sample host: true" expect_render true --os microvisor
  check "$s: render for the host that does not ask: true" expect_render true --host $U2
  check "$s: edgeprovd stops again" stop_daemon
}

# storage-sqlite: loopback_site's config as it is, with a data directory of its own.
sed "s|paths = { data = \"$tmp/data\"|paths = { data = \"$tmp/data-sqlite\"|" "$tmp/site.conf" >"$tmp/sqlite.conf"
scenario sqlite 1
# storage-postgres instead.
sed -e "s|paths = { data = \"$tmp/data\"|paths = { data = \"$tmp/data-pg\"|" \
  -e 's|"storage-sqlite"|"storage-postgres"|' "$tmp/site.conf" >"$tmp/pg.conf"
cat >>"$tmp/pg.conf" <<CONF
storage-postgres = { conninfo = "host=$PG_TEST_DIR dbname=edgeprov user=edgeprov"; passfile = "$PG_TEST_DIR/passfile"; };
CONF
check "pg: the config uses storage-postgres" contains "$tmp/pg.conf" '"storage-postgres", "auth-local"'
scenario pg 2

# ---- fde asked where it cannot be done: the render fails, naming why (sqlite) --------------------
E="$build/bin/edgeprov --config $tmp/sqlite.conf"
# The profile still asks (sed above): a template whose image.stream does not take fde.
cp "$tmp/workflow.conf" "$tmp/workflow-fde.conf"
sed -i 's/ fde = "${instance.fde}"; fde_partition = "data";//' "$tmp/workflow.conf"
check "clear template: the image.stream has no fde any more" absent -F 'fde_partition' "$tmp/workflow.conf"
check "clear template: edgeprovd starts" start_daemon "$tmp/sqlite.conf" "$tmp/sqlite-3.log"
check "clear template: render fails" run_status 1 "$tmp/out" $E instance render --os microvisor
check "... naming the profile, the template and why" contains "$tmp/out" \
  "profile microvisor (template $tmp/workflow.conf): fde asked (host/instance/profile: the OS profile) but the workflow template has no image.stream with fde = \"\${instance.fde}\""
check "clear template: edgeprovd stops" stop_daemon
# The template encrypts, but the site keeps no recovery keys.
cp "$tmp/workflow-fde.conf" "$tmp/workflow.conf"
grep -v '^secrets = ' "$tmp/sqlite.conf" >"$tmp/nokeys.conf"
check "no site key: the config has no secrets.recovery_key_file" absent -F recovery_key_file "$tmp/nokeys.conf"
check "no site key: edgeprovd starts" start_daemon "$tmp/nokeys.conf" "$tmp/nokeys.log"
check "no site key: render fails" run_status 1 "$tmp/out" $build/bin/edgeprov --config "$tmp/nokeys.conf" instance render --os microvisor
check "... naming secrets.recovery_key_file" contains "$tmp/out" \
  "profile microvisor: fde asked (host/instance/profile: the OS profile) but secrets.recovery_key_file is not set"
check "no site key: edgeprovd stops" stop_daemon

check "plugins describe os-microvisor lists fde" run_status 0 "$tmp/out" $build/bin/edgeprov --config "$tmp/sqlite.conf" plugins describe os-microvisor
check "... with its help" contains "$tmp/out" "every instance of the profile encrypts its disk"

finish
