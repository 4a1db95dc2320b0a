#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: real, no mock.
#
#   pg_cluster.sh run CMD [ARG...]   start a cluster in a fresh temporary directory, run CMD with
#                                    PG_TEST_DIR set to it, stop the cluster and remove the
#                                    directory (whatever CMD did); exits with CMD's status
#   pg_cluster.sh start DIR          create and start a cluster in DIR (created if missing)
#   pg_cluster.sh restart DIR        pg_ctl restart -m fast (the tests' "PostgreSQL restarted")
#   pg_cluster.sh halt DIR           stop the server, keeping DIR (an outage)
#   pg_cluster.sh resume DIR         start the halted server again
#   pg_cluster.sh stop DIR           stop the cluster and remove DIR
#
# The server listens only on a Unix socket in DIR (listen_addresses = ''), so clusters of
# parallel runs never share a port. The superuser "postgres" may connect over the socket
# without a password (the tests' administration); role "edgeprov" owns database
# "edgeprov" and must give its password (scram-sha-256), which is in DIR/passfile (mode 0600,
# the libpq passfile format) and DIR/password. DIR/env holds PGHOST and PGPORT.
# PostgreSQL refuses to run as root: when run by root, the server runs as the user `nobody`
# (runuser), and DIR is given to it.
set -euo pipefail

port=5432
bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ ! -x "$bindir/initdb" ]; then
  echo "pg_cluster: no PostgreSQL server found (looked in /usr/lib/postgresql/*/bin; run scripts/install-deps.sh)" >&2
  exit 2
fi

as_server() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

start() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then chown nobody "$dir"; fi
  chmod 0700 "$dir"
  (cd "$dir" && as_server "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1) || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  cat >"$dir/data/pg_hba.conf" <<EOF
local all postgres trust
local all all scram-sha-256
EOF
  if [ "$(id -u)" -eq 0 ]; then chown nobody "$dir/data/pg_hba.conf"; fi
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
password_encryption = 'scram-sha-256'
EOF
  (cd "$dir" && as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null) || {
    cat "$dir/server.log" >&2
    return 1
  }
  local password
  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres <<EOF
CREATE ROLE edgeprov LOGIN PASSWORD '$password';
CREATE DATABASE edgeprov OWNER edgeprov;
EOF
  (umask 077 && printf '%s' "$password" >"$dir/password" &&
    printf '*:*:*:edgeprov:%s\n' "$password" >"$dir/passfile")
  printf 'PGHOST=%s\nPGPORT=%s\n' "$dir" "$port" >"$dir/env"
}

restart() {
  local dir=$1
  (cd "$dir" && as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null)
}

halt() {
  local dir=$1
  (cd "$dir" && as_server "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null)
}

resume() {
  local dir=$1
  (cd "$dir" && as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null)
}

stop() {
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    (cd "$dir" && as_server "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
run)
  shift
  [ $# -ge 1 ] || { echo "usage: pg_cluster.sh run CMD [ARG...]" >&2; exit 2; }
  dir=$(mktemp -d /tmp/edgeprov-pg.XXXXXX)
  trap 'stop "$dir"' EXIT
  start "$dir"
  status=0
  PG_TEST_DIR=$dir PG_CLUSTER="$0" "$@" || status=$?
  exit $status
  ;;
start | restart | halt | resume | stop)
  [ $# -eq 2 ] || { echo "usage: pg_cluster.sh $1 DIR" >&2; exit 2; }
  "$1" "$2"
  ;;
*)
  echo "usage: pg_cluster.sh run CMD [ARG...] | start|restart|halt|resume|stop DIR" >&2
  exit 2
  ;;
esac
