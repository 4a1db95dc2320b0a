# Scenario httpsboot: UEFI *HTTPS* boot as the reference does it. Sourced by tests/e2e/run.sh
# after tests/integration/lib.sh and tests/e2e/lib.sh; defines scenario_httpsboot.
#
# QEMU's user network can only hand out http:// boot files (its DHCP offers the "HTTPClient"
# vendor class for http:// only), so this scenario builds its own network: a network namespace
# with a bridge (10.0.3.1/24) and a tap device for the VM, dnsmasq as the DHCP server and a
# second edgeprovd (own scratch dir $E2E/https, own PKI for IP:10.0.3.1, own artifacts) inside
# it. dnsmasq answers the firmware (vendor class HTTPClient...) with option 60 "HTTPClient" and
# https://10.0.3.1:PORT/boot/ipxe.efi, and iPXE (user class "iPXE") with .../boot.ipxe. OVMF's
# own HTTP boot driver fetches the signed ipxe.efi over TLS, trusting the site CA given as the
# TlsCaCertificate (fw_cfg etc/edk2/https/cacerts); iPXE imports the same CA and fetches
# boot.ipxe, the kernel and the initramfs over HTTPS. The node is registered without an OS, so
# the scenario ends when the Micro-OS agent has onboarded and reported in.
#
# OVMF 2022.11's HTTP boot driver sends HEAD then GET for ipxe.efi on one connection and
# cannot open a second TLS connection in between ("Error: Unexpected network error."): the
# check "edgeprovd keeps HTTPS connections alive" guards that (edgeprovd once closed the
# connection after every file response).
#
# Needs root (ip netns, tap), dnsmasq (package dnsmasq-base). Everything the scenario starts
# runs in the namespace and is stopped, and the namespace removed, when it ends or the harness
# exits.

HB_NS=
HB_PIDS=()
HB_OLD_TRAP=
HB_IP=10.0.3.1
HB_FW_URL=
HB_VM=
HB_BROKEN=

# hb_cleanup: stops what the scenario started and removes its namespace (idempotent).
hb_cleanup() {
  local p
  for p in "${HB_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${HB_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  HB_PIDS=()
  if [ -n "$HB_NS" ]; then
    ip netns del "$HB_NS" 2>/dev/null
    HB_NS=
  fi
}

# hb_trap_install / hb_trap_restore: runs hb_cleanup before the harness's own EXIT trap.
hb_trap_install() {
  local old
  old=$(trap -p EXIT)
  HB_OLD_TRAP=
  if [ -n "$old" ]; then
    eval "set -- $old"
    HB_OLD_TRAP=$3
  fi
  trap "hb_cleanup; $HB_OLD_TRAP" EXIT
}
hb_trap_restore() {
  if [ -n "$HB_OLD_TRAP" ]; then trap -- "$HB_OLD_TRAP" EXIT; else trap - EXIT; fi
}

