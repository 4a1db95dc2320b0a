#!/usr/bin/env bash
# Keeps the plugin ABI by machine (README, "Keeping the ABI"): compares the SDK headers against
# the baseline stored in sdk/abi/ and fails on any change a released plugin would not survive.
#
# The SDK is headers only, so the check builds a probe: a shared object with one exported
# function per type the headers define (ep_abi_probe_<type>(<type> *)), compiled with -g so
# its DWARF carries every type; libabigail's abidw writes its ABI and abidiff compares it with
# the baseline (sdk/abi/edgeprov-sdk.abi). abidiff cannot see macros, so the object-like EP_*
# macros whose value is a number or a string (error codes, field types, capability IDs) are
# kept in sdk/abi/edgeprov-sdk.macros, and EP_ABI_MAJOR.EP_ABI_MINOR in sdk/abi/version.
#
# Compatible, accepted (with a note saying what grew):
#   - members appended at the end of a struct whose first member is struct_size (the SDK's
#     rule: "Structs are append-only", abi.h), starting at or after the struct's old size;
#   - new types (a new struct, function typedef, ...), new constants, new enumerators.
# Incompatible, refused: a removed type; a member removed, inserted before the end, moved or
# retyped; a function pointer's parameters or return type changed; a struct without
# struct_size that grew; a member appended inside the old tail padding (an older struct_size
# would seem to include it); a constant's value changed or the constant removed.
# abidiff's exit status alone does not say which is which: it sets ABIDIFF_ABI_CHANGE (4) for
# any change and ABIDIFF_ABI_INCOMPATIBLE_CHANGE (8) only for removed symbols, and a suppression
# of "members inserted at the end" also hides a retyped member of the same struct. So the
# appended members (and only those) are cut from a copy of the current ABI, and abidiff must
# then find no change at all in it (added probe symbols, i.e. new types, aside).
#
# Version rules. The check fails when EP_ABI_MAJOR differs from the baseline's, or
# EP_ABI_MINOR is older, or newer (a minor bump is recorded with --update in the same change).
# --update rewrites sdk/abi/ from the headers, and refuses:
#   - any incompatible change while EP_ABI_MAJOR stays (an incompatible change needs a major);
#   - additions while EP_ABI_MINOR stays (the baseline is what a released minor promises:
#     bump EP_ABI_MINOR first); with neither it rewrites the same ABI (after a libabigail
#     upgrade, say);
#   - an EP_ABI_MAJOR change without --major, or one other than major + 1 with minor 0.
# --update --major records a deliberate major bump, whatever changed.
#
# The baseline leaves the architecture out: it holds for the LP64 targets edgeprov builds for
# (x86_64, aarch64); a 32-bit build is another ABI (and another build signature, abi.h).
#
# Usage: scripts/check-abi.sh [--update [--major]] [SDK_DIR]   (SDK_DIR: default sdk/)
# Exit status: 0 compatible (or baseline written), 1 incompatible (or update refused), 2 usage
# or tool error. Needs abigail-tools, a C compiler and python3 (scripts/install-deps.sh).
set -euo pipefail

usage() {
  echo "usage: $0 [--update [--major]] [SDK_DIR]" >&2
  exit 2
}
update=0
major=0
sdk=
for arg in "$@"; do
  case $arg in
    --update) update=1 ;;
    --major) major=1 ;;
    -*) usage ;;
    *) [ -z "$sdk" ] || usage; sdk=$arg ;;
  esac
done
[ "$major" -eq 0 ] || [ "$update" -eq 1 ] || usage
sdk=${sdk:-$(cd "$(dirname "$0")/.." && pwd)/sdk}
sdk=$(cd "$sdk" && pwd)
inc=$sdk/include
abi=$sdk/abi
cc=${CC:-cc}

say() { echo "check-abi: $*"; }
die() {
  echo "check-abi: $*" >&2
  exit 2
}
for tool in abidw abidiff python3 "$cc"; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs abigail-tools and the rest)"
done
[ -f "$inc/edgeprov/edgeprov.h" ] ||
  die "$inc/edgeprov/edgeprov.h: no such file (SDK_DIR is the folder holding include/edgeprov)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- the current headers: version, constants, probe, ABI ----
