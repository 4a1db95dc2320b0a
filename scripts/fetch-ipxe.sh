#!/usr/bin/env bash
# Installs an iPXE EFI binary with HTTPS support to /usr/local/share/edgeprov/ipxe/.
#
# Debian bookworm's ipxe package is built without HTTPS (DOWNLOAD_PROTO_HTTPS), so this takes
# the ipxe package of Debian trixie instead. The .deb is fetched with apt-get from the same
# mirror as this machine's own apt sources, through a throwaway sources list, list directory
# and cache in a temporary directory: the system's apt sources and state are not touched and
# nothing is installed through dpkg. The Release file is checked against Debian's archive
# keyring (bookworm's debian-archive-keyring verifies trixie's), and apt checks the .deb's
# SHA256 against the Packages index it fetched; this script checks it once more.
#
# Idempotent and non-interactive: with ipxe.efi and VERSION already installed (and the binary
# passing the checks below) it does nothing and needs no network. EDGEPROV_IPXE_FORCE=1 fetches
# and installs again.
#
# Environment:
#   EDGEPROV_IPXE_DIR     where to install (default /usr/local/share/edgeprov/ipxe)
#   EDGEPROV_IPXE_SUITE   the Debian suite to take ipxe from (default trixie)
#   EDGEPROV_IPXE_MIRROR  the Debian archive URI (default: taken from this machine's apt sources)
#   EDGEPROV_IPXE_FORCE   1: fetch and install even if already installed
set -euo pipefail

