#!/usr/bin/env bash
# Test of scripts/check-layers.py: the real tree passes, and each kind of violation planted in
# a copy of core/ and sdk/ fails with a message naming the file, the line and the rule.
# Usage: check_layers.sh SOURCE_DIR ...
set -u
src=$1
. "$src/tests/integration/lib.sh"
checker=$src/scripts/check-layers.py
scratch

check "the tree keeps its layers" run_status 0 "$tmp/out" python3 "$checker" "$src"

# plant NAME EXPECTED_TEXT FILE LINE: a fresh copy of the tree with LINE appended to FILE
# (relative to the copy) must fail the check with EXPECTED_TEXT in its message.
plant() {
  local name=$1 expected=$2 file=$3 line=$4 copy=$tmp/tree
  rm -rf "$copy"
  mkdir -p "$copy"
  cp -r "$src/core" "$src/sdk" "$copy/"
  mkdir -p "$(dirname "$copy/$file")"
  printf '%s\n' "$line" >>"$copy/$file"
  check "$name: refused" run_status 1 "$tmp/out" python3 "$checker" "$copy"
  check "$name: says why" contains "$tmp/out" "$expected"
}

plant "upward include" 'core/lib/base/error.c:' core/lib/base/error.c '#include "southbound/onboarding.h"'
plant "upward include names the rule" 'base/ may not include southbound/, a layer above it' \
  core/lib/base/error.c '#include "southbound/onboarding.h"'
plant "sideways include" 'northbound/ and southbound/ are siblings' \
  core/lib/northbound/mgmt.c '#include "southbound/node_auth.h"'
plant "include without its folder" 'does not name its layer folder' core/lib/net/rpc.c '#include "error.h"'
plant "file outside the layers" 'not in a layer folder' core/lib/stray.c '/* stray */'
plant "agent includes a server layer" 'core/agent may not include southbound/' \
  core/agent/executor.c '#include "southbound/onboarding.h"'
plant "header basename of the SDK" 'header basename host.h is used 2 times' core/lib/runtime/host.h '/* shadow */'
# A cycle inside one layer: planted as two headers that include each other.
rm -rf "$tmp/tree" && mkdir -p "$tmp/tree" && cp -r "$src/core" "$src/sdk" "$tmp/tree/"
printf '#include "base/cycle_b.h"\n' >"$tmp/tree/core/lib/base/cycle_a.h"
printf '#include "base/cycle_a.h"\n' >"$tmp/tree/core/lib/base/cycle_b.h"
check "include cycle: refused" run_status 1 "$tmp/out" python3 "$checker" "$tmp/tree"
check "include cycle: named" contains "$tmp/out" 'include cycle: core/lib/base/cycle_a -> core/lib/base/cycle_b -> core/lib/base/cycle_a'
check "usage error" run_status 2 "$tmp/out" python3 "$checker" a b

finish
