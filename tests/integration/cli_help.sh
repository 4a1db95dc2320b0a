#!/usr/bin/env bash
# Integration test: the CLI's conventions on every command of its table (`edgeprov --commands`,
# the rows of core/cli/commands.c, so a new command cannot be left out): -h/--help prints its usage
# on stdout and exits 0 without loading a plugin or contacting edgeprovd; an unknown option, a
# missing or an extra argument prints the usage on stderr and exits 2; edgeprovd out of reach
# (no socket, a closed port, a failed TLS handshake) exits 3. Then the man pages and the bash
# completion the build made from the same table.
# Usage: cli_help.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
edgeprov=$build/bin/edgeprov
scratch
unset EDGEPROV_CONFIG EDGEPROV_SERVER

# A config that cannot load, and a socket nobody listens on: a command that read the one or
# called the other would exit 1 or 3, never 0 or 2.
printf 'this is = not a config\n' >"$tmp/broken.conf"
E=("$edgeprov" --config "$tmp/broken.conf" --server "unix:$tmp/nobody.sock")

check "edgeprov --commands lists the table" run_status 0 "$tmp/commands" "$edgeprov" --commands
check "... every row has 5 fields" awk -F'\t' 'NF != 5 { print "bad row: " $0; bad = 1 } END { exit bad }' "$tmp/commands"
check "... at least the 24 commands of issue 19" test "$(wc -l <"$tmp/commands")" -ge 24
for expected in "instance retry" "artifacts build" "artifacts keys" "artifacts nginx-conf" "usb-image" "watch" "logs"; do
  check "... has $expected" grep -q "^$expected	" "$tmp/commands"
done

# run_split EXPECTED COMMAND...: the exit status, stdout in $tmp/stdout, stderr in $tmp/stderr.
run_split() {
  local expected=$1
  shift
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local status=$?
  [ "$status" -eq "$expected" ] && return 0
  echo "---- exit status $status, expected $expected: $*"
  sed 's/^/    stdout: /' "$tmp/stdout"
  sed 's/^/    stderr: /' "$tmp/stderr"
  return 1
}
nonempty() { [ -s "$1" ] || { echo "---- $1 is empty"; return 1; }; }
empty() { [ ! -s "$1" ] || { echo "---- $1 is not empty:"; sed 's/^/    /' "$1"; return 1; }; }

while IFS=$'\t' read -r words min max required options; do
  read -ra w <<<"$words"
  for flag in --help -h; do
    check "$words $flag: exit 0" run_split 0 "${E[@]}" "${w[@]}" $flag
    check "$words $flag: usage on stdout" contains "$tmp/stdout" "Usage: edgeprov $words"
    check "$words $flag: nothing on stderr" empty "$tmp/stderr"
  done
  for option in $options; do
    check "$words --help: describes $option" contains "$tmp/stdout" "$option"
  done
  check "$words --no-such-option: exit 2" run_split 2 "${E[@]}" "${w[@]}" --no-such-option
  check "$words --no-such-option: usage on stderr" contains "$tmp/stderr" "Usage: edgeprov $words"
  check "$words --no-such-option: names it" contains "$tmp/stderr" "unknown option '--no-such-option'"
  check "$words --no-such-option: nothing on stdout" empty "$tmp/stdout"
  # The values the required options need, so that only the arguments are wrong.
  needed=()
  [ "$required" = - ] || for option in $required; do needed+=("$option" x); done
  if [ "$min" -gt 0 ] || [ "$required" != - ]; then
    check "$words without its arguments: exit 2" run_split 2 "${E[@]}" "${w[@]}"
    check "$words without its arguments: usage on stderr" contains "$tmp/stderr" "Usage: edgeprov $words"
  fi
  if [ "$max" -ge 0 ]; then
    extra=()
    for ((i = 0; i <= max; i++)); do extra+=("arg$i"); done
    check "$words with $((max + 1)) arguments: exit 2" run_split 2 "${E[@]}" "${w[@]}" "${needed[@]}" "${extra[@]}"
    check "$words with $((max + 1)) arguments: names the extra one" contains "$tmp/stderr" "unexpected argument 'arg$max'"
  fi
