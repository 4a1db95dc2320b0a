# Scenario ha: a node provisions through HAProxy in front of three edgeprovd replicas on one
# PostgreSQL database, and the replica holding its workflow stream is killed (SIGKILL), twice:
# while the stream waits for a workflow, and while the workflow runs; each time the node
# reconnects through the front door to a survivor and it still reaches RUNNING (issue 17).
# Sourced by tests/e2e/run.sh after tests/integration/lib.sh and tests/e2e/lib.sh; defines
# scenario_ha.
#
# The scenario brings its own orchestrator (scratch dir $E2E/ha): e2e_orchestrator_prepare
# for 10.0.2.2 (PKI, the boot artifacts, the microvisor image) with the front door's two ports
# as the orchestrator's, so everything the node is given (iPXE's base URL, the Micro-OS's
# orchestrator and token URL, the image URL, the installed OS's seed) names the front door.
# Then a throwaway PostgreSQL cluster (tests/pg_cluster.sh start/stop), three replicas on
# 127.0.0.2-4 (same ports; storage-postgres; one auth-local signing key file, so a token of one
# replica verifies on the others; all serving the one artifact directory $E2E/ha/data/artifacts
# through artifacts.directory, so the files are the same bytes whoever answers), and HAProxy
# with deploy/haproxy/edgeprov.cfg on 127.0.0.1 (the guest's 10.0.2.2). Only the firmware's
# first file (ipxe.efi, and boot.ipxe for iPXE) comes from the plain-HTTP netboot nginx: QEMU's
# DHCP bootfile can only be http:// (see lib.sh); the kernel, initramfs, token, onboarding,
# workflow stream, OS image and the installed OS's report all go through HAProxy.
#
# The host is registered without an OS, so its workflow stream waits on one replica (found by
# its established connection on the replicas' gRPC port, `ss`: the node is the only gRPC
# client), and the first kill is deterministic. The instance is then created through a
# survivor; as soon as the workflow's first action shows on the console, the replica now
# holding the stream is killed too (the microvisor workflow takes 5-10 s; the check "the
# workflow still runs" says whether the kill came in time), and the last replica serves the
# rest. Checks: each time the agent saw its stream break and reconnected, on a survivor; the
# workflow runs to RUNNING; HAProxy marked the killed replicas down; the instance has exactly
# one workflow in the shared database; the last replica logged no error. Every process it
# starts (replicas, HAProxy, nginx, PostgreSQL) is stopped when it ends or the harness exits.

HA_PG=
HA_PIDS=()
declare -A HA_RPID # replica number -> edgeprovd pid

# ha_cleanup: stops what the scenario started and removes its database (idempotent).
ha_cleanup() {
  local p
  for p in "${HA_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${HA_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  HA_PIDS=()
  if [ -n "$HA_PG" ]; then
    bash "$src/tests/pg_cluster.sh" stop "$HA_PG" >/dev/null 2>&1
    HA_PG=
  fi
}

ha_addr() { echo "127.0.0.$(($1 + 1))"; }

# ha_replica_conf N: the site config of replica N ($HA_DIR/rN/site.conf), made from the
# prepared one: its own listen address, management socket and data directory; the shared
# database, signing key and artifact directory.
ha_replica_conf() {
  local r=$HA_DIR/r$1 addr
  addr=$(ha_addr "$1")
  mkdir -p "$r/data"
  local listen="listen = { management = \"unix:$r/mgmt.sock\"; grpc = \"$addr:$HA_G\"; https = \"$addr:$HA_H\"; };"
  sed -e "s|^listen = .*|$listen|" \
    -e "s|data = \"$HA_DIR/data\"|data = \"$r/data\"|" \
    -e 's|"storage-sqlite"|"storage-postgres"|' \
    -e "s|^artifacts = { |artifacts = { directory = \"$HA_ART\"; |" "$HA_DIR/site.conf" >"$r/site.conf"
  cat >>"$r/site.conf" <<CONF
storage-postgres = { conninfo = "host=$HA_PG dbname=edgeprov user=edgeprov"; passfile = "$HA_PG/passfile"; };
auth-local = { key_file = "$HA_DIR/signing-key.pem"; };
CONF
  # every substitution took (sed says nothing when a pattern does not match)
  grep -qF "grpc = \"$addr:$HA_G\"" "$r/site.conf" && grep -qF "data = \"$r/data\"" "$r/site.conf" &&
    grep -qF '"storage-postgres"' "$r/site.conf" && grep -qF "directory = \"$HA_ART\"" "$r/site.conf" ||
    { echo "$r/site.conf: the prepared site config has changed shape:"; cat "$r/site.conf"; return 1; }
}

