# End-to-end harness: an orchestrator (edgeprovd on this machine, its artifacts built by
# `edgeprov artifacts build`) and QEMU virtual edge nodes (TCG, OVMF) that boot, onboard,
# provision and report RUNNING. Sourced by tests/e2e/run.sh after tests/integration/lib.sh.
#
# Contract: e2e_orchestrator_start brings up the orchestrator in $E2E (a scratch directory);
# vm_start starts a node; vm_wait waits for a console marker with its own timeout and adds it
# to the node's timeline; e2e_stop_all stops every process the harness started.
#
# Network: QEMU's user network, where the guest sees this machine's 127.0.0.1 as 10.0.2.2.
# edgeprovd listens on 0.0.0.0 (gRPC, HTTPS) with a certificate for 10.0.2.2. UEFI network
# boot starts from QEMU's DHCP bootfile, which can only be http:// (QEMU offers the
# "HTTPClient" class for http:// only): a plain-HTTP nginx answers it with the signed
# ipxe.efi for the firmware (User-Agent UefiHttpBoot) and with boot.ipxe for iPXE, which
# gets the same bootfile from DHCP; everything after that (kernel, initramfs, OS image,
# onboarding, workflow) is HTTPS or gRPC over TLS to edgeprovd.

E2E_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
E2E_OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
E2E_OVMF_SB_CODE=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd
E2E_OVMF_SB_VARS=/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd
E2E_SNAKEOIL_KEY=/usr/share/ovmf/PkKek-1-snakeoil.key
E2E_SNAKEOIL_CERT=/usr/share/ovmf/PkKek-1-snakeoil.pem
e2e_pids=()

e2e_log() { printf '[e2e %6.1fs] %s\n' "$(e2e_elapsed "$E2E_T0")" "$*"; }
e2e_now() { date +%s.%N; }
e2e_elapsed() { echo "$(e2e_now) - $1" | bc -l; }
e2e_die() {
  echo "e2e: $*" >&2
  exit 1
}