done <"$tmp/commands"

# Every group with verbs: its own usage, and usage errors without or with an unknown verb.
for group in $(cut -f1 "$tmp/commands" | awk 'NF == 2 { print $1 }' | sort -u); do
  check "$group --help: exit 0" run_split 0 "${E[@]}" "$group" --help
  for verb in $(awk -F'\t' -v g="$group" '{ split($1, w, " ") } w[1] == g { print w[2] }' "$tmp/commands"); do
    check "$group --help: lists $verb" grep -qE "^  $verb " "$tmp/stdout"
  done
  check "$group without a command: exit 2" run_split 2 "${E[@]}" "$group"
  check "$group frobnicate: exit 2" run_split 2 "${E[@]}" "$group" frobnicate
  check "$group frobnicate: usage on stderr" contains "$tmp/stderr" "Usage: edgeprov $group COMMAND"
done

# The top-level help lists every command of the table.
check "edgeprov --help: exit 0" run_split 0 "$edgeprov" --help
while IFS=$'\t' read -r words _; do
  check "edgeprov --help: lists $words" grep -qE "^  $words( |\$)" "$tmp/stdout"
done <"$tmp/commands"
for status in 0 1 2 3; do check "edgeprov --help: exit status $status explained" grep -qE "^  $status +[a-z]" "$tmp/stdout"; done
check "edgeprov -h: exit 0" run_split 0 "$edgeprov" -h
check "edgeprov --no-such-option: exit 2" run_split 2 "$edgeprov" --no-such-option
check "edgeprov --no-such-option: usage on stderr" contains "$tmp/stderr" "Usage: edgeprov"
check "edgeprov without a command: exit 2" run_split 2 "$edgeprov"
check "edgeprov hots: exit 2" run_split 2 "$edgeprov" hots list
check "edgeprov hots: did you mean" contains "$tmp/stderr" "unknown command 'hots' (did you mean 'host'?)"

# Every command that reads state takes --json.
for words in "plugins list" "plugins describe" "actions list" "host add" "host list" "host show" "host approve" \
  "host invalidate" "instance create" "instance list" "instance show" "instance render" "instance retry" events watch logs; do
  check "$words takes --json" grep -qE "^$words	.*--json" "$tmp/commands"
done

# ... and what the site's commands print with it is JSON (the daemon's are in inventory.sh,
# visibility.sh, instance_render.sh).
cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/nobody.sock"; grpc = "127.0.0.1:0"; https = "127.0.0.1:0"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
CONF
json_of() { # NAME PYTHON_CHECK COMMAND...: COMMAND's stdout is JSON for which the expression holds
  local name=$1 expression=$2
  shift 2
  check "$name --json: exit 0" run_split 0 "$edgeprov" --config "$tmp/site.conf" "$@" --json
  check "$name --json: $expression" python3 -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if $expression else 1)" \
    "$tmp/stdout"
}
json_of "plugins list" "any(p['id'] == 'actions-core' and p['state'] == 'active' for p in d)" plugins list
json_of "plugins describe" "d['id'] == 'storage-sqlite' and any(s['name'] == 'busy_timeout_ms' and s['max'] > 0 for s in d['settings'])" \
  plugins describe storage-sqlite
json_of "actions list" "any(a['name'] == 'disk.erase' and any(p['name'] == 'target' for p in a['params']) for a in d)" actions list
check "instance render without --os or --host: exit 2 before any call" run_split 2 "${E[@]}" instance render
check "... says what it needs" contains "$tmp/stderr" "needs --os PROFILE, --host UUID or both"

# ---- edgeprovd out of reach: exit 3, and what to do ---------------------------------------------
U=123e4567-e89b-12d3-a456-426614174000
for args in "host list" "instance list" "host show $U" "logs $U" events watch; do
  # shellcheck disable=SC2086 # the words of the command
  check "$args, no socket: exit 3" run_split 3 "$edgeprov" --server "unix:$tmp/nobody.sock" $args
  check "$args, no socket: says how to start edgeprovd" contains "$tmp/stderr" "Start it with: edgeprovd"
