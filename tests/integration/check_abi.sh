#!/usr/bin/env bash
# Test of scripts/check-abi.sh: the real SDK matches its baseline (sdk/abi/); in a copy of sdk/,
# compatible changes pass and each kind of incompatible change planted in the headers fails
# with a message naming what broke; --update records a minor bump and refuses what a minor
# may not do.
# Usage: check_abi.sh SOURCE_DIR ...
set -u
src=$1
. "$src/tests/integration/lib.sh"
checker=$src/scripts/check-abi.sh
scratch
# The SDK's minor now, and its neighbours (the planted bumps are relative to it).
minor=$(sed -n 's/^#define EP_ABI_MINOR \([0-9][0-9]*\)$/\1/p' "$src/sdk/include/edgeprov/abi.h")
next=$((minor + 1)) prev=$((minor - 1))

check "the SDK matches its baseline" run_status 0 "$tmp/out" "$checker" "$src/sdk"
check "the SDK matches its baseline: says so" contains "$tmp/out" 'matches the baseline'

copy=$tmp/sdk
h=$copy/include/edgeprov
# fresh: a new copy of sdk/ (headers and baseline).
fresh() {
  rm -rf "$copy"
  cp -r "$src/sdk" "$copy"
}
# edit FILE OLD NEW: replaces the first OLD (a whole line, verbatim) in FILE of the copy with NEW
# (which may span lines); counts as a failure when OLD is not there, so the checks after it do
# not pass on an unchanged copy unnoticed.
edit() {
  python3 - "$h/$1" "$2" "$3" <<'PY' || { failed=$((failed + 1)); echo "FAIL edit: $1 lacks the line: $2"; }
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if "\n" + old + "\n" not in text:
  sys.exit(1)
open(path, "w").write(text.replace("\n" + old + "\n", "\n" + new + "\n", 1))
PY
}
last_response='  const char *content_type;    /* "" when none */'
request_url='  const char *url;             /* http:// or https:// */'
last_host='  int32_t (*store_secret)(ep_ctx *ctx, const char *kind, const char *value);'

# (1) unchanged: passes.
fresh
check "unchanged copy: passes" run_status 0 "$tmp/out" "$checker" "$copy"

# (2) members appended at the end of struct_size structs (one using a new type), a new constant: pass,
# saying what grew and that it ships with a minor bump.
fresh
edit host.h "$last_response" "$last_response
  int64_t retry_after_ms;"
edit host.h "$last_host" "$last_host
  int32_t (*publish_file)(ep_ctx *ctx, const char *url_path, const char *file, const ep_publish_options *options);"
edit abi.h '#define EP_FIELD_BOOL 3u   /* true or false */' '#define EP_FIELD_BOOL 3u   /* true or false */
#define EP_FIELD_BYTES 4u'
edit host.h 'typedef int32_t (*ep_fetch_data_fn)(void *data, const uint8_t *bytes, uint64_t len);' \
  'typedef int32_t (*ep_fetch_data_fn)(void *data, const uint8_t *bytes, uint64_t len);
typedef struct ep_publish_options {
  uint32_t struct_size;
  uint32_t max_age_s;
} ep_publish_options;'
check "appended members: pass" run_status 0 "$tmp/out" "$checker" "$copy"
check "appended members: named" contains "$tmp/out" 'struct ep_http_response: appended retry_after_ms'
check "appended host service: named" contains "$tmp/out" 'struct ep_host: appended publish_file'
check "new type: named" contains "$tmp/out" 'type ep_publish_options added'
check "new constant: named" contains "$tmp/out" 'constant EP_FIELD_BYTES added'
check "additions: call for a minor bump" contains "$tmp/out" 'raise EP_ABI_MINOR'
check "additions without a minor bump: --update refused" run_status 1 "$tmp/out" "$checker" --update "$copy"
check "additions without a minor bump: says why" contains "$tmp/out" 'bump EP_ABI_MINOR'

# (3) a member inserted in the middle: fails, naming the struct.
fresh
edit host.h "$request_url" "$request_url
  uint32_t flags;"
check "member inserted in the middle: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "member inserted in the middle: names the struct" contains "$tmp/out" \
  "changed incompatibly: ep_http_request"