e2e_stop_all() {
  local p
  for p in "${e2e_pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}

# e2e_pki DIR ADDR: a site CA, and the orchestrator's certificate for ADDR and 127.0.0.1, RSA
# 2048 (iPXE refuses ECDSA P-256 server certificates). iPXE checks validity against the guest's
# clock (QEMU's RTC is this machine's UTC time).
e2e_pki() {
  mkdir -p "$1"
  (cd "$1" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
    -days 30 -subj "/CN=edgeprov-e2e-ca-$2" && openssl req -newkey rsa:2048 -nodes \
    -keyout tls.key -out tls.csr -subj /CN=orchestrator &&
    printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:localhost' "$2" >ext && openssl x509 -req -in tls.csr \
    -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 30 -extfile ext) >/dev/null 2>&1 || return 1
  chmod 600 "$1/tls.key"
}

# e2e_snakeoil_keys DIR: the Secure Boot db key OVMF's snakeoil variables trust, unencrypted
# for sbsign (the package ships it with the passphrase "snakeoil").
e2e_snakeoil_keys() {
  mkdir -p "$1"
  openssl pkey -in "$E2E_SNAKEOIL_KEY" -passin pass:snakeoil -out "$1/db.key" 2>/dev/null ||
    e2e_die "cannot read $E2E_SNAKEOIL_KEY (package ovmf)"
  chmod 600 "$1/db.key"
  cp "$E2E_SNAKEOIL_CERT" "$1/db.crt"
}

# e2e_site_conf DIR ADDR GRPC HTTPS MODE [PLUGIN:PROFILE:FILE:SHA256...]: writes DIR/site.conf
# for an orchestrator kept in DIR (DIR/pki, DIR/sb, DIR/data) that nodes reach at ADDR, in
# provisioning MODE (nztp or non-ztp). Each further argument enables an OS plugin whose
# PROFILE installs FILE, served from the artifact directory, whose raw image has SHA256.
# Recovery keys of encrypted nodes are sealed under DIR/recovery.key.
e2e_site_conf() {
  local d=$1 addr=$2 grpc=$3 https=$4 mode=$5
  shift 5
  local plugins='"storage-sqlite", "auth-local", "actions-core", "boot-https", "boot-usb"' profiles= spec
  for spec in "$@"; do
    local id profile file sha
    IFS=: read -r id profile file sha <<<"$spec"
    plugins+=", \"$id\""
    profiles+="$id = { profile = \"$profile\"; image_url = \"https://$addr:$https/boot/$file\"; image_sha256 = \"$sha\"; };"$'\n'
  done
  cat >"$d/site.conf" <<CONF
listen = { management = "unix:$d/mgmt.sock"; grpc = "0.0.0.0:$grpc"; https = "0.0.0.0:$https"; };
paths = { data = "$d/data"; plugins = [ "$BUILD/lib/edgeprov/plugins" ]; };
tls = { cert = "$d/pki/tls.pem"; key = "$d/pki/tls.key"; ca = "$d/pki/ca.pem"; };
provisioning = { mode = "$mode"; orchestrator = "$addr:$grpc"; token_url = "https://$addr:$https/oauth2/token"; };
plugins = { enabled = [ $plugins ]; };
artifacts = { base_url = "https://$addr:$https/boot"; signing_key = "$d/sb/db.key"; signing_cert = "$d/sb/db.crt"; };
secrets = { recovery_key_file = "$d/recovery.key"; };
$profiles
CONF
}

# e2e_orchestrator_prepare DIR ADDR MODE [DEBIAN_IMAGE DEBIAN_SHA256]: everything of an
# orchestrator in DIR but its processes: PKI for ADDR, the snakeoil db key, the boot artifacts
# (`edgeprov artifacts build`, signed), the microvisor image made from them (signed too), the
# Debian image when given, and the site config with the OS profiles "microvisor" and
# "debian-12". Prints what failed and returns 1 on failure. Sets PREP_GRPC, PREP_HTTPS.
e2e_orchestrator_prepare() {
  local d=$1 addr=$2 mode=$3 debian=${4:-} debian_sha=${5:-}
  PREP_GRPC=$(free_port) PREP_HTTPS=$(free_port)
  mkdir -p "$d"
  e2e_pki "$d/pki" "$addr" || { echo "cannot create the test PKI in $d/pki"; return 1; }
  e2e_snakeoil_keys "$d/sb"
  # The site key that seals the recovery keys of encrypted nodes (secrets.recovery_key_file).
  (umask 077 && head -c 48 /dev/urandom | base64 >"$d/recovery.key")
  e2e_site_conf "$d" "$addr" "$PREP_GRPC" "$PREP_HTTPS" "$mode"
  e2e_log "building the boot artifacts for $addr (edgeprov artifacts build)"
  "$BUILD/bin/edgeprov" --config "$d/site.conf" artifacts build >"$d/artifacts.out" 2>&1 ||
    { cat "$d/artifacts.out"; echo "artifacts build failed"; return 1; }
  local art=$d/data/artifacts profiles=()
  "$E2E_HERE/images/microvisor-image.sh" "$art" "$d/images" "$d/sb/db.key" "$d/sb/db.crt" >"$d/microvisor.out" 2>&1 ||
    { cat "$d/microvisor.out"; echo "the microvisor image could not be built"; return 1; }
  cp "$d/images/microvisor.img.zst" "$art/"
  profiles+=("os-microvisor:microvisor:microvisor.img.zst:$(cat "$d/images/microvisor.img.zst.sha256")")
  if [ -n "$debian" ]; then
    ln "$debian" "$art/" 2>/dev/null || cp "$debian" "$art/"
    profiles+=("os-ubuntu:debian-12:${debian##*/}:$debian_sha")
  fi
  e2e_site_conf "$d" "$addr" "$PREP_GRPC" "$PREP_HTTPS" "$mode" "${profiles[@]}"
}

# e2e_orchestrator_start MODE IMAGE IMAGE_SHA256: the orchestrator the QEMU user network
# reaches at 10.0.2.2 (e2e_orchestrator_prepare in $E2E; the os-ubuntu profile debian-12
# installs IMAGE), then edgeprovd and the netboot nginx. Sets E2E_CONF, E2E_ART, E2E_HTTPS,
# E2E_GRPC, E2E_NETBOOT_URL.
e2e_orchestrator_start() {
  e2e_orchestrator_prepare "$E2E" 10.0.2.2 "$1" "$2" "$3" || e2e_die "the orchestrator could not be prepared"
  E2E_GRPC=$PREP_GRPC E2E_HTTPS=$PREP_HTTPS
  E2E_CONF=$E2E/site.conf E2E_ART=$E2E/data/artifacts
  local web
  web=$(free_port)
  E2E_NETBOOT_URL=http://10.0.2.2:$web/netboot.efi
  e2e_daemon_start
  e2e_netboot_start "$web"
  e2e_log "edgeprovd ready (gRPC :$E2E_GRPC, HTTPS :$E2E_HTTPS), netboot $E2E_NETBOOT_URL"
}

# e2e_netboot_start PORT [DIR ART]: plain-HTTP nginx on 127.0.0.1:PORT answering /netboot.efi
# by User-Agent (OVMF takes a file for an EFI binary by its .efi name or type; iPXE recognises
# its script by the #!ipxe line whatever the name) from the artifact directory ART, its files
# (config, logs) in DIR; by default the main orchestrator's ($E2E, $E2E_ART). /edited/netboot.efi
# answers the same way from DIR/edited/ (ipxe.efi, boot.ipxe), where a scenario puts a script
# of its own; /edited/FILE is any other file there.
e2e_netboot_start() {
  local d=${2:-$E2E} art=${3:-$E2E_ART}
  chmod 755 "$E2E" "$d" "$d/data" "$art"
  cp /usr/local/share/edgeprov/ipxe/ipxe.efi "$d/unsigned-ipxe.efi" # as fetched, before signing
  chmod 644 "$d/unsigned-ipxe.efi"
  cat >"$d/netboot.conf" <<CONF
worker_processes 1; daemon off; pid $d/netboot.pid; error_log $d/netboot-error.log;
events { worker_connections 64; }
http {
  access_log $d/netboot-access.log; client_body_temp_path $d/nb; proxy_temp_path $d/np;
  fastcgi_temp_path $d/nf; uwsgi_temp_path $d/nu; scgi_temp_path $d/ns;
  map \$http_user_agent \$netboot_file { ~^UefiHttpBoot /ipxe.efi; default /boot.ipxe; }
  server {
    listen 127.0.0.1:$1;
    location = /netboot.efi { root $art; default_type application/octet-stream; try_files \$netboot_file =404; }
    location = /unsigned/ipxe.efi { alias $d/unsigned-ipxe.efi; default_type application/efi; }
    location = /edited/netboot.efi { root $d/edited; default_type application/octet-stream; try_files \$netboot_file =404; }
    location /edited/ { root $d; default_type application/octet-stream; }
  }
}
CONF
  nginx -c "$d/netboot.conf" >"$d/netboot.out" 2>&1 &
  e2e_pids+=($!)
  local _
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$1/netboot.efi" && return 0; sleep 0.05; done
  cat "$d/netboot.out" "$d/netboot-error.log" 2>/dev/null
  e2e_die "the netboot nginx did not start"
}

# e2e_daemon_start: starts edgeprovd on $E2E_CONF (log: $E2E/edgeprovd.log, appended) and
# waits until it is ready. Sets E2E_DAEMON.
e2e_daemon_start() {
  local log=$E2E/edgeprovd.log start
  start=0
  [ -e "$log" ] && start=$(wc -l <"$log")
  "$BUILD/bin/edgeprovd" --config "$E2E_CONF" >>"$log" 2>&1 &
  E2E_DAEMON=$!
  e2e_pids+=("$E2E_DAEMON")
  local _
  for _ in $(seq 200); do tail -n +"$((start + 1))" "$log" | grep -q 'msg="ready' && return 0; sleep 0.05; done
  cat "$log"
  e2e_die "edgeprovd did not start"
}

# e2e_orchestrator_mode MODE: restarts edgeprovd with provisioning.mode MODE (nztp or
# non-ztp); the inventory and the artifacts stay.
e2e_orchestrator_mode() {
  kill "$E2E_DAEMON" 2>/dev/null
  wait "$E2E_DAEMON" 2>/dev/null
  sed -i "s/mode = \"[a-z-]*\";/mode = \"$1\";/" "$E2E_CONF"
  e2e_daemon_start
  e2e_log "edgeprovd restarted in $1 mode"
}

e2e_cli() { "$BUILD/bin/edgeprov" --config "$E2E_CONF" "$@"; }

# tpm_new DIR: a software TPM 2.0's state in DIR (a machine's TPM of its own), and its
# endorsement key as the operator reads it, DIR/ek.pem (tpm2_createek -G rsa -f pem).
tpm_new() {
  local port
  mkdir -p "$1"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  swtpm socket --tpm2 --tpmstate dir="$1" --server type=tcp,port=$port,bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear >"$1/swtpm-setup.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  tpm2_createek -T "swtpm:host=127.0.0.1,port=$port" -G rsa -u "$1/ek.pem" -f pem -c "$1/ek.ctx" >>"$1/swtpm-setup.log" 2>&1
  local status=$?
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return $status
}

# vm_start NAME UUID SERIAL BOOT [secureboot]: starts a VM booting BOOT (net: UEFI HTTP boot
# from QEMU's DHCP, of $VM_BOOTFILE when set; usb: the USB image $E2E/usb.img as a USB stick,
# removable) with a blank 4 GiB
# target disk (bootindex 0: blank, OVMF falls through to the boot medium; once written, it
# boots the installed OS). Console: $E2E/NAME/console.log. With VM_TPM=DIR (tpm_new's) the VM
# has that TPM 2.0 (swtpm, TIS interface). With VM_DISK=FILE the target disk starts as a copy
# of FILE (another machine given a node's disk) and the firmware's variables are fresh. With
# VM_EXTRA_DISK=FILE the VM also has FILE as a second virtio disk, never a boot entry: a stick
# an attacker plugged in.
vm_start() {
  local name=$1 uuid=$2 serial=$3 boot=$4 sb=${5:-}
  local d=$E2E/$name
  mkdir -p "$d"
  local code=$E2E_OVMF_CODE vars=$E2E_OVMF_VARS machine=q35
  local extra=()
  if [ "$sb" = secureboot ]; then
    code=$E2E_OVMF_SB_CODE vars=$E2E_OVMF_SB_VARS machine=q35,smm=on
    extra+=(-global driver=cfi.pflash01,property=secure,value=on)
  fi
  cp "$vars" "$d/vars.fd"
  if [ -n "${VM_DISK:-}" ]; then
    cp --sparse=always "$VM_DISK" "$d/target.img" || e2e_die "vm_start: cannot copy the disk $VM_DISK"
  else
    truncate -s 4G "$d/target.img"
  fi
  local mac
  mac=$(printf '52:54:00:e2:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)))
  local net=(-netdev "user,id=n0,bootfile=${VM_BOOTFILE:-$E2E_NETBOOT_URL}" -device "virtio-net-pci,netdev=n0,mac=$mac,romfile=")
  case $boot in
  net) net[3]+=",bootindex=1" ;;
  usb) extra+=(-drive "if=none,id=usb,format=raw,readonly=on,file=$E2E/usb.img" -device qemu-xhci
    -device "usb-storage,drive=usb,removable=on,bootindex=1") ;;
  *) e2e_die "vm_start: unknown boot method $boot" ;;
  esac
  [ -n "${VM_EXTRA_DISK:-}" ] && extra+=(-drive "if=none,id=extra,format=raw,file=$VM_EXTRA_DISK"
    -device "virtio-blk-pci,drive=extra,serial=EPEXTRA00001")
  if [ -n "${VM_TPM:-}" ]; then
    swtpm socket --tpm2 --tpmstate dir="$VM_TPM" --ctrl "type=unixio,path=$d/swtpm.sock" --terminate \
      --log "file=$d/swtpm.log" &
    e2e_pids+=($!)
    for _ in $(seq 100); do [ -S "$d/swtpm.sock" ] && break; sleep 0.05; done
    extra+=(-chardev "socket,id=chrtpm,path=$d/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0)
  fi
  VM_T0[$name]=$(e2e_now)
  qemu-system-x86_64 -accel tcg -M "$machine" -m 1536 -smp 2 -display none -monitor none -no-user-config \
    -drive "if=pflash,format=raw,readonly=on,file=$code" -drive "if=pflash,format=raw,file=$d/vars.fd" \
    -drive "if=none,id=target,format=raw,file=$d/target.img" \
    -device "virtio-blk-pci,drive=target,serial=EPTARGET0001,bootindex=0" \
    "${net[@]}" "${extra[@]}" \
    -fw_cfg "name=etc/edk2/https/cacerts,file=$E2E_ART/cacerts.esl" \
    -fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n \
    -uuid "$uuid" -smbios "type=1,serial=$serial" \
    -serial "file:$d/console.log" </dev/null >"$d/qemu.out" 2>&1 &
  VM_PID[$name]=$!
  e2e_pids+=($!)
  : >"$d/timeline"
  echo "$uuid" >"$d/uuid"
  e2e_log "$name: started (uuid $uuid, serial $serial, boot $boot${sb:+, Secure Boot}${VM_TPM:+, TPM $VM_TPM})"
}
declare -A VM_T0 VM_PID VM_CONF # VM_CONF: the site config of the node's orchestrator, when not $E2E_CONF

# vm_console NAME: the console so far without ANSI escapes and carriage returns.
vm_console() { sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\r//g' "$E2E/$1/console.log" 2>/dev/null; }

# vm_wait NAME STAGE TIMEOUT_S PATTERN: waits until the console matches PATTERN (grep -E),
# or the instance is RUNNING when PATTERN is @running. Adds "STAGE at T s" to the node's
# timeline. Fails (printing the console's tail) on timeout or when the VM died.
vm_wait() {
  local name=$1 stage=$2 limit=$3 pattern=$4
  local start
  start=$(e2e_now)
  while :; do
    if [ "$pattern" = @running ]; then
      vm_instance_running "$name" && break
    elif vm_console "$name" | grep -qE -- "$pattern"; then
      break
    fi
    if ! kill -0 "${VM_PID[$name]}" 2>/dev/null && [ "$pattern" != @running ]; then
      echo "---- $name: QEMU exited while waiting for: $stage"
      vm_console "$name" | tail -n 40 | sed 's/^/    /'
      return 1
    fi
    if [ "$(echo "$(e2e_elapsed "$start") > $limit" | bc)" = 1 ]; then
      echo "---- $name: no '$stage' within ${limit}s; console tail:"
      vm_console "$name" | tail -n 40 | sed 's/^/    /'
      return 1
    fi
    sleep 0.25
  done
  local t
  t=$(e2e_elapsed "${VM_T0[$name]}")
  printf '%7.1f s  %s\n' "$t" "$stage" >>"$E2E/$name/timeline"
  e2e_log "$name: $stage ($(printf '%.1f' "$t") s after power-on)"
}

vm_uuid() { cat "$E2E/$1/uuid"; }

# vm_instance_running NAME: the node's Instance is RUNNING in the inventory.
vm_instance_running() {
  local id
  local cli=("$BUILD/bin/edgeprov" --config "${VM_CONF[$1]:-$E2E_CONF}")
  id=$("${cli[@]}" host show "$(vm_uuid "$1")" --json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("instance_id") or "")' 2>/dev/null)
  [ -n "$id" ] && "${cli[@]}" instance list 2>/dev/null | grep -qE "^$id .*RUNNING"
}

vm_timeline() {
  echo "timeline of $1 (seconds after power-on):"
  sed 's/^/  /' "$E2E/$1/timeline"
}

vm_stop() {
  kill "${VM_PID[$1]}" 2>/dev/null
  wait "${VM_PID[$1]}" 2>/dev/null
  return 0
}

# e2e_trap_install FN / e2e_trap_restore: a scenario with processes and namespaces of its own
# has FN run before the harness's own EXIT trap, until it puts that trap back (scenarios run
# one after the other: one saved trap is enough).
E2E_SAVED_TRAP=
e2e_trap_install() {
  local fn=$1 old
  old=$(trap -p EXIT)
  E2E_SAVED_TRAP=
  if [ -n "$old" ]; then
    eval "set -- $old"
    E2E_SAVED_TRAP=$3
  fi
  trap "$fn; $E2E_SAVED_TRAP" EXIT
}
e2e_trap_restore() {
  if [ -n "$E2E_SAVED_TRAP" ]; then trap -- "$E2E_SAVED_TRAP" EXIT; else trap - EXIT; fi
}