# ha_replica_start N: starts replica N and waits until it is ready (its log, then its /healthz).
ha_replica_start() {
  local r=$HA_DIR/r$1 addr _
  addr=$(ha_addr "$1")
  "$BUILD/bin/edgeprovd" --config "$r/site.conf" >"$r/daemon.log" 2>&1 &
  HA_RPID[$1]=$!
  HA_PIDS+=($!)
  e2e_pids+=($!)
  for _ in $(seq 200); do grep -q 'msg="ready' "$r/daemon.log" && break; sleep 0.05; done
  # the certificate names 127.0.0.1 (and 10.0.2.2): ask replica N under that name
  curl -sf --connect-to "::$addr:" --cacert "$HA_DIR/pki/ca.pem" -o "$r/health" "https://127.0.0.1:$HA_H/healthz" &&
    grep -q '^ready' "$r/health" && return 0
  tail -n 20 "$r/daemon.log"
  echo "replica r$1 ($addr) is not ready"
  return 1
}

# ha_setup: the orchestrator's files, PostgreSQL, three replicas, HAProxy, the netboot nginx.
# Sets HA_DIR, HA_ART, HA_G, HA_H (the replicas' ports), HA_FG, HA_FH (the front door's),
# HA_NETBOOT_URL.
ha_setup() {
  HA_DIR=$E2E/ha
  command -v haproxy >/dev/null || { echo "haproxy is missing (scripts/install-deps.sh)"; return 1; }
  e2e_orchestrator_prepare "$HA_DIR" 10.0.2.2 nztp || return 1
  HA_FG=$PREP_GRPC HA_FH=$PREP_HTTPS HA_ART=$HA_DIR/data/artifacts
  HA_G=$(free_port) HA_H=$(free_port)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$HA_DIR/signing-key.pem" 2>/dev/null &&
    chmod 600 "$HA_DIR/signing-key.pem" || { echo "cannot create the signing key"; return 1; }
  # PostgreSQL runs as nobody when we are root: its directory is outside the 0700 $E2E.
  HA_PG=$(mktemp -d /tmp/edgeprov-pg.XXXXXX)
  bash "$src/tests/pg_cluster.sh" start "$HA_PG" >"$HA_DIR/pg.out" 2>&1 ||
    { cat "$HA_DIR/pg.out"; echo "the PostgreSQL cluster did not start"; return 1; }
  # r3 first: the first replica up leads the reconciler, and HAProxy's leastconn has put the
  # node's workflow stream on r3 so far, so the kill takes the leader too (which the log says):
  # a survivor then takes the reconciler over before it renders the workflow.
  local n
  for n in 3 2 1; do ha_replica_conf $n && ha_replica_start $n || return 1; done
  EDGEPROV_FRONT_GRPC=127.0.0.1:$HA_FG EDGEPROV_FRONT_HTTPS=127.0.0.1:$HA_FH EDGEPROV_R1=$(ha_addr 1) \
    EDGEPROV_R2=$(ha_addr 2) EDGEPROV_R3=$(ha_addr 3) EDGEPROV_GRPC_PORT=$HA_G EDGEPROV_HTTPS_PORT=$HA_H \
    haproxy -db -f "$src/deploy/haproxy/edgeprov.cfg" >"$HA_DIR/haproxy.log" 2>&1 &
  HA_PIDS+=($!)
  e2e_pids+=($!)
  local _
  for _ in $(seq 100); do
    curl -sf -o /dev/null --cacert "$HA_DIR/pki/ca.pem" "https://127.0.0.1:$HA_FH/healthz" && break
    sleep 0.05
  done
  curl -sf -o /dev/null --cacert "$HA_DIR/pki/ca.pem" "https://127.0.0.1:$HA_FH/boot/boot.ipxe" ||
    { cat "$HA_DIR/haproxy.log"; echo "HAProxy does not pass the boot artifacts through"; return 1; }
  local web
  web=$(free_port)
  HA_NETBOOT_URL=http://10.0.2.2:$web/netboot.efi
  e2e_netboot_start "$web" "$HA_DIR" "$HA_ART"
  HA_PIDS+=("${e2e_pids[-1]}")
  e2e_log "ha: PostgreSQL in $HA_PG, replicas r1-r3 on $(ha_addr 1)-$(ha_addr 3) (gRPC :$HA_G, HTTPS :$HA_H)," \
    "HAProxy on 127.0.0.1 (gRPC :$HA_FG, HTTPS :$HA_FH), netboot $HA_NETBOOT_URL"
}