check "member inserted in the middle: abidiff says how" contains "$tmp/out" "'uint32_t flags', at offset"
check "member inserted in the middle: --update refused" run_status 1 "$tmp/out" "$checker" --update "$copy"
check "member inserted in the middle: needs a major" contains "$tmp/out" 'needs a major bump'

# A member appended at the end of a struct together with a retyped member of the same struct: the
# append does not hide the retype.
fresh
edit host.h '  int32_t status;              /* HTTP status code */' '  uint32_t status;'
edit host.h "$last_response" "$last_response
  int64_t retry_after_ms;"
check "retype next to an append: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "retype next to an append: named" contains "$tmp/out" 'changed incompatibly: ep_http_response'

# Two members of one size swapped: fails.
fresh
edit host.h '  const char *url;
  const char *ca_file;        /* PEM CA file trusted for https; NULL or "": the system'"'"'s */' \
  '  const char *ca_file;
  const char *url;'
check "members reordered: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "members reordered: named" contains "$tmp/out" 'changed incompatibly: ep_fetch_request'

# A member removed from the end: fails.
fresh
edit host.h "$last_response" ''
check "member removed: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "member removed: named" contains "$tmp/out" 'ep_http_response'

# A member appended inside the old tail padding: a planted struct of 20 bytes of members, 24 with
# its padding, recorded with a minor bump (which the check asks for), then a uint32_t at byte 20.
fresh
edit storage.h '#define EP_STORAGE_TXN_OPS_MAX 128' '#define EP_STORAGE_TXN_OPS_MAX 128
typedef struct ep_storage_hint {
  uint32_t struct_size;
  uint32_t reserved;
  uint64_t after;
  uint32_t limit;
} ep_storage_hint;'
edit abi.h "#define EP_ABI_MINOR $minor" "#define EP_ABI_MINOR $next"
check "minor bump with a new struct: check asks for --update" run_status 1 "$tmp/out" "$checker" "$copy"
check "minor bump: says how" contains "$tmp/out" 'scripts/check-abi.sh --update'
check "minor bump: --update records it" run_status 0 "$tmp/out" "$checker" --update "$copy"
check "minor bump: recorded" contains "$copy/abi/version" "1.$next"
check "minor bump: passes after --update" run_status 0 "$tmp/out" "$checker" "$copy"
edit storage.h '  uint32_t limit;' '  uint32_t limit;
  uint32_t flags;'
check "member appended in the tail padding: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "member appended in the tail padding: says why" contains "$tmp/out" \
  "struct ep_storage_hint: appended member 'flags' starts at byte 20, inside the old size of 24 bytes"

# (4) a function pointer's parameter retyped: fails, naming the types that carry it.
fresh
edit boot.h 'typedef int32_t (*ep_boot_add_fn)(void *data, const char *name, const uint8_t *content, uint64_t len);' \
  'typedef int32_t (*ep_boot_add_fn)(void *data, const char *name, const uint8_t *content, uint32_t len);'
check "function typedef parameter retyped: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "function typedef parameter retyped: named" contains "$tmp/out" 'changed incompatibly: ep_boot, ep_boot_add_fn'
fresh
edit storage.h '  int32_t (*revision)(void *state, uint64_t *ret_revision);' \
  '  int32_t (*revision)(void *state, uint32_t *ret_revision);'
check "member function parameter retyped: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "member function parameter retyped: named" contains "$tmp/out" 'changed incompatibly: ep_storage'

# (5) values abidiff cannot see: a constant (#define) changed or removed, and the ABI version.
fresh
edit abi.h '#define EP_EINVAL (-22)    /* invalid argument or value */' '#define EP_EINVAL (-23)'
check "constant changed: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "constant changed: named" contains "$tmp/out" 'constant EP_EINVAL changed from (-22) to (-23)'
fresh
edit plugin.h '#define EP_CAP_BOOT "edgeprov.boot/1"         /* boot artifacts (iPXE script, USB image) */' ''
check "constant removed: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "constant removed: named" contains "$tmp/out" 'constant EP_CAP_BOOT ("edgeprov.boot/1") removed'
fresh
edit abi.h "#define EP_ABI_MINOR $minor" "#define EP_ABI_MINOR $prev"
check "older minor: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "older minor: says so" contains "$tmp/out" "EP_ABI_MINOR $prev is older than the baseline"
fresh
edit abi.h '#define EP_ABI_MAJOR 1' '#define EP_ABI_MAJOR 2'
check "major changed: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "major changed: --update alone refused" run_status 1 "$tmp/out" "$checker" --update "$copy"
check "major changed: asks for --major" contains "$tmp/out" '--update --major'
check "major 2.$minor: --update --major refused" run_status 1 "$tmp/out" "$checker" --update --major "$copy"
edit abi.h "#define EP_ABI_MINOR $minor" '#define EP_ABI_MINOR 0'
edit host.h "$request_url" "$request_url
  uint32_t flags;"