# hb_pki DIR: a site CA and an RSA 2048 server certificate for 10.0.3.1 (iPXE does not take
# the orchestrator's ECDSA P-256 certificate).
hb_pki() {
  mkdir -p "$1"
  (cd "$1" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
    -days 30 -subj /CN=edgeprov-e2e-https-ca && openssl req -newkey rsa:2048 -nodes \
    -keyout tls.key -out tls.csr -subj /CN=orchestrator &&
    printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:localhost' "$HB_IP" >ext && openssl x509 -req -in tls.csr \
    -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 30 -extfile ext) >/dev/null 2>&1 || return 1
  chmod 600 "$1/tls.key"
}

# hb_wait_file FILE PATTERN TRIES: polls FILE for PATTERN (grep -E) every 0.1 s.
hb_wait_file() {
  local _
  for _ in $(seq "$3"); do grep -qE -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# hb_setup DIR: namespace, bridge, tap, PKI, config, artifacts, edgeprovd, dnsmasq.
# Sets HB_CONF, HB_ART, HB_HTTPS, HB_TAP.
hb_setup() {
  local d=$1
  HB_NS=edgeprov-hb-$$-$RANDOM
  HB_TAP=hbtap0
  ip netns add "$HB_NS" || { echo "cannot create network namespace $HB_NS (root?)"; HB_NS=; return 1; }
  ip -n "$HB_NS" link set lo up &&
    ip -n "$HB_NS" link add hbbr0 type bridge &&
    ip -n "$HB_NS" addr add "$HB_IP/24" dev hbbr0 &&
    ip -n "$HB_NS" tuntap add dev "$HB_TAP" mode tap &&
    ip -n "$HB_NS" link set "$HB_TAP" master hbbr0 &&
    ip -n "$HB_NS" link set "$HB_TAP" up &&
    ip -n "$HB_NS" link set hbbr0 up || { echo "cannot set up the bridge and tap in $HB_NS"; return 1; }

  local grpc
  grpc=$(free_port) HB_HTTPS=$(free_port) # free in the host namespace, so free in ours too
  HB_CONF=$d/site.conf HB_ART=$d/data/artifacts
  hb_pki "$d/pki" || { echo "cannot create the PKI in $d/pki"; return 1; }
  e2e_snakeoil_keys "$d/sb"
  cat >"$HB_CONF" <<CONF
listen = { management = "unix:$d/mgmt.sock"; grpc = "0.0.0.0:$grpc"; https = "0.0.0.0:$HB_HTTPS"; };
paths = { data = "$d/data"; plugins = [ "$BUILD/lib/edgeprov/plugins" ]; };
tls = { cert = "$d/pki/tls.pem"; key = "$d/pki/tls.key"; ca = "$d/pki/ca.pem"; };
provisioning = { mode = "nztp"; orchestrator = "$HB_IP:$grpc"; token_url = "https://$HB_IP:$HB_HTTPS/oauth2/token"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "actions-core", "boot-https" ]; };
artifacts = { base_url = "https://$HB_IP:$HB_HTTPS/boot"; signing_key = "$d/sb/db.key";
              signing_cert = "$d/sb/db.crt"; };
CONF
  "$BUILD/bin/edgeprov" --config "$HB_CONF" artifacts build >"$d/artifacts.out" 2>&1 ||
    { cat "$d/artifacts.out"; echo "artifacts build failed"; return 1; }
  ip netns exec "$HB_NS" "$BUILD/bin/edgeprovd" --config "$HB_CONF" >"$d/edgeprovd.log" 2>&1 &
  HB_PIDS+=($!)
  e2e_pids+=($!)
  hb_wait_file "$d/edgeprovd.log" 'msg="ready' 200 ||
    { cat "$d/edgeprovd.log"; echo "edgeprovd did not start in $HB_NS"; return 1; }

  local base=https://$HB_IP:$HB_HTTPS/boot
  HB_FW_URL=$base/ipxe.efi
  cat >"$d/dnsmasq.conf" <<CONF
port=0
interface=hbbr0
bind-interfaces
user=root
pid-file=$d/dnsmasq.pid
dhcp-leasefile=$d/dnsmasq.leases
log-facility=$d/dnsmasq.log
log-dhcp
dhcp-range=10.0.3.100,10.0.3.199,255.255.255.0,1h
dhcp-authoritative
# UEFI HTTP boot clients send vendor class HTTPClient:Arch:...; iPXE sends user class iPXE.
dhcp-vendorclass=set:httpclient,HTTPClient
dhcp-userclass=set:ipxe,iPXE
# edk2's HTTP boot driver takes an offer only with option 60 "HTTPClient" echoed.
dhcp-option-force=tag:httpclient,tag:!ipxe,60,HTTPClient
dhcp-boot=tag:httpclient,tag:!ipxe,$HB_FW_URL
dhcp-boot=tag:ipxe,$base/boot.ipxe
CONF
  ip netns exec "$HB_NS" /usr/sbin/dnsmasq --keep-in-foreground --conf-file="$d/dnsmasq.conf" \
    >"$d/dnsmasq.out" 2>&1 &
  HB_PIDS+=($!)
  e2e_pids+=($!)
  hb_wait_file "$d/dnsmasq.log" 'DHCP, IP range' 100 ||
    { cat "$d/dnsmasq.out" "$d/dnsmasq.log" 2>/dev/null; echo "dnsmasq did not start in $HB_NS"; return 1; }
  # The artifact as the firmware will fetch it, from inside the namespace.
  ip netns exec "$HB_NS" curl -sSf --cacert "$d/pki/ca.pem" -o /dev/null "$HB_FW_URL" ||
    { echo "nothing serves $HB_FW_URL"; return 1; }
  e2e_log "httpsboot: namespace $HB_NS, edgeprovd on $HB_IP (gRPC :$grpc, HTTPS :$HB_HTTPS), dnsmasq on hbbr0"
}

# hb_keepalive URL CA: two HEAD requests of URL go over one TLS connection (what OVMF's HTTP
# boot driver needs), as seen from inside the namespace.
hb_keepalive() {
  local out
  out=$(ip netns exec "$HB_NS" curl -sv --http1.1 --cacert "$2" -I "$1" -o /dev/null "$1" -o /dev/null 2>&1)
  if echo "$out" | grep -q 'Re-using existing connection' && ! echo "$out" | grep -qi '^< connection: close'; then
    return 0
  fi
  echo "---- $1: the server closes the connection after each response:"
  echo "$out" | grep -iE '^< (HTTP|connection)|Connected to|Closing' | sed 's/^/    /'
  return 1
}

# hb_vm_start NAME UUID SERIAL: an OVMF VM on the namespace's tap, network boot by OVMF's own
# stack (no option ROM), PXE off, the site CA as TlsCaCertificate. Console $E2E/NAME/console.log;
# registered in VM_T0/VM_PID so vm_wait works on it.
hb_vm_start() {
  local name=$1 uuid=$2 serial=$3
  local d=$E2E/$name
  mkdir -p "$d"
  cp "$E2E_OVMF_VARS" "$d/vars.fd"
  truncate -s 4G "$d/target.img"
  local mac
  mac=$(printf '52:54:00:e3:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)))
  VM_T0[$name]=$(e2e_now)
  ip netns exec "$HB_NS" qemu-system-x86_64 -accel tcg -M q35 -m 1536 -smp 2 -display none -monitor none \
    -no-user-config \
    -drive "if=pflash,format=raw,readonly=on,file=$E2E_OVMF_CODE" -drive "if=pflash,format=raw,file=$d/vars.fd" \
    -drive "if=none,id=target,format=raw,file=$d/target.img" \
    -device "virtio-blk-pci,drive=target,serial=EPTARGET0001,bootindex=0" \
    -netdev "tap,id=n0,ifname=$HB_TAP,script=no,downscript=no" \
    -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=,bootindex=1" \
    -fw_cfg "name=etc/edk2/https/cacerts,file=$HB_ART/cacerts.esl" \
    -fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n \
    -uuid "$uuid" -smbios "type=1,serial=$serial" \
    -serial "file:$d/console.log" </dev/null >"$d/qemu.out" 2>&1 &
  VM_PID[$name]=$!
  HB_PIDS+=($!)
  e2e_pids+=($!)
  : >"$d/timeline"
  echo "$uuid" >"$d/uuid"
  e2e_log "$name: started in $HB_NS (uuid $uuid, serial $serial, UEFI HTTPS boot)"
}

# hb_dhcp_offered LOG CLASS URL: dnsmasq's log shows a reply carrying bootfile URL to a client
# whose tags include CLASS (httpclient or ipxe).
hb_dhcp_offered() {
  python3 - "$@" <<'PY'
import re, sys
log, tag, url = sys.argv[1:4]
# log-dhcp writes per transaction "<xid> tags: ...", "<xid> sent size: N option: 67 bootfile-name  URL",
# "<xid> sent size: 10 option: 60 vendor-class  48:54:54:50:43:6c:69:65:6e:74" ("HTTPClient" in hex).
tags, boot, opt60 = {}, {}, {}
for line in open(log, errors="replace"):
    m = re.search(r"dnsmasq-dhcp\[\d+\]: (\d+) (.*)$", line)
    if not m:
        continue
    xid, rest = m.groups()
    if rest.startswith("tags: "):
        tags[xid] = [t.strip() for t in rest[6:].split(",")]
    elif rest.startswith("bootfile name: "):
        boot.setdefault(xid, set()).add(rest[len("bootfile name: "):].strip())
    elif re.search(r"option: +67 bootfile-name ", rest):
        boot.setdefault(xid, set()).add(rest.split("bootfile-name", 1)[1].strip())
    elif re.search(r"option: +60 vendor-class +(HTTPClient|48:54:54:50:43:6c:69:65:6e:74)$", rest):
        opt60[xid] = True
for xid, b in boot.items():
    if url in b and tag in tags.get(xid, []) and (tag != "httpclient" or opt60.get(xid)):
        sys.exit(0)
print(f"---- {log}: no reply with bootfile {url} to a '{tag}' client"
      + (" with option 60 HTTPClient" if tag == "httpclient" else ""))
sys.exit(1)
PY
}

# hb_stage CHECKNAME STAGE TIMEOUT PATTERN: a vm_wait counted as a check; once one stage has
# failed the later ones are skipped (not counted) instead of each waiting out its timeout. A
# stage also fails as soon as the firmware gave up on network boot (its shell started).
hb_stage() {
  if [ -n "$HB_BROKEN" ]; then
    echo "skip $1 (an earlier stage failed)"
    return 0
  fi
  check "$1" hb_wait_or_break "$2" "$3" "$4"
}
hb_wait_or_break() {
  local _
  for _ in $(seq $(($2 * 4))); do
    vm_console "$HB_VM" | grep -qE -- "$3" && break
    vm_console "$HB_VM" | grep -q 'starting Boot.*EFI Internal Shell' && break
    sleep 0.25
  done
  vm_wait "$HB_VM" "$1" 2 "$3" && return 0
  HB_BROKEN=1
  if vm_console "$HB_VM" | grep -q 'Unexpected network error'; then
    echo "     (OVMF could not fetch $HB_FW_URL: see the keep-alive check above)"
  fi
  return 1
}

# hb_onboarded UUID: the inventory has the host ONBOARDED.
hb_onboarded() {
  "$BUILD/bin/edgeprov" --config "$HB_CONF" host show "$1" --json |
    python3 -c 'import json,sys; h=json.load(sys.stdin); print("---- current_state", h.get("current_state")) if h.get("current_state") != "ONBOARDED" else None; sys.exit(h.get("current_state") != "ONBOARDED")'
}

# hb_console_has NAME PATTERN: the VM's console matches PATTERN (grep -E).
hb_console_has() {
  vm_console "$1" | grep -qE -- "$2" && return 0
  echo "---- $1: console lacks /$2/"
  return 1
}

scenario_httpsboot() {
  local d=$E2E/https name=https/node1
  local u=6f1e2d3c-4b5a-4978-8a9b-0000000000f1 serial=E2ENODEF1
  mkdir -p "$d"
  hb_trap_install
  if ! check "httpsboot: namespace, dnsmasq and edgeprovd up" hb_setup "$d"; then
    hb_cleanup
    hb_trap_restore
    return
  fi
  local base=https://$HB_IP:$HB_HTTPS/boot
  local cli=("$BUILD/bin/edgeprov" --config "$HB_CONF")
  check "httpsboot: host registered" run_status 0 "$d/add.out" "${cli[@]}" host add --uuid "$u" \
    --serial "$serial" --auto-onboard
  check "httpsboot: edgeprovd keeps HTTPS connections alive (OVMF HTTP boot needs it)" \
    hb_keepalive "$base/ipxe.efi" "$d/pki/ca.pem"
  HB_VM=$name HB_BROKEN=
  hb_vm_start "$name" "$u" "$serial"
  hb_stage "httpsboot: OVMF starts HTTP boot" "OVMF HTTP boot starts" 120 'Start HTTP Boot'
  hb_stage "httpsboot: OVMF takes the https:// URI from DHCP" "firmware got the HTTPS URI" 60 "URI: $HB_FW_URL"
  hb_stage "httpsboot: the signed iPXE, fetched by OVMF over HTTPS, runs" "iPXE runs" 120 'iPXE initialising devices'
  hb_stage "httpsboot: iPXE fetches boot.ipxe over HTTPS" "boot.ipxe fetched" 60 "$base/boot\.ipxe\.\.\. ok"
  hb_stage "httpsboot: iPXE fetches the kernel over HTTPS" "vmlinuz fetched" 90 "$base/vmlinuz\.\.\..* ok"
  hb_stage "httpsboot: iPXE fetches the initramfs over HTTPS" "initrd fetched" 90 "$base/initrd\.img\.\.\..* ok"
  hb_stage "httpsboot: Micro-OS kernel starts" "Micro-OS kernel starts" 90 'Linux version'
  hb_stage "httpsboot: Micro-OS agent onboards" "agent onboarded" 180 'onboarded as'
  hb_stage "httpsboot: agent reports in on the node API" "agent reported in" 120 'reported in on the node API'
  # After the fact, from the DHCP server's side and the inventory.
  check "httpsboot: dnsmasq offered the HTTPS ipxe.efi URL with option 60 to the firmware" \
    hb_dhcp_offered "$d/dnsmasq.log" httpclient "$HB_FW_URL"
  if [ -z "$HB_BROKEN" ]; then
    check "httpsboot: dnsmasq offered boot.ipxe to iPXE" hb_dhcp_offered "$d/dnsmasq.log" ipxe "$base/boot.ipxe"
    check "httpsboot: no plain-HTTP URL on the console" sh -c \
      "! sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' '$E2E/$name/console.log' | grep -qE 'http://$HB_IP'"
    check "httpsboot: the host is ONBOARDED in the inventory" hb_onboarded "$u"
  fi
  vm_timeline "$name"
  if [ -z "$HB_BROKEN" ]; then
    printf 'httpsboot: power-on to agent reported in: %s s\n' "$(awk 'END { print $1 }' "$E2E/$name/timeline")"
  fi
  vm_stop "$name"
  hb_cleanup
  hb_trap_restore
}