"$cc" -std=c11 -dM -E -I "$inc" "$inc/edgeprov/edgeprov.h" >"$work/defines" || die "the SDK headers do not preprocess"
macro() { sed -nE "s/^#define $1 ([0-9]+)\$/\\1/p" "$work/defines"; }
cur_major=$(macro EP_ABI_MAJOR)
cur_minor=$(macro EP_ABI_MINOR)
if [ -z "$cur_major" ] || [ -z "$cur_minor" ]; then
  die "abi.h: EP_ABI_MAJOR and EP_ABI_MINOR must be plain numbers"
fi
cur_version=$cur_major.$cur_minor

# Constants: object-like EP_* macros whose value is a string literal or an expression of numbers
# (and UINT64_MAX-style names); code snippets (EP_PLUGIN_ENTRY_HEADER, EP_BUILD_SIGNATURE, ...)
# are not values.
sed -nE 's/^#define (EP_[A-Z0-9_]+) (.*)$/\1 \2/p' "$work/defines" |
  grep -vE '^EP_ABI_(MAJOR|MINOR) ' |
  grep -E '^[A-Z0-9_]+ ("[^"]*"|[-+*/<>|&~() 0-9A-Za-z_]+)$' | grep -v sizeof |
  LC_ALL=C sort >"$work/current.macros" || true

# The probe: one exported function per typedef of the headers (struct, opaque struct, function
# pointer or other), so every type is in the DWARF and a removed type is a removed symbol.
types=$(sed -nE -e 's/^\} *(ep_[a-z0-9_]+);.*/\1/p' -e 's/^typedef [^(]* (ep_[a-z0-9_]+);.*/\1/p' \
  -e 's/^typedef [^(]*\(\*(ep_[a-z0-9_]+)\)\(.*/\1/p' "$inc"/edgeprov/*.h | LC_ALL=C sort -u)
[ -n "$types" ] || die "no typedef found in $inc/edgeprov/*.h"
# A type defined without a typedef would have no probe and go unchecked: the SDK typedefs them all.
if untyped=$(grep -nE '^(struct|union|enum) ep_[a-z0-9_]+ *\{' "$inc"/edgeprov/*.h); then
  die "a type without a typedef, which the check would not see (write typedef struct ep_x {...} ep_x;): $untyped"
fi
{
  echo '/* Generated by scripts/check-abi.sh: one exported function per SDK type. */'
  echo '#include <edgeprov/edgeprov.h>'
  for t in $types; do
    echo "__attribute__((visibility(\"default\"))) void ep_abi_probe_$t($t *p) { (void)p; }"
  done
} >"$work/edgeprov-sdk-abi.c"
# Built in $work under fixed names, so the ABI file names neither the checkout nor the temp dir.
(cd "$work" && "$cc" -std=c11 -shared -fPIC -g -O0 -fvisibility=hidden -Wl,-soname,libedgeprov-sdk-abi.so \
  -I "$inc" -o libedgeprov-sdk-abi.so edgeprov-sdk-abi.c) || die "the ABI probe does not build from $inc"
abidw --headers-dir "$inc/edgeprov" --no-architecture --no-corpus-path --no-comp-dir-path --short-locs --no-elf-needed \
  --out-file "$work/current.abi" "$work/libedgeprov-sdk-abi.so" || die "abidw failed on the probe"

write_baseline() {
  mkdir -p "$abi"
  cp "$work/current.abi" "$abi/edgeprov-sdk.abi"
  {
    echo "# The SDK's constants of ABI $cur_version: object-like EP_* macros with a number or string"
    echo "# value. Written by scripts/check-abi.sh --update; a released value never changes."
    cat "$work/current.macros"
  } >"$abi/edgeprov-sdk.macros"
  {
    echo "# EP_ABI_MAJOR.EP_ABI_MINOR of the baseline in this folder (edgeprov-sdk.abi, edgeprov-sdk.macros)."
    echo "# Written by scripts/check-abi.sh --update (README, \"Keeping the ABI\")."
    echo "$cur_version"
  } >"$abi/version"
  say "baseline of ABI $cur_version written to $abi"
}

if [ ! -f "$abi/version" ] || [ ! -f "$abi/edgeprov-sdk.abi" ] || [ ! -f "$abi/edgeprov-sdk.macros" ]; then
  if [ "$update" -eq 1 ]; then
    write_baseline
    exit 0
  fi
  say "no baseline in $abi: record one with scripts/check-abi.sh --update"
  exit 1
fi

# ---- comparison with the baseline ----
base_version=$(grep -v '^#' "$abi/version" | head -n 1)
[[ $base_version =~ ^([0-9]+)\.([0-9]+)$ ]] || die "$abi/version: expected MAJOR.MINOR, found '$base_version'"
base_major=${BASH_REMATCH[1]}
base_minor=${BASH_REMATCH[2]}

