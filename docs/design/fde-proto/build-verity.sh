#!/usr/bin/env bash
# docs/design/fde-proto/build-verity.sh: part D's disk: an EROFS image (a 4 MiB random "blob" and a small file)
# followed by its dm-verity hash tree in the same partition-sized file (veritysetup format
# --hash-offset), root hash in $P/verity/verity.env (build-provisioner.sh puts it on the signed
# UKI command line), and the byte offset of blob data to corrupt in the test.
set -euo pipefail
. "$(dirname "$0")/common.sh"
out=$P/verity; rm -rf "$out"; mkdir -p "$out/tree"
head -c 4M /dev/urandom >"$out/tree/blob"
echo "verified hello" >"$out/tree/hello"
mkfs.erofs --quiet "$out/data.erofs" "$out/tree" >/dev/null
data_bytes=$(stat -c %s "$out/data.erofs")
data_bytes=$(( (data_bytes + 4095) / 4096 * 4096 )); truncate -s $data_bytes "$out/data.erofs"
cp "$out/data.erofs" "$out/disk.img"
vout=$(veritysetup format --hash-offset=$data_bytes "$out/disk.img" "$out/disk.img")
roothash=$(awk '/^Root hash:/ { print $3 }' <<<"$vout")
# where blob's bytes at 2 MiB are (uncompressed EROFS: stored contiguously)
needle=$(dd if="$out/tree/blob" bs=1 skip=$((2 * 1048576)) count=32 status=none | od -An -tx1 | tr -d ' \n')
corrupt_at=$(python3 - "$out/data.erofs" "$needle" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read(); n = bytes.fromhex(sys.argv[2]); print(d.find(n))
PY
)
[ "$corrupt_at" -gt 0 ] || die "blob bytes not found in the EROFS image"
truncate -s 8M "$out/disk.img"
printf 'roothash=%s\nhash_offset=%s\ncorrupt_at=%s\n' "$roothash" "$data_bytes" "$corrupt_at" >"$out/verity.env"
cat "$out/verity.env" >&2
echo "$vout" >"$out/format.txt"
