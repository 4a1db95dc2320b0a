#!/usr/bin/env bash
# Integration test: a node proves it holds the TPM registered for its host before it gets
# credentials (issue 20, "a node identity that cannot be copied"). Real software TPMs (swtpm,
# each a machine of its own), real edgeprov-agent processes that talk to them through tpm2-tss,
# a real edgeprovd over TLS; the operator reads the EK with tpm2-tools as on a real machine.
#  - a host registered with its node's EK (host add --ek): that node onboards, answering the
#    orchestrator's challenge with its TPM; a copy of it (same UUID and serial) with another
#    TPM is refused, and host show says why; an agent without a TPM is told what is missing;
#  - onboarding.tpm_identity = "first_use": the first node's EK is recorded on the host, a
#    later node with another TPM is refused; invalidating the host forgets it;
#  - onboarding.tpm_identity = "required": a host without a registered EK is refused;
#  - a host without an EK on a site with the default ("off") onboards a node without a TPM
#    as before (clients of the reference contract send none).
# Usage: tpm_identity.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER
for tool in swtpm tpm2_createek; do
  command -v $tool >/dev/null || { echo "FAIL $tool not found: run scripts/install-deps.sh"; exit 1; }
done

# tpm_agent NODE TCTI [ARGS...]: the agent of node NODE (sysroot $tmp/NODE) with that TPM (at
# most 60 s: one that is never let in must not hang the test).
tpm_agent() {
  local node=$1 tcti=$2
  shift 2
  timeout 60 "$build/bin/edgeprov-agent" --orchestrator 127.0.0.1:$grpc --ca "$tmp/ca.pem" \
    --token-url "https://127.0.0.1:$https/oauth2/token" --sysroot "$tmp/$node" --state-dir "$tmp/$node/state" \
    --backoff-ms 100 --backoff-max-ms 400 --onboard-only --tpm "$tcti" "$@"
}

# refused NODE TCTI LOG TEXT: the agent is refused: its log names TEXT (waited for up to 60 s),
# and it stored no credentials. It is then stopped. A stopped agent leaves its keys loaded in
# swtpm, a TPM without the kernel's resource manager (/dev/tpmrm0 flushes what a closed
# connection loaded): they are flushed as the kernel would.
refused() {
  tpm_agent "$1" "$2" >"$3" 2>&1 &
  local pid=$! seen=1
  for _ in $(seq 600); do grep -qF -- "$4" "$3" && { seen=0; break; }; sleep 0.1; done
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [ "$2" = off ] || tpm2_flushcontext -t -T "$2" >/dev/null 2>&1
  [ $seen = 0 ] || { echo "---- $3 never said: $4"; sed 's/^/    /' "$3"; }
  [ $seen = 0 ] && [ ! -e "$tmp/$1/state/credentials" ]
}

# keep_secret NODE: notes the secret node NODE received, for the final check that no log holds one.
keep_secret() { sed -n 's/^client_secret=//p' "$tmp/$1/state/credentials" >>"$tmp/secrets"; }

# site MODE: (re)starts edgeprovd with onboarding.tpm_identity = MODE on a fresh inventory.
site() {
  [ -n "$daemon" ] && stop_daemon
  rm -rf "$tmp/data"
  one_action_site "$tmp"
  echo "onboarding = { tpm_identity = \"$1\"; };" >>"$tmp/site.conf"
  start_daemon "$tmp/site.conf" "$tmp/edgeprovd-$1.log"
}

swtpm_start tpm_a
swtpm_start tpm_b
check "the operator reads TPM A's EK (tpm2_createek)" run_status 0 "$tmp/ek_a.out" \
  tpm2_createek -T "$tpm_a_tcti" -G rsa -u "$tmp/ek_a.pem" -f pem -c "$tmp/ek_a.ctx"