# Cuts the members appended at the end of struct_size structs from a copy of the current ABI
# (their names go to grown, one struct a line) and names the appended members that start
# inside the old size (padding). Structs are matched by name; a struct without struct_size
# as its first member is left whole, so its growth is a change.
python3 - "$abi/edgeprov-sdk.abi" "$work/current.abi" "$work/cut.abi" "$work/grown" "$work/padding" <<'PY'
import sys
import xml.etree.ElementTree as ET

base_path, cur_path, out_path, grown_path, padding_path = sys.argv[1:]


def structs(root):
  return {c.get("name"): c for c in root.iter("class-decl")
          if c.get("name") and c.get("is-declaration-only") != "yes"}


def members(c):
  return sorted(c.findall("data-member"), key=lambda m: int(m.get("layout-offset-in-bits", "0")))


def name(m):
  v = m.find("var-decl")
  return v.get("name") if v is not None else "?"


base = structs(ET.parse(base_path).getroot())
tree = ET.parse(cur_path)
cur = structs(tree.getroot())
grown, padding = [], []
for sname, b in sorted(base.items()):
  bm = members(b)
  c = cur.get(sname)
  if not bm or name(bm[0]) != "struct_size" or c is None:
    continue
  cm = members(c)
  if len(cm) <= len(bm):
    continue
  extra = cm[len(bm):]
  old_size = int(b.get("size-in-bits"))
  first = int(extra[0].get("layout-offset-in-bits"))
  if first < old_size:
    padding.append(f"struct {sname}: appended member '{name(extra[0])}' starts at byte {first // 8}, inside the "
                   f"old size of {old_size // 8} bytes (its tail padding), so an older plugin's or host's "
                   "struct_size would seem to include it: add a reserved member first")
  for m in extra:
    c.remove(m)
  c.set("size-in-bits", b.get("size-in-bits"))
  grown.append(f"struct {sname}: appended {', '.join(name(m) for m in extra)}")
tree.write(out_path)
with open(grown_path, "w") as f:
  f.writelines(line + "\n" for line in grown)
with open(padding_path, "w") as f:
  f.writelines(line + "\n" for line in padding)
PY

# abidiff: bit 1 is an error, 2 a usage error; 4 and 8 are changes.
set +e
abidiff --no-architecture --no-added-syms "$abi/edgeprov-sdk.abi" "$work/cut.abi" >"$work/report" 2>&1
status=$?
set -e
[ $((status & 3)) -eq 0 ] || { cat "$work/report" >&2; die "abidiff failed (exit status $status)"; }

problems=()
if [ $((status & 12)) -ne 0 ]; then
  # The report above shows each change once, under the first type that reaches it; the leaf
  # report names the types that changed themselves.
  abidiff --no-architecture --no-added-syms --leaf-changes-only "$abi/edgeprov-sdk.abi" "$work/cut.abi" \
    >"$work/leaves" 2>&1 || true
  changed=$(sed -nE -e "s/^ *\[C\] 'function void ep_abi_probe_([a-z0-9_]+)\(.*/\1/p" \
    -e "s/^'(struct|union|enum|typedef) ([A-Za-z0-9_]+) at .*' changed:\$/\2/p" "$work/leaves" |
    LC_ALL=C sort -u | paste -sd, | sed 's/,/, /g')
  removed=$(sed -nE "s/^ *\[D\] 'function void ep_abi_probe_([a-z0-9_]+)\(.*/\1/p" "$work/leaves" |
    paste -sd, | sed 's/,/, /g')
  [ -z "$changed" ] || problems+=("changed incompatibly: $changed (abidiff's report above says how)")
  [ -z "$removed" ] || problems+=("removed: $removed")
  [ -n "$changed$removed" ] || problems+=("abidiff reports a change (above)")
fi
while IFS= read -r line; do problems+=("$line"); done <"$work/padding"