dest=${EDGEPROV_IPXE_DIR:-/usr/local/share/edgeprov/ipxe}
suite=${EDGEPROV_IPXE_SUITE:-trixie}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "fetch-ipxe: error: $*" >&2; exit 1; }
say() { echo "fetch-ipxe: $*"; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# --- checks on an iPXE EFI binary -------------------------------------------------------------

# le16/le32 FILE OFFSET: a little-endian unsigned integer read from FILE at OFFSET.
le16() { od -An -tu2 -j "$2" -N2 --endian=little "$1" | tr -d ' '; }
le32() { od -An -tu4 -j "$2" -N4 --endian=little "$1" | tr -d ' '; }

# check_efi FILE: FILE is a PE32+ x86_64 EFI application ('MZ', 'PE\0\0', machine 0x8664,
# optional header magic 0x20b, subsystem 10) whose strings show iPXE's https:// URI opener.
check_efi() {
  local f=$1 pe
  [ -s "$f" ] || { echo "$f: missing or empty"; return 1; }
  [ "$(head -c2 "$f")" = MZ ] || { echo "$f: no MZ header"; return 1; }
  pe=$(le32 "$f" 60)
  [ "$(od -An -c -j "$pe" -N4 "$f" | tr -d ' ')" = 'PE\0\0' ] ||
    { echo "$f: no PE signature at offset $pe"; return 1; }
  [ "$(le16 "$f" $((pe + 4)))" = $((0x8664)) ] || { echo "$f: machine is not x86_64 (0x8664)"; return 1; }
  [ "$(le16 "$f" $((pe + 24)))" = $((0x20b)) ] || { echo "$f: not PE32+ (optional header magic 0x20b)"; return 1; }
  [ "$(le16 "$f" $((pe + 24 + 68)))" = 10 ] || { echo "$f: subsystem is not EFI application (10)"; return 1; }
  # iPXE names each URI opener by its scheme, a NUL-terminated "https" in a build with HTTPS;
  # a build without it has "http" only. (A bare grep for "https" is no test: both builds hold
  # https:// URLs in their help texts.)
  LC_ALL=C grep -aqP '\x00https\x00' "$f" || { echo "$f: no https support (no \"https\" URI opener)"; return 1; }
  LC_ALL=C grep -aq 'iPXE' "$f" || { echo "$f: does not look like iPXE"; return 1; }
}

# --- already installed? -----------------------------------------------------------------------

if [ "${EDGEPROV_IPXE_FORCE:-0}" != 1 ] && [ -s "$dest/ipxe.efi" ] && [ -s "$dest/VERSION" ]; then
  if why=$(check_efi "$dest/ipxe.efi"); then
    say "ipxe $(cat "$dest/VERSION") already installed in $dest"
    exit 0
  fi
  say "installed binary fails its checks ($why): fetching again"
fi

for tool in apt-get apt-cache dpkg-deb od sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found (this script needs Debian's apt and dpkg)"
done
[ -r "$keyring" ] || die "$keyring not found: install debian-archive-keyring"

# --- the mirror: this machine's own main Debian archive entry ---------------------------------

# shellcheck source=/dev/null
codename=$( (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true)
[ -n "$codename" ] || die "cannot tell this machine's Debian codename (VERSION_CODENAME in /etc/os-release)"

# shellcheck source=scripts/apt-mirror.sh
. "$(dirname "$0")/apt-mirror.sh"
mirror=${EDGEPROV_IPXE_MIRROR:-$(ep_apt_mirror "$codename")}
[ -n "$mirror" ] || die "no apt source for suite '$codename' found in /etc/apt/sources.list{,.d/}; set EDGEPROV_IPXE_MIRROR to a Debian archive URI"
case $mirror in
  cdrom:*) die "the apt source for '$codename' is a CD-ROM ($mirror); set EDGEPROV_IPXE_MIRROR to a Debian archive URI" ;;
esac
mirror=${mirror%/}

# --- fetch the trixie ipxe .deb through a private apt state -----------------------------------

tmp=$(mktemp -d /tmp/edgeprov-ipxe.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# apt downloads as the unprivileged _apt user: let it reach and write its directories.
chmod 0755 "$tmp"
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"
if id _apt >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  chown _apt "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"
fi

# Signed-By: the InRelease file must carry a good signature by a key in Debian's archive keyring.
# trixie's is signed by the bookworm and the trixie archive keys (and the trixie release key);
# debian-archive-keyring 2023.3+deb12u2 holds all of them. No trusted=yes needed.
echo "deb [signed-by=$keyring] $mirror $suite main" >"$tmp/sources.list"

apt_opts=(
  -o Dir::Etc::SourceList="$tmp/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$tmp/lists"
  -o Dir::Cache="$tmp/cache"
  -o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache=""
  -o Acquire::Languages=none
  -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
  -o APT::Get::List-Cleanup=false
)

say "fetching the $suite package index from $mirror"
if ! apt-get "${apt_opts[@]}" -q update >"$tmp/update.log" 2>&1 ||
  grep -Eq '^(W|E): .*(NO_PUBKEY|not signed|Failed to fetch|EXPKEYSIG|BADSIG)' "$tmp/update.log"; then
  cat "$tmp/update.log" >&2
  if grep -q NO_PUBKEY "$tmp/update.log"; then
    die "the $suite Release file is signed by a key not in $keyring: upgrade debian-archive-keyring (2023.3+deb12u2 or later has the trixie keys: apt-get update && apt-get install debian-archive-keyring)"
  fi
  die "apt-get update for $suite from $mirror failed (see above)"
fi

# The version in the fetched index (madison lists the repository's versions, not the installed one).
version=$(apt-cache "${apt_opts[@]}" madison ipxe | awk -F'|' 'NR == 1 { gsub(/ /, "", $2); print $2 }')
[ -n "$version" ] || die "no ipxe package in $suite main at $mirror"

say "downloading ipxe $version"
(cd "$tmp/deb" && apt-get "${apt_opts[@]}" -q download "ipxe=$version" >"$tmp/download.log" 2>&1) ||
  { cat "$tmp/download.log" >&2; die "apt-get download ipxe=$version failed (see above)"; }
deb=$(find "$tmp/deb" -maxdepth 1 -name 'ipxe_*.deb' | head -n1)
[ -n "$deb" ] || die "apt-get download left no ipxe_*.deb"

# apt has checked the hash already; check it once more against the signed index we fetched.
want=$(apt-cache "${apt_opts[@]}" show "ipxe=$version" | awk '/^SHA256:/ { print $2; exit }')
have=$(sha256sum "$deb" | cut -d' ' -f1)
if [ -z "$want" ] || [ "$want" != "$have" ]; then
  die "$deb: SHA256 $have does not match the Packages index (${want:-none})"
fi

# --- extract and install ----------------------------------------------------------------------

dpkg-deb -x "$deb" "$tmp/root"

# in_root PATH: PATH (relative to the extracted package) with its symlinks resolved inside the
# package, never on this machine (older packages link usr/lib/ipxe/ipxe.efi to /boot/ipxe.efi).
in_root() {
  local p=$1 n=0 l
  while [ -L "$tmp/root/$p" ] && [ $n -lt 10 ]; do
    l=$(readlink "$tmp/root/$p")
    case $l in /*) p=${l#/} ;; *) p=$(dirname "$p")/$l ;; esac
    n=$((n + 1))
  done
  [ -f "$tmp/root/$p" ] && [ ! -L "$tmp/root/$p" ] && realpath -m --relative-to="$tmp/root" "$tmp/root/$p"
}

# The package holds several EFI builds. The x86_64 one with iPXE's full driver set is
# usr/lib/ipxe/ipxe-amd64.efi (ipxe.efi links to it; older packages had boot/ipxe.efi);
# snponly.efi drives the network through the firmware's SNP only; ipxe-{arm64,...}.efi are
# other architectures.
efi=""
for cand in usr/lib/ipxe/ipxe-amd64.efi usr/lib/ipxe/ipxe.efi boot/ipxe.efi; do
  efi=$(in_root "$cand") && break
done
[ -n "$efi" ] || die "no x86_64 ipxe.efi in $(basename "$deb"); its EFI files: $(cd "$tmp/root" && find . -name '*.efi' | tr '\n' ' ')"
why=$(check_efi "$tmp/root/$efi") || die "in $(basename "$deb"): ${why#"$tmp/root/"}"
snp=$(in_root usr/lib/ipxe/snponly.efi) || snp=""
if [ -n "$snp" ] && ! why=$(check_efi "$tmp/root/$snp"); then
  say "warning: not installing snponly.efi: ${why#"$tmp/root/"}"
  snp=""
fi

$sudo install -d -m 0755 "$dest"
$sudo install -m 0644 "$tmp/root/$efi" "$dest/ipxe.efi"
[ -z "$snp" ] || $sudo install -m 0644 "$tmp/root/$snp" "$dest/snponly.efi"
echo "$version" | $sudo tee "$dest/VERSION.tmp" >/dev/null
$sudo mv "$dest/VERSION.tmp" "$dest/VERSION"
say "installed ipxe $version: /$efi ($(stat -c %s "$dest/ipxe.efi") bytes) as $dest/ipxe.efi${snp:+, and snponly.efi}"
