# Shared helpers of the integration tests: checks that count, and a summary line.
# Each test script sources this, calls scratch, then check/expect_*, and ends with `finish`.
passed=0
failed=0

# scratch: the start every test script shares: a fresh directory in $tmp, and on exit (however the
# script ends) $daemon (start_daemon's) and every pid in $pids (the script adds there the other
# background processes it starts) are killed and waited for, the script's on_exit function runs
# when it defines one (for what else it must undo, e.g. loop devices), and $tmp is removed;
# KEEP=1 (or KEEP_TMP=1) keeps it, and says where.
scratch() {
  tmp=$(mktemp -d)
  pids=()
  daemon=
  trap scratch_cleanup EXIT
}
scratch_cleanup() {
  local p
  for p in ${daemon:-} "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if declare -F on_exit >/dev/null; then on_exit; fi
  if [ -n "${KEEP:-}${KEEP_TMP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
  fi
}

# contains FILE TEXT: the file holds TEXT verbatim (prints the file when not).
contains() {
  grep -qF -- "$2" "$1"
  local status=$?
  case $status in
    0) return 0 ;;
    1) echo "---- $1 lacks: $2"; sed 's/^/    /' "$1" ;;
    *) echo "---- cannot read $1 (grep exit status $status)" ;;
  esac
  return 1
}

# absent GREP_ARGS...: `grep -q GREP_ARGS` finds nothing, which is its exit status 1 and no other:
# a match fails, naming the files that hold it (never the text: it may be a secret), and so does a
# grep error (status 2: a missing or unreadable file, which grep names), that `! grep` would take
# for "absent".
absent() {
  grep -q "$@"
  local status=$?
  [ "$status" -eq 1 ] && return 0
  if [ "$status" -eq 0 ]; then
    echo "---- found where it must be absent, in:"
    grep -l "$@" | sed 's/^/    /'
  else
    echo "---- grep failed (exit status $status, the file named above), so nothing shows the text absent"
  fi
  return 1
}

# lacks FILE TEXT: the file does not hold TEXT (and can be read: see absent).
lacks() { absent -F -- "$2" "$1"; }

# run_status EXPECTED OUTFILE COMMAND...: runs COMMAND with stdout+stderr to OUTFILE and
# checks its exit status.
run_status() {
  local expected=$1 out=$2
  shift 2
  "$@" >"$out" 2>&1
  local status=$?
  if [ "$status" -ne "$expected" ]; then
    echo "---- exit status $status, expected $expected: $*"
    sed 's/^/    /' "$out"
    return 1
  fi
}

# free_port: prints a TCP port free on 127.0.0.1 now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# swtpm_start NAME: a software TPM 2.0 of its own (state in $tmp/NAME, log $tmp/NAME.log; its pid
# in $pids), ready when this returns; sets NAME_tcti to its tpm2-tss TCTI. The swtpm TCTI finds
# the control channel on the port after the command port, so both must be free.
swtpm_start() {
  local port
  for _ in $(seq 20); do
    port=$(free_port)
    python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', $port + 1))" 2>/dev/null && break
  done
  mkdir -p "$tmp/$1"
  swtpm socket --tpm2 --tpmstate dir="$tmp/$1" --server type=tcp,port=$port,bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear >"$tmp/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  eval "${1}_tcti=swtpm:host=127.0.0.1,port=$port"
}