# Constants: removed or changed ones are incompatible, new ones are additions.
grep -v '^#' "$abi/edgeprov-sdk.macros" >"$work/base.macros" || true
while IFS= read -r line; do problems+=("$line"); done < <(awk '
  NR == FNR { n = $1; sub(/^[^ ]+ /, ""); base[n] = $0; next }
  { n = $1; sub(/^[^ ]+ /, ""); cur[n] = $0 }
  END {
    for (n in base) {
      if (!(n in cur)) print "constant " n " (" base[n] ") removed"
      else if (cur[n] != base[n]) print "constant " n " changed from " base[n] " to " cur[n]
    }
  }' "$work/base.macros" "$work/current.macros" | LC_ALL=C sort)

# Additions: grown structs, new types (probe symbols), new constants.
additions=()
while IFS= read -r line; do additions+=("$line"); done <"$work/grown"
symbols() { sed -nE "s/.*<elf-symbol name='ep_abi_probe_([a-z0-9_]+)'.*/\1/p" "$1" | LC_ALL=C sort; }
while IFS= read -r t; do additions+=("type $t added"); done < <(LC_ALL=C comm -13 <(symbols "$abi/edgeprov-sdk.abi") \
  <(symbols "$work/current.abi"))
while IFS= read -r n; do additions+=("constant $n added"); done < <(LC_ALL=C comm -13 \
  <(cut -d' ' -f1 "$work/base.macros") <(cut -d' ' -f1 "$work/current.macros"))

report_problems() {
  if [ $((status & 12)) -ne 0 ]; then sed 's/^/    /' "$work/report"; fi
  say "INCOMPATIBLE with the baseline of ABI $base_version ($abi):"
  local p
  for p in "${problems[@]}"; do echo "  - $p"; done
}
report_additions() {
  local a
  for a in "${additions[@]}"; do echo "  + $a"; done
}

if [ "$update" -eq 1 ]; then
  if [ "$cur_major" != "$base_major" ]; then
    if [ "$major" -eq 0 ]; then
      say "EP_ABI_MAJOR is $cur_major, the baseline's $base_major: a major bump breaks every plugin built so far;" \
        "if that is deliberate, run scripts/check-abi.sh --update --major"
      exit 1
    fi
    if [ "$cur_major" -ne $((base_major + 1)) ] || [ "$cur_minor" -ne 0 ]; then
      say "--major records the next major: EP_ABI_MAJOR $((base_major + 1)) and EP_ABI_MINOR 0, not $cur_version"
      exit 1
    fi
    [ ${#problems[@]} -eq 0 ] || { report_problems; say "(accepted: a new major)"; }
    write_baseline
    exit 0
  fi
  if [ "$major" -eq 1 ]; then
    say "--major is for an EP_ABI_MAJOR bump, and EP_ABI_MAJOR is still $cur_major"
    exit 1
  fi
  if [ ${#problems[@]} -gt 0 ]; then
    report_problems
    say "refused: an incompatible change needs a major bump (EP_ABI_MAJOR, then --update --major);" \
      "a minor may only append"
    exit 1
  fi
  if [ "$cur_minor" -lt "$base_minor" ]; then
    say "refused: EP_ABI_MINOR $cur_minor is older than the baseline's $base_minor"
    exit 1
  fi
  if [ ${#additions[@]} -gt 0 ] && [ "$cur_minor" -eq "$base_minor" ]; then
    say "refused: the ABI grew since the baseline of $base_version:"
    report_additions
    say "bump EP_ABI_MINOR in sdk/include/edgeprov/abi.h first: the baseline records what a released minor promises"
    exit 1
  fi
  [ ${#additions[@]} -eq 0 ] || report_additions
  write_baseline
  exit 0
fi

fail=0
if [ ${#problems[@]} -gt 0 ]; then
  report_problems
  say "a plugin built against the baseline would break. Append new members at the end of a struct" \
    "that starts with struct_size, add new types and constants, never change a released one"
  fail=1
fi
if [ "$cur_major" != "$base_major" ]; then
  say "EP_ABI_MAJOR is $cur_major, the baseline's $base_major: if the major bump is deliberate, record it with" \
    "scripts/check-abi.sh --update --major"
  fail=1
elif [ "$cur_minor" -lt "$base_minor" ]; then
  say "EP_ABI_MINOR $cur_minor is older than the baseline's $base_minor"
  fail=1
elif [ "$cur_minor" -gt "$base_minor" ]; then
  say "EP_ABI_MINOR is $cur_minor, the baseline's $base_minor: record the new minor's baseline with" \
    "scripts/check-abi.sh --update and commit sdk/abi/"
  fail=1
fi
[ "$fail" -eq 0 ] || exit 1
if [ ${#additions[@]} -gt 0 ]; then
  say "compatible with the baseline of ABI $base_version, with additions:"
  report_additions
  say "they ship with a minor bump: raise EP_ABI_MINOR and run scripts/check-abi.sh --update"
else
  say "ABI $cur_version matches the baseline"
fi