check "major 2.0: --update --major records it" run_status 0 "$tmp/out" "$checker" --update --major "$copy"
check "major 2.0: recorded" contains "$copy/abi/version" '2.0'
check "major 2.0: passes after" run_status 0 "$tmp/out" "$checker" "$copy"
fresh
check "--major without a major bump: refused" run_status 1 "$tmp/out" "$checker" --update --major "$copy"

# An enum type and a struct without struct_size (none in the SDK: planted and recorded with a minor
# bump): an enumerator added at the end passes, a changed value fails; the struct may not grow.
fresh
edit abi.h "#define EP_ABI_MINOR $minor" "#define EP_ABI_MINOR $next
typedef enum ep_test_kind { EP_TEST_A = 1, EP_TEST_B = 2 } ep_test_kind;
typedef struct ep_test_plain { uint64_t a; } ep_test_plain;"
check "enum: recorded with a minor bump" run_status 0 "$tmp/out" "$checker" --update "$copy"
edit abi.h 'typedef enum ep_test_kind { EP_TEST_A = 1, EP_TEST_B = 2 } ep_test_kind;' \
  'typedef enum ep_test_kind { EP_TEST_A = 1, EP_TEST_B = 2, EP_TEST_C = 3 } ep_test_kind;'
check "enumerator added at the end: passes" run_status 0 "$tmp/out" "$checker" "$copy"
edit abi.h 'typedef enum ep_test_kind { EP_TEST_A = 1, EP_TEST_B = 2, EP_TEST_C = 3 } ep_test_kind;' \
  'typedef enum ep_test_kind { EP_TEST_A = 1, EP_TEST_B = 5, EP_TEST_C = 3 } ep_test_kind;'
check "enumerator value changed: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "enumerator value changed: named" contains "$tmp/out" 'changed incompatibly: ep_test_kind'
# A struct without struct_size does not grow: an appended member is a change.
edit abi.h 'typedef struct ep_test_plain { uint64_t a; } ep_test_plain;' \
  'typedef struct ep_test_plain { uint64_t a; uint64_t b; } ep_test_plain;'
check "struct without struct_size grown: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "struct without struct_size grown: named" contains "$tmp/out" 'changed incompatibly: ep_test_kind, ep_test_plain'

# (6) a removed type: fails, naming it.
fresh
edit os.h 'typedef int32_t (*ep_os_text_fn)(void *data, const char *text);' ''
edit os.h '  int32_t (*workflow_template)(void *state, const char *profile, ep_os_text_fn visit, void *data);' \
  '  int32_t (*workflow_template)(void *state, const char *profile, ep_os_profile_fn visit, void *data);'
edit os.h '  int32_t (*cloudinit_fragments)(void *state, const char *profile, ep_os_text_fn visit, void *data);' \
  '  int32_t (*cloudinit_fragments)(void *state, const char *profile, ep_os_profile_fn visit, void *data);'
check "removed type: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "removed type: named" contains "$tmp/out" 'removed: ep_os_text_fn'

# A struct without a typedef would get no probe: refused rather than left unchecked.
fresh
edit abi.h '#define EP_LOG_DEBUG 3' '#define EP_LOG_DEBUG 3
struct ep_loose {
  int a;
};'
check "struct without a typedef: refused" run_status 2 "$tmp/out" "$checker" "$copy"
check "struct without a typedef: named" contains "$tmp/out" 'struct ep_loose {'

check "usage error" run_status 2 "$tmp/out" "$checker" --bogus
fresh
rm -rf "$copy/abi"
check "no baseline: fails" run_status 1 "$tmp/out" "$checker" "$copy"
check "no baseline: says how to record one" contains "$tmp/out" 'record one with scripts/check-abi.sh --update'
check "no baseline: --update records one" run_status 0 "$tmp/out" "$checker" --update "$copy"
check "no baseline: passes after" run_status 0 "$tmp/out" "$checker" "$copy"

finish