# ha_stream_holders: the replicas (numbers) with an established connection on their gRPC port.
ha_stream_holders() {
  local n
  for n in 1 2 3; do
    [ -n "$(ss -Htn state established "( src $(ha_addr $n) and sport = :$HA_G )" 2>/dev/null)" ] && echo $n
  done
}

# ha_wait_holder EXCLUDED TIMEOUT_S: waits until exactly one replica, not EXCLUDED, holds gRPC
# connections (the node's workflow stream: the node is the only gRPC client) and sets
# HA_HOLDER to its number.
ha_wait_holder() {
  local _ h
  for _ in $(seq $(($2 * 4))); do
    h=$(ha_stream_holders)
    if [ "$(echo "$h" | grep -c .)" = 1 ] && [ "$h" != "$1" ]; then
      HA_HOLDER=$h
      return 0
    fi
    sleep 0.25
  done
  echo "---- no single replica holds the node's gRPC stream within $2 s (holders: ${h:-none})"
  ss -tn state established "( sport = :$HA_G )" | sed 's/^/    /'
  return 1
}

# ha_console_count NAME PATTERN MIN TIMEOUT_S: waits until PATTERN is on the console MIN times.
ha_console_count() {
  local _
  for _ in $(seq $(($4 * 4))); do
    [ "$(vm_console "$1" | grep -cE -- "$2")" -ge "$3" ] && return 0
    sleep 0.25
  done
  echo "---- $1: '$2' not seen $3 times within $4 s; console tail:"
  vm_console "$1" | tail -n 20 | sed 's/^/    /'
  return 1
}

# ha_one_workflow: the shared database holds one instance and one workflow.
ha_one_workflow() {
  local q="SELECT (SELECT count(*) FROM edgeprov_kv WHERE key LIKE 'instances/%') || ' ' ||
    (SELECT count(*) FROM edgeprov_kv WHERE key LIKE 'workflows/%')" got
  got=$(psql -X -h "$HA_PG" -U postgres -d edgeprov -Atc "$q") || return 1
  [ "$got" = "1 1" ] && return 0
  echo "---- instances, workflows in the database: $got (expected 1 1)"
  return 1
}

# ha_console_fast NAME PATTERN TIMEOUT_S: waits for PATTERN (grep -E) on the raw console every
# 50 ms (vm_wait's 250 ms and its clean-up of the text would lose a two-second workflow).
ha_console_fast() {
  local _
  for _ in $(seq $(($3 * 20))); do
    grep -qaE -- "$2" "$E2E/$1/console.log" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "---- $1: no '$2' within $3 s"
  return 1
}

# ha_holds N: replica N holds an established gRPC connection.
ha_holds() { ha_stream_holders | grep -qx "$1"; }

ha_note() { # NAME TEXT: a line in the node's timeline
  local t
  t=$(e2e_elapsed "${VM_T0[$1]}")
  printf '%7.1f s  %s\n' "$t" "$2" >>"$E2E/$1/timeline"
  e2e_log "$1: $2 ($(printf '%.1f' "$t") s after power-on)"
}