done
make_test_tls "$tmp"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/token"
chmod 600 "$tmp/token"
closed=$(free_port)
check "host list, closed port: exit 3" run_split 3 "$edgeprov" --server "127.0.0.1:$closed" --ca "$tmp/ca.pem" \
  --token-file "$tmp/token" host list
# A TLS server whose certificate another CA signed: the handshake fails.
mkdir "$tmp/other" && make_test_tls "$tmp/other"
port=$(free_port)
openssl s_server -quiet -www -accept "127.0.0.1:$port" -cert "$tmp/other/tls.pem" -key "$tmp/other/tls.key" -alpn h2 \
  </dev/null >"$tmp/s_server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
check "host list, TLS handshake fails: exit 3" run_split 3 "$edgeprov" --server "127.0.0.1:$port" --ca "$tmp/ca.pem" \
  --token-file "$tmp/token" host list
check "a usage error comes before the connection (exit 2, not 3)" run_split 2 "$edgeprov" --server \
  "unix:$tmp/nobody.sock" host show
check "TCP without --ca is the operator's to fix (exit 1)" run_split 1 "$edgeprov" --server "127.0.0.1:$closed" host list
check "... and says what to pass" contains "$tmp/stderr" "pass --ca FILE"

# ---- the man pages and the completion, as the build wrote them -------------------------------------
man1=$build/share/man/man1/edgeprov.1.gz man8=$build/share/man/man8/edgeprovd.8.gz
completion=$build/share/bash-completion/completions/edgeprov
for page in "$man1" "$man8"; do
  check "$(basename "$page"): renders without warnings" run_split 0 man --warnings -l "$page"
  check "$(basename "$page"): ... no warnings" empty "$tmp/stderr"
  tr -s ' ' <"$tmp/stdout" >"$tmp/$(basename "$page").txt" # words one blank apart, however justified
  check "$(basename "$page"): groff -man exits 0" sh -c "zcat '$page' | groff -man -Tascii -ww -z"
done
while IFS=$'\t' read -r words _; do
  check "edgeprov(1) describes edgeprov $words" grep -qE "^ edgeprov $words( |\$)" "$tmp/edgeprov.1.gz.txt"
done <"$tmp/commands"
check "edgeprov(1) has the exit statuses" contains "$tmp/edgeprov.1.gz.txt" "EXIT STATUS"
check "edgeprov(1) is what the CLI prints now" bash -c "zcat '$man1' | cmp -s - <('$edgeprov' --man)"
check "edgeprovd(8) has --check" contains "$tmp/edgeprovd.8.gz.txt" "--check"
check "edgeprovd(8) has --config" contains "$tmp/edgeprovd.8.gz.txt" "--config FILE"

check "completion: valid bash" bash -n "$completion"
check "completion: what the CLI prints now" cmp "$completion" <("$edgeprov" --bash-completion)
# complete WORD...: what _edgeprov offers for the last word.
complete_words() {
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _edgeprov; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$completion" "$@"
}
check "completion: edgeprov ho<TAB> is host" test "$(complete_words edgeprov ho)" = host
check "completion: after global options too" test "$(complete_words edgeprov --config x.conf ins)" = instance
check "completion: instance re<TAB>" test "$(complete_words edgeprov instance re | tr '\n' ' ')" = "render retry "
check "completion: watch --until <TAB>" test "$(complete_words edgeprov watch --until '' | tr '\n' ' ')" = "running onboarded "
while IFS=$'\t' read -r words _ _ _ options; do
  read -ra w <<<"$words"
  check "completion: edgeprov ${w[0]:0:2}<TAB> offers ${w[0]}" grep -qx "${w[0]}" <(complete_words edgeprov "${w[0]:0:2}")
  [ ${#w[@]} -eq 2 ] && check "completion: edgeprov ${w[0]} <TAB> offers ${w[1]}" grep -qx "${w[1]}" \
    <(complete_words edgeprov "${w[0]}" '')
  check "completion: edgeprov $words --<TAB> offers its options" \
    test "$(complete_words edgeprov "${w[@]}" -- | tr '\n' ' ')" = "$options "
done <"$tmp/commands"

finish
