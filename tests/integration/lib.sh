# Shared helpers of the integration tests: checks that count, and a summary line.
# Each test script sources this, calls check/expect_*, and ends with `finish`.
passed=0
failed=0

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
  if grep -qF -- "$2" "$1"; then return 0; fi
  echo "---- $1 lacks: $2"
  sed 's/^/    /' "$1"
  return 1
}

# lacks FILE TEXT: the file does not hold TEXT.
lacks() { ! grep -qF -- "$2" "$1"; }

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

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