check "... and TPM B's" run_status 0 "$tmp/ek_b.out" tpm2_createek -T "$tpm_b_tcti" -G rsa -u "$tmp/ek_b.pem" -f pem -c "$tmp/ek_b.ctx"
fp() { openssl pkey -pubin -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
fp_a=sha256:$(fp "$tmp/ek_a.pem") fp_b=sha256:$(fp "$tmp/ek_b.pem")
check "two software TPMs, two different EKs" test "$fp_a" != "$fp_b" -a ${#fp_a} -eq 71

make_test_tls "$tmp"
grpc=$(free_port) https=$(free_port)
E="$build/bin/edgeprov --config $tmp/site.conf"
U1=cccccccc-0000-4000-8000-000000000001
U2=cccccccc-0000-4000-8000-000000000002
U3=cccccccc-0000-4000-8000-000000000003

# ---- a host registered with its node's EK (the site's default: off) --------------------------
site off
check "host add --ek takes tpm2_createek's PEM" run_status 0 "$tmp/add1.out" \
  $E host add --uuid $U1 --serial TPMSER01 --os microvisor --auto-onboard --ek "$tmp/ek_a.pem"
$E host show $U1 >"$tmp/show1.out"
check "host show names the registered EK by its fingerprint" contains "$tmp/show1.out" "tpm ek:        $fp_a (registered)"
node_sysroot "$tmp/n1" $U1 TPMSER01
check "the node with the registered TPM onboards" run_status 0 "$tmp/a1.log" tpm_agent n1 "$tpm_a_tcti"
check "it answered the orchestrator's TPM challenge" contains "$tmp/a1.log" "answering the orchestrator's TPM challenge"
check "its credentials are stored" test -s "$tmp/n1/state/credentials"
keep_secret n1

# A copy of node 1 (same UUID and serial) on another machine: its TPM is not the one registered.
node_sysroot "$tmp/copy1" $U1 TPMSER01
check "a copy with another TPM is refused (PERMISSION_DENIED)" refused copy1 "$tpm_b_tcti" "$tmp/copy1.log" "PERMISSION_DENIED"
$E host show $U1 >"$tmp/show1b.out"
check "host show says the node's TPM is not the registered one" contains "$tmp/show1b.out" \
  "Onboarding refused: the node's TPM is not the one registered (see the daemon log)"
check "the daemon log names both endorsement keys" contains "$tmp/edgeprovd-off.log" \
  "the node's TPM is not the one registered for host $U1 (its endorsement key is $fp_b, the host's $fp_a)"
check "the daemon log names the refused node's address" contains "$tmp/edgeprovd-off.log" "refused the node from 127.0.0.1"
$E host show $U1 --json >"$tmp/show1.json"
check "host show --json has the EK" python3 -c "import json,sys; h=json.load(open('$tmp/show1.json')); \
sys.exit(0 if h['tpm_ek']=={'fingerprint':'$fp_a','first_use':False} else 1)"

# The same host's node without a TPM: told what is missing.
$E host add --uuid $U2 --serial TPMSER02 --os microvisor --auto-onboard --ek "$tmp/ek_b.pem" >/dev/null
node_sysroot "$tmp/n2" $U2 TPMSER02
check "a node without a TPM is refused (FAILED_PRECONDITION)" refused n2 off "$tmp/a2.log" "FAILED_PRECONDITION"
check "and told its host must prove its TPM" contains "$tmp/a2.log" "must prove it holds its registered TPM"
check "a host without an EK onboards a node without a TPM (site: off)" \
  enroll_node $U3 TPMSER03
keep_secret node
check "host add --ek refuses a file that is no key, naming it" run_status 1 "$tmp/badek.out" \
  $E host add --uuid cccccccc-0000-4000-8000-000000000009 --ek "$tmp/site.conf"
check "... with the reason" contains "$tmp/badek.out" "--ek: $tmp/site.conf: neither a PEM public key"
openssl genrsa -out "$tmp/small.key" 1024 2>/dev/null && openssl rsa -in "$tmp/small.key" -pubout -out "$tmp/small.pem" 2>/dev/null
check "host add --ek refuses an RSA 1024 key" run_status 1 "$tmp/smallek.out" \
  $E host add --uuid cccccccc-0000-4000-8000-000000000009 --ek "$tmp/small.pem"

# ---- first use ----------------------------------------------------------------------------------
site first_use
$E host add --uuid $U1 --serial TPMSER01 --os microvisor --auto-onboard >/dev/null
rm -rf "$tmp/n1/state"
check "first_use: the first node onboards with its TPM" run_status 0 "$tmp/f1.log" tpm_agent n1 "$tpm_b_tcti"
keep_secret n1
$E host show $U1 >"$tmp/showf.out"
check "first_use: its EK is recorded on the host" contains "$tmp/showf.out" "tpm ek:        $fp_b (recorded on first use)"
rm -rf "$tmp/copy1/state"
check "first_use: a later node with another TPM is refused" refused copy1 "$tpm_a_tcti" "$tmp/f2.log" "PERMISSION_DENIED"
$E host invalidate $U1 >/dev/null
$E host show $U1 >"$tmp/showi.out"
check "invalidating the host forgets the EK recorded on first use" contains "$tmp/showi.out" "tpm ek:        -"
$E host add --uuid $U2 --serial TPMSER02 --os microvisor --auto-onboard >/dev/null
check "first_use: a node without a TPM is refused" refused n2 off "$tmp/f3.log" "must prove it holds a TPM"

# ---- required -----------------------------------------------------------------------------------
site required
$E host add --uuid $U1 --serial TPMSER01 --os microvisor --auto-onboard >/dev/null
rm -rf "$tmp/n1/state"
check "required: a host without a registered EK is refused" refused n1 "$tpm_a_tcti" "$tmp/r1.log" \
  "has no registered TPM endorsement key and this site requires one"
$E host add --uuid $U2 --serial TPMSER02 --os microvisor --auto-onboard --ek "$tmp/ek_a.pem" >/dev/null
rm -rf "$tmp/n2/state"
check "required: a host with its EK onboards its node" run_status 0 "$tmp/r2.log" tpm_agent n2 "$tpm_a_tcti"
keep_secret n2
# Every secret a node received, and none of them in a daemon log.
mapfile -t secrets <"$tmp/secrets"
check "four nodes onboarded, each with a secret" test ${#secrets[@]} -eq 4 -a -n "${secrets[3]:-}"
for secret in "${secrets[@]}"; do
  check "  a node's secret is in no daemon log" absent -rF -- "$secret" "$tmp"/edgeprovd-*.log
done
stop_daemon
finish
