#!/usr/bin/env bash
# Integration test of seeing a workflow before and while a node runs it: `edgeprov instance
# render` (a dry run for a sample host or a registered one: every action with its substituted
# parameters, the node's ${node.*} kept, secrets masked, nothing stored) and `edgeprov instance
# show` (the instance and each action of its workflow with its state), on a live edgeprovd.
# Usage: instance_render.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
loopback_site
# The site adds a cloud-config fragment holding a password, and os-ubuntu, whose built-in
# template writes the cloud-init seed (with that fragment) to the node's disk.
secret=site-password-$RANDOM$RANDOM
printf 'password: %s\nchpasswd: { expire: false }\n' "$secret" >"$tmp/fragment.yaml"
sha=$(printf x | sha256sum | cut -d' ' -f1)
sed -i 's/"os-microvisor" \]/"os-microvisor", "os-ubuntu" ]/' "$tmp/site.conf"
cat >>"$tmp/site.conf" <<CONF
os-ubuntu = { image_url = "https://127.0.0.1:1/ubuntu.img.zst"; image_sha256 = "$sha"; };
cloudinit = { fragments = [ "$tmp/fragment.yaml" ]; };
CONF
check "edgeprovd starts" start_daemon "$tmp/site.conf" "$tmp/daemon.log"
E="$build/bin/edgeprov --config $tmp/site.conf"

# ---- render for a sample host --------------------------------------------------------------------
check "render --os: exit 0" run_status 0 "$tmp/render.txt" $E instance render --os ubuntu-22.04
check "render --os: says it is a dry run for a sample host" contains "$tmp/render.txt" "(a sample host)"
check "render --os: every action of the template, in order" python3 - "$tmp/render.txt" <<'PY'
import re, sys
names = re.findall(r"^\s+\d+\. (\S+) \(timeout", open(sys.argv[1]).read(), re.M)
assert names == ["disk.erase", "image.stream", "file.write", "file.write", "file.write", "file.write",
                 "efi.boot_order", "system.reboot"], names
PY
check "render --os: the profile's values are substituted" contains "$tmp/render.txt" "url = https://127.0.0.1:1/ubuntu.img.zst"
check "render --os: the node's own values stay for its agent" contains "$tmp/render.txt" 'target = ${node.target_disk}'
check "render --os: the node's secret stays a reference" contains "$tmp/render.txt" '${node.client_secret}'
check "render --os: the site's fragment is in the seed" grep -qE '^ +\| +expire: false$' "$tmp/render.txt"
check "render --os: ... with its password masked" contains "$tmp/render.txt" "password: ********"
check "render --os: the password appears nowhere" lacks "$tmp/render.txt" "$secret"
check "render --os: it counts what it masked" grep -qE '[1-9][0-9]* secrets? masked' "$tmp/render.txt"
check "render --json: exit 0" run_status 0 "$tmp/render.json" $E instance render --os ubuntu-22.04 --json
check "render --json: actions with their parameters, the password masked" python3 - "$tmp/render.json" "$secret" <<'PY'
import json, sys
w = json.load(open(sys.argv[1]))
assert w["os_profile"] == "ubuntu-22.04" and w["masked"] >= 1, w
assert [a["action"] for a in w["actions"]][:2] == ["disk.erase", "image.stream"], w
assert w["actions"][1]["params"]["url"] == "https://127.0.0.1:1/ubuntu.img.zst", w["actions"][1]
seed = [a["params"]["content"] for a in w["actions"] if a["params"].get("path", "").endswith("user-data")][0]
assert "password: ********" in seed and sys.argv[2] not in json.dumps(w), seed
PY
check "render: nothing was stored (no instance)" run_status 0 "$tmp/out" $E instance list --json
check "render: ... the list is empty" python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == []' "$tmp/out"

# ---- render for a registered host ---------------------------------------------------------------
U=eeeeeeee-0000-4000-8000-000000000001
$E host add --uuid $U --serial RENDER01 --os ubuntu-22.04 >/dev/null
check "render --host: exit 0" run_status 0 "$tmp/render-host.txt" $E instance render --host $U
check "render --host: the host's profile and UUID" contains "$tmp/render-host.txt" "profile ubuntu-22.04 for host $U:"
check "render --host: the host's values in the seed (hostname)" contains "$tmp/render-host.txt" "edge-render01"
check "render --host --os: another profile for the host" run_status 0 "$tmp/out" $E instance render --host $U --os microvisor
check "render --host --os: its one action" contains "$tmp/out" "1. disk.erase"

# ---- mistakes ------------------------------------------------------------------------------------
check "render: no profile and no host is a usage error" run_status 2 "$tmp/out" $E instance render
check "render: an unknown option is a usage error" run_status 2 "$tmp/out" $E instance render --os x --bogus
check "render: an unknown profile fails" run_status 1 "$tmp/out" $E instance render --os nope
check "render: ... naming it" contains "$tmp/out" "no active OS plugin offers 'nope'"
check "render: an unknown host fails" run_status 1 "$tmp/out" $E instance render --host eeeeeeee-0000-4000-8000-0000000000ff
check "render --help: usage on stdout, exit 0" run_status 0 "$tmp/out" $E instance render --help
check "render --help: ... names the command" contains "$tmp/out" "instance render"

# ---- show: the instance and where its workflow stands -------------------------------------------
V=eeeeeeee-0000-4000-8000-000000000002
check "show: the node onboards" enroll_node $V RENDER02
id=$($E host show $V --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')
truncate -s 1M "$tmp/disk"
check "show: the node runs its workflow" run_status 0 "$tmp/agent.log" node_agent --no-reboot --target-disk "$tmp/disk"
check "show: exit 0" run_status 0 "$tmp/show.txt" $E instance show "$id"
check "show: the instance" contains "$tmp/show.txt" "host:          $V"
check "show: its workflow" grep -qE '^workflow: +generation [0-9]+, 1 actions$' "$tmp/show.txt"
check "show: each action with its state" grep -qE '^  1 +disk\.erase +SUCCESS +1 ' "$tmp/show.txt"
check "show --json: exit 0" run_status 0 "$tmp/show.json" $E instance show "$id" --json
check "show --json: the workflow's actions and states, no parameters" python3 - "$tmp/show.json" "$V" <<'PY'
import json, sys
i = json.load(open(sys.argv[1]))
assert i["host_uuid"] == sys.argv[2] and i["workflow"]["generation"] > 0 and i["workflow"]["state"] == "SUCCESS", i
a = i["workflow"]["actions"]
assert [x["action"] for x in a] == ["disk.erase"] and a[0]["state"] == "SUCCESS" and "params" not in a[0], a
PY
check "show: a host without a rendered workflow says so" run_status 0 "$tmp/out" $E instance create $U
uid=$($E host show $U --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance_id"])')
check "show: ... (not onboarded yet)" run_status 0 "$tmp/out" $E instance show "$uid"
check "show: ... not rendered yet" contains "$tmp/out" "workflow:      not rendered yet"
check "show: an unknown instance fails" run_status 1 "$tmp/out" $E instance show eeeeeeee-0000-4000-8000-0000000000ff
check "show: a malformed ID fails naming the field" run_status 1 "$tmp/out" $E instance show not-a-uuid
check "show: ... id" contains "$tmp/out" "id"
check "the daemon never logged the site password" lacks "$tmp/daemon.log" "$secret"

finish
