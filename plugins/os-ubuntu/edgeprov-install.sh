#!/bin/sh
# edgeprov-install: installs and starts the edge node agent on a mutable OS after its first
# boot. Each step leaves /var/lib/edgeprov-install/STEP.done and is skipped once that exists,
# so a second run does nothing and an interrupted one resumes; exits 0 when all are done.
# Run by edgeprov-install.service: what it prints goes to the journal.
# EDGEPROV_INSTALL_ROOT, when set, is put before every path (tests run it in a scratch tree).
# Embedded in the os-ubuntu workflow template, where edgeprov fills in the three values below;
# so no shell brace expansion is used here: the core reads a dollar-brace as a variable.
# shellcheck disable=SC2016
profile='${profile.name}'
instance_id='${instance.id}'
host_uuid='${host.uuid}'

root=$EDGEPROV_INSTALL_ROOT
state=$root/var/lib/edgeprov-install
conf=$root/etc/edgeprov
agent=/usr/local/bin/edgeprov-agent

log() { echo "edgeprov-install: $*"; }
fail() {
  log "error: $*" >&2
  exit 1
}

# put FILE MODE: writes stdin to FILE with MODE, replacing it in one rename.
put() { cat >"$1.tmp" && chmod "$2" "$1.tmp" && mv -f "$1.tmp" "$1"; }

case "$profile$instance_id$host_uuid" in
*[!A-Za-z0-9._-]*) fail "the profile, instance or host identity has unexpected characters" ;;
esac

# config: from what cloud-init wrote (agent.conf, credentials, the orchestrator's CA in the
# system store), the agent's arguments (agent.env) and the one CA it trusts (ca.pem).
step_config() {
  if [ ! -s "$conf/agent.conf" ] || [ ! -s "$conf/credentials" ]; then
    fail "$conf/agent.conf or $conf/credentials is missing (written by cloud-init)"
  fi
  chmod 0600 "$conf/credentials" || return 1
  orchestrator=$(sed -n 's/^orchestrator=//p' "$conf/agent.conf")
  token_url=$(sed -n 's/^token_url=//p' "$conf/agent.conf")
  case "$orchestrator" in
  '' | *[!]A-Za-z0-9.:[_-]*) fail "$conf/agent.conf: orchestrator is not host:port" ;;
  esac
  case "$token_url" in
  '') ;;
  *[!A-Za-z0-9._~:/?#@%=+-]*) fail "$conf/agent.conf: token_url has unexpected characters" ;;
  https://?*) token_url="--token-url $token_url" ;;
  *) fail "$conf/agent.conf: token_url is not https://" ;;
  esac
  printf '# by edgeprov-install for instance %s (%s)\nEDGEPROV_AGENT_ARGS=--orchestrator %s %s\n' \
    "$instance_id" "$profile" "$orchestrator" "$token_url" | put "$conf/agent.env" 0644 || return 1
  # The CA cloud-init put in the system store (since cloud-init 23.1, then before), each
  # file ended with a line break, which cloud-init may leave out.
  for ca in "$root"/usr/local/share/ca-certificates/cloud-init-ca-cert*.crt \
    "$root"/usr/share/ca-certificates/cloud-init-ca-cert*.crt; do
    if [ -f "$ca" ]; then cat "$ca" && echo || return 1; fi
  done | put "$conf/ca.pem" 0644 || return 1
  grep -q 'BEGIN CERTIFICATE' "$conf/ca.pem" || fail "cloud-init installed no CA (ca_certs) for the orchestrator"
}

# unit: the agent's service; it reports the installed OS running at every boot, then exits.
step_unit() {
  [ -x "$root$agent" ] || fail "$agent is missing from the image"
  mkdir -p "$root/etc/systemd/system" || return 1
  put "$root/etc/systemd/system/edgeprov-agent.service" 0644 <<'UNIT' || return 1
[Unit]
Description=edgeprov node agent: reports the installed OS to the orchestrator
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=0

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=/etc/edgeprov/agent.env
ExecStart=/usr/local/bin/edgeprov-agent --installed --ca /etc/edgeprov/ca.pem --state-dir /etc/edgeprov $EDGEPROV_AGENT_ARGS
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
}

step_enable() { systemctl enable edgeprov-agent.service; }

# start: queued, not waited for; the service retries until the orchestrator answers.
step_start() { systemctl start --no-block edgeprov-agent.service; }

mkdir -p "$state" || fail "cannot create $state"
for step in config unit enable start; do
  [ -e "$state/$step.done" ] && continue
  log "step $step"
  "step_$step" || fail "step $step failed"
  : >"$state/$step.done" || fail "cannot write $state/$step.done"
done
log "done: edgeprov-agent is installed ($profile, instance $instance_id)"