scenario_ha() {
  local name=ha1 u serial=E2ENODE08 holder second survivor led=
  u=$(uuid_of 8)
  e2e_trap_install ha_cleanup
  if ! check "ha: PostgreSQL, three replicas and HAProxy up" ha_setup; then
    ha_cleanup
    e2e_trap_restore
    return
  fi
  local cli=("$BUILD/bin/edgeprov" --config "$HA_DIR/r1/site.conf")
  local front=https://10.0.2.2:$HA_FH/boot
  check "ha: host registered through r1 (no OS yet: its workflow stream will wait)" run_status 0 "$HA_DIR/add.out" \
    "${cli[@]}" host add --uuid "$u" --serial "$serial" --auto-onboard
  VM_CONF[$name]=$HA_DIR/r1/site.conf
  E2E_ART=$HA_ART VM_BOOTFILE=$HA_NETBOOT_URL vm_start "$name" "$u" "$serial" net
  if check "ha: iPXE runs" vm_wait $name "iPXE runs" 90 'iPXE initialising devices|iPXE 1\.' &&
    check "ha: iPXE fetches the signed UKI through HAProxy" vm_wait $name "micro-os.efi through HAProxy" 90 \
      "$front/micro-os\.efi\.\.\..* ok" &&
    check "ha: Micro-OS kernel starts" vm_wait $name "Micro-OS kernel starts" 90 'Linux version' &&
    check "ha: the agent onboards through HAProxy" vm_wait $name "onboarded" 120 'onboarded as' &&
    check "ha: its workflow stream waits" vm_wait $name "workflow stream waits" 60 'waiting for a workflow' &&
    check "ha: exactly one replica holds the stream" ha_wait_holder 0 20; then
    holder=$HA_HOLDER
    kill -KILL "${HA_RPID[$holder]}"
    wait "${HA_RPID[$holder]}" 2>/dev/null
    ha_note $name "r$holder, holding the workflow stream, killed (SIGKILL)"
    if grep -q 'reconciler: this replica leads it now' "$HA_DIR/r$holder/daemon.log"; then
      led=1
      e2e_log "ha: r$holder led the reconciler: a survivor takes it over"
    else
      e2e_log "ha: r$holder did not lead the reconciler"
    fi
    check "ha: the agent sees its stream break and reconnects" \
      vm_wait $name "stream broke, agent reconnects" 60 'workflow stream.*reconnecting'
    check "ha: ... and waits again" ha_console_count $name 'waiting for a workflow' 2 60
    HA_HOLDER=$((holder % 3 + 1))
    check "ha: ... on a survivor, through HAProxy" ha_wait_holder "$holder" 30
    survivor=$HA_HOLDER
    e2e_log "ha: the stream is on r$survivor now"
    VM_CONF[$name]=$HA_DIR/r$survivor/site.conf
    cli=("$BUILD/bin/edgeprov" --config "$HA_DIR/r$survivor/site.conf")
    check "ha: instance created through r$survivor" run_status 0 "$HA_DIR/create.out" \
      "${cli[@]}" instance create "$u" --os microvisor
    # The second kill: the replica now holding the stream, as soon as the workflow runs (its
    # first action shows on the console; the whole workflow takes 5-10 s under TCG).
    if check "ha: the workflow starts" ha_console_fast $name 'disk\.erase' 60; then
      ha_note $name "workflow received"
      second=$survivor
      check "ha: the workflow still runs" sh -c "! grep -q 'workflow done; restarting' '$E2E/$name/console.log'"
      check "ha: ... on r$second's stream" ha_holds "$second"
      kill -KILL "${HA_RPID[$second]}"
      wait "${HA_RPID[$second]}" 2>/dev/null
      ha_note $name "r$second, holding the stream mid-workflow, killed (SIGKILL)"
      survivor=$((6 - holder - second))
      VM_CONF[$name]=$HA_DIR/r$survivor/site.conf
      cli=("$BUILD/bin/edgeprov" --config "$HA_DIR/r$survivor/site.conf")
      check "ha: the agent's stream breaks mid-workflow, it reconnects" ha_console_count $name 'reconnecting' 2 60
      check "ha: ... and gets its workflow again, from r$survivor" ha_console_count $name 'workflow for instance' 2 60
      check "ha: the workflow ends, the node reboots" vm_wait $name "workflow done, rebooting" 180 \
        'workflow done; restarting' &&
        check "ha: the installed image boots" vm_wait $name "installed OS reads its seed" 120 \
          'edgeprov-microos: seed on' &&
        check "ha: its agent reports it running (through HAProxy)" vm_wait $name "installed OS running" 120 \
          'edgeprov-microos: installed OS running' &&
        check "ha: RUNNING in the inventory (r$survivor)" vm_wait $name "RUNNING in the inventory" 60 @running
      check "ha: HAProxy took r$second out" grep -q "Server replicas_grpc/r$second is DOWN" "$HA_DIR/haproxy.log"
    fi
    check "ha: HAProxy took r$holder out" grep -q "Server replicas_grpc/r$holder is DOWN" "$HA_DIR/haproxy.log"
    check "ha: the instance has one workflow" ha_one_workflow
    if [ -n "$led" ]; then
      check "ha: a survivor took the reconciler over" test "$(cat "$HA_DIR"/r[123]/daemon.log |
        grep -c 'reconciler: this replica leads it now')" -ge 2
    fi
    check "ha: the last replica, r$survivor, logged no error" lacks "$HA_DIR/r$survivor/daemon.log" "level=error"
  fi
  vm_timeline $name
  echo "inventory (through r${survivor:-1}):"
  "${cli[@]}" host list | sed 's/^/  /'
  "${cli[@]}" instance list | sed 's/^/  /'
  vm_stop $name
  ha_cleanup
  e2e_trap_restore
}