# make_test_tls DIR: a throwaway CA (DIR/ca.pem, ca.key) and a server certificate for
# 127.0.0.1-127.0.0.4 (replicas on addresses of their own) and localhost signed by it (DIR/tls.pem, DIR/tls.key, mode 0600).
make_test_tls() {
  ( cd "$1" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 1 \
      -subj /CN=edgeprov-test-ca && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key \
      -out tls.csr -subj /CN=localhost && printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4,DNS:localhost' >ext && openssl x509 -req \
      -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tls.pem -days 1 -extfile ext ) >/dev/null 2>&1
  chmod 600 "$1/tls.key"
}

# start_daemon CONFIG LOG: edgeprovd in the background (pid in $daemon, which scratch's
# cleanup kills), waiting until it is ready; prints its log when it does not get there.
# stop_daemon: SIGTERM, and its exit status. Needs: build.
start_daemon() {
  "$build/bin/edgeprovd" --config "$1" >"$2" 2>&1 &
  daemon=$!
  for _ in $(seq 200); do grep -q 'msg="ready' "$2" && return 0; sleep 0.05; done
  echo "---- edgeprovd did not start:"; cat "$2"; return 1
}
stop_daemon() {
  kill -TERM "$daemon"; wait "$daemon"; local status=$?; daemon=; return $status
}

# one_action_site DIR: DIR/site.conf for a loopback edgeprovd (TLS from make_test_tls DIR;
# listen.grpc and listen.https on 127.0.0.1:$grpc and :$https, which the caller sets) whose
# os-microvisor workflow, DIR/workflow.conf, is one disk.erase of the node's target disk: the
# OS image is never fetched.
one_action_site() {
  local sha
  sha=$(printf x | sha256sum | cut -d' ' -f1)
  printf 'actions = (\n  { action = "disk.erase"; params = { target = "${node.target_disk}"; }; }\n);\n' >"$1/workflow.conf"
  cat >"$1/site.conf" <<CONF
listen = { management = "unix:$1/mgmt.sock"; grpc = "127.0.0.1:$grpc"; https = "127.0.0.1:$https"; };
paths = { data = "$1/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
tls = { cert = "$1/tls.pem"; key = "$1/tls.key"; ca = "$1/ca.pem"; };
provisioning = { mode = "nztp"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "actions-core", "os-microvisor" ]; };
os-microvisor = { image_url = "https://127.0.0.1:1/microvisor.img.zst"; image_sha256 = "$sha"; template_file = "$1/workflow.conf"; };
CONF
}

# loopback_site: how a test with an edgeprovd of its own starts: no CLI settings or proxies
# inherited from the caller, a throwaway CA and server certificate in $tmp (make_test_tls), free
# ports $grpc and $https, and $tmp/site.conf (one_action_site).
loopback_site() {
  unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
  make_test_tls "$tmp"
  grpc=$(free_port) https=$(free_port)
  one_action_site "$tmp"
}

# node_sysroot DIR UUID SERIAL: a node's fake sysfs (DMI UUID and serial) under DIR.
node_sysroot() {
  mkdir -p "$1/sys/class/dmi/id"
  echo "$2" >"$1/sys/class/dmi/id/product_uuid"
  echo "$3" >"$1/sys/class/dmi/id/product_serial"
}

# node_agent ARGS...: the agent as the node whose sysroot is $tmp/node, against this test's
# edgeprovd (127.0.0.1:$grpc, tokens from :$https, trusting $tmp/ca.pem), retrying quickly.
node_agent() {
  "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" \
    --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot "$tmp/node" --state-dir "$tmp/node/state" \
    --backoff-ms 100 --backoff-max-ms 400 "$@"
}

# enroll_node UUID SERIAL: registers a host that onboards by itself (OS profile microvisor),
# makes its node's sysroot in $tmp/node and onboards it with node_agent (log: $tmp/onboard.log).
# Needs $E, the CLI against this test's site.
enroll_node() {
  $E host add --uuid "$1" --serial "$2" --os microvisor --auto-onboard >/dev/null &&
    node_sysroot "$tmp/node" "$1" "$2" &&
    run_status 0 "$tmp/onboard.log" node_agent --onboard-only
}

# node_token DIR UUID: a bearer token for the node whose credentials are in DIR/state (the
# client-credentials grant at 127.0.0.1:$https, trusting $tmp/ca.pem).
node_token() {
  curl -sS --cacert "$tmp/ca.pem" -u "edgenode-$2:$(sed -n 's/^client_secret=//p' "$1/state/credentials")" \
    -d grant_type=client_credentials "https://127.0.0.1:$https/oauth2/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
