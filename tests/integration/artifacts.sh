# Integration test of the boot artifacts: `edgeprov artifacts keys|build|nginx-conf` on a
# clean tree, the Micro-OS initramfs's contents, reproducible bytes, Secure Boot signatures
# (sbverify), the CA as an EFI signature list, CA rotation, bad values refused with nothing
# replaced, and the artifact directory served by edgeprovd's boot-https (ranges, ETags, path
# traversal) and by nginx from the generated config. Last, the built Micro-OS boots under
# QEMU (TCG), brings its network up and its agent onboards at this edgeprovd over TLS.
# Usage: artifacts.sh SOURCE_DIR BUILD_DIR
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
chmod 755 "$tmp" # nginx workers run as nobody
unset EDGEPROV_CONFIG EDGEPROV_SERVER http_proxy https_proxy HTTP_PROXY HTTPS_PROXY SOURCE_DATE_EPOCH

# A CA and a server certificate the guest can check too (QEMU's user network shows the host
# as 10.0.2.2).
make_ca() { # DIR
  mkdir -p "$1"
  ( cd "$1" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
      -subj /CN=edgeprov-artifacts-test-ca && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout tls.key -out tls.csr -subj /CN=orchestrator &&
      printf 'subjectAltName=IP:127.0.0.1,IP:10.0.2.2,DNS:localhost' >ext && openssl x509 -req -in tls.csr -CA ca.pem \
      -CAkey ca.key -CAcreateserial -out tls.pem -days 2 -extfile ext ) >/dev/null 2>&1
  chmod 600 "$1/tls.key"
}
make_ca "$tmp/pki"
cp "$tmp/pki/ca.pem" "$tmp/ca.pem"
E="$build/bin/edgeprov"

# ---- keys ----------------------------------------------------------------------------------
check "artifacts keys creates PK, KEK and db" run_status 0 "$tmp/keys.out" $E artifacts keys --out "$tmp/keys" --name "test site"
check "the private keys are 0600" test "$(stat -c %a "$tmp/keys/db.key")" = 600
check "db.crt names the site" sh -c "openssl x509 -in '$tmp/keys/db.crt' -noout -subject | grep -q 'test site db'"
check "db.cer is the DER of db.crt" sh -c "openssl x509 -in '$tmp/keys/db.crt' -outform DER | cmp -s - '$tmp/keys/db.cer'"
check "keys are never overwritten" run_status 1 "$tmp/keys2.out" $E artifacts keys --out "$tmp/keys"
check "  and it says so" contains "$tmp/keys2.out" "never overwritten"

grpc=$(free_port) https=$(free_port) web=$(free_port)
write_conf() { # EXTRA_ARTIFACT_KEYS [MODULES]
  local modules=${2:-'[ "igb", "tg3" ]'}
  cat >"$tmp/site.conf" <<CONF
listen = { management = "unix:$tmp/mgmt.sock"; grpc = "0.0.0.0:$grpc"; https = "0.0.0.0:$https"; };
paths = { data = "$tmp/data"; plugins = [ "$build/lib/edgeprov/plugins" ]; };
tls = { cert = "$tmp/pki/tls.pem"; key = "$tmp/pki/tls.key"; ca = "$tmp/ca.pem"; };
provisioning = { mode = "nztp"; orchestrator = "10.0.2.2:$grpc"; token_url = "https://10.0.2.2:$https/oauth2/token"; };
plugins = { enabled = [ "storage-sqlite", "auth-local", "actions-core", "boot-https", "boot-usb" ]; };
artifacts = { base_url = "https://10.0.2.2:$https/boot"; signing_key = "$tmp/keys/db.key";
              signing_cert = "$tmp/keys/db.crt"; modules = $modules; $1 };
CONF
}
write_conf ""
A="$tmp/data/artifacts"

# ---- build from a clean tree ----------------------------------------------------------------
check "artifacts build succeeds" run_status 0 "$tmp/build.out" $E --config "$tmp/site.conf" artifacts build
check "  reports the signature" contains "$tmp/build.out" "signed for Secure Boot"
for f in vmlinuz initrd.img micro-os.efi ipxe.efi boot.ipxe autoexec.ipxe cacerts.esl ca.pem db.crt db.cer SHA256SUMS manifest.json; do
  check "  wrote $f" test -s "$A/$f"
done
check "  SHA256SUMS matches the files" sh -c "cd '$A' && sha256sum --quiet -c SHA256SUMS"
check "  no staging directory is left behind" sh -c "! ls -d '$tmp/data/'artifacts.* 2>/dev/null | grep -q ."

zstd -dc "$A/initrd.img" | cpio -t --quiet >"$tmp/initrd.list" 2>/dev/null
check "the initramfs is a zstd cpio archive" test -s "$tmp/initrd.list"
for f in init usr/bin/busybox usr/bin/edgeprov-agent usr/lib/edgeprov/plugins/actions-core.so \
  usr/share/udhcpc/default.script etc/edgeprov/ca.pem etc/edgeprov/agent.env etc/edgeprov/modules etc/edgeprov/modules.pci dev/console \
  lib64 usr/lib64/ld-linux-x86-64.so.2; do
  check "  holds $f" grep -qx "$f" "$tmp/initrd.list"
done
# libtss2-tcti-device: what tpm2-tss opens at run time for /dev/tpmrm0 (the TPM identity).
for lib in libgrpc.so libcurl.so libprotobuf-c.so libconfig.so libc.so.6 libssl.so libjansson.so libtss2-esys.so; do
  check "  holds the agent's $lib" grep -q "/$lib" "$tmp/initrd.list"
done
check "  holds tpm2-tss's device TCTI where the loader finds it (a link to its file)" \
  grep -qE '^usr/lib/[^/]+/libtss2-tcti-device\.so\.0\.[0-9.]+$' "$tmp/initrd.list"
check "  ... under its soname" grep -qE '^usr/lib/[^/]+/libtss2-tcti-device\.so\.0$' "$tmp/initrd.list"
for m in virtio_net virtio_blk virtio_pci e1000e igb ixgbe i40e ice nvme ahci tg3 net_failover; do
  check "  holds module $m" grep -q "/$m.ko$" "$tmp/initrd.list"
done
# Full-disk encryption and dm-verity (docs/design/fde.md, B): the tools, what they dlopen()
# (tpm2-tss by soname, libcryptsetup's token plugin from its directory), the modules.
# tpm2 (tpm2-tools): /init's PCR 15 lock in installed mode; its libraries (libcurl's...) are in the
# needed-libraries check below.
for f in usr/sbin/cryptsetup usr/sbin/veritysetup usr/bin/systemd-cryptenroll usr/bin/tpm2 \
  usr/lib/x86_64-linux-gnu/cryptsetup/libcryptsetup-token-systemd-tpm2.so; do
  check "  holds $f (FDE)" grep -qx "$f" "$tmp/initrd.list"
done
for lib in libtss2-esys.so.0 libtss2-rc.so.0 libtss2-mu.so.0 libtss2-tcti-device.so.0 libcryptsetup.so.12 libdevmapper.so.1.02.1; do
  check "  holds $lib under its soname (FDE)" grep -qx "usr/lib/x86_64-linux-gnu/$lib" "$tmp/initrd.list"
done
check "  holds systemd-cryptenroll's libsystemd-shared (its RUNPATH)" \
  grep -qE '^usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-[0-9]+\.so$' "$tmp/initrd.list"
for m in dm-mod dm-crypt ecb xts aesni-intel crypto_simd cryptd dm-bufio reed_solomon dm-verity libcrc32c erofs; do
  check "  holds module $m (FDE, dm-verity)" grep -q "/$m.ko$" "$tmp/initrd.list"
done
# Every ELF of the archive finds each library it needs (DT_NEEDED) in the archive: in the
# multiarch directory, or the RUNPATH directory of systemd's programs, or the loader's.
rm -rf "$tmp/root" && mkdir -p "$tmp/root" && (cd "$tmp/root" && zstd -dc "$A/initrd.img" | cpio -id --quiet 2>/dev/null)
needed_present() {
  local f lib missing=0 elves=0
  while IFS= read -r f; do
    f=$tmp/root/$f
    head -c 4 "$f" | grep -q 'ELF' || continue
    elves=$((elves + 1))
    for lib in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      [ -e "$tmp/root/usr/lib/x86_64-linux-gnu/$lib" ] || [ -e "$tmp/root/usr/lib/x86_64-linux-gnu/systemd/$lib" ] ||
        [ -e "$tmp/root/usr/lib64/$lib" ] || { echo "---- ${f#$tmp/root/} needs $lib, which the initramfs lacks"; missing=1; }
    done
  done < <(cd "$tmp/root" && find usr -type f \( -path 'usr/bin/*' -o -path 'usr/sbin/*' -o -name '*.so*' \) ! -path 'usr/bin/busybox')
  [ "$missing" = 0 ] && [ "$elves" -ge 40 ] || { echo "---- $elves ELF files checked"; return 1; }
}
check "  every ELF's needed libraries are in it (cryptsetup, veritysetup, cryptenroll, the plugin...)" needed_present
check "  has no boot-https or auth plugin (node-side plugins only)" absent 'plugins/\(boot\|auth\|storage\)' "$tmp/initrd.list"
mkdir -p "$tmp/x" && (cd "$tmp/x" && zstd -dc "$A/initrd.img" | cpio -id --quiet etc/edgeprov/ca.pem etc/edgeprov/agent.env etc/edgeprov/modules \
  etc/edgeprov/modules.pci init 2>/dev/null)
check "  its CA is the site's tls.ca" cmp -s "$tmp/x/etc/edgeprov/ca.pem" "$tmp/ca.pem"
check "  agent.env names the orchestrator" contains "$tmp/x/etc/edgeprov/agent.env" "EDGEPROV_ORCHESTRATOR=10.0.2.2:$grpc"
check "  /init is micro-os/init" cmp -s "$tmp/x/init" "$src/micro-os/init"
check "  modules load after their dependencies" sh -c "test \$(grep -n '/virtio.ko$' '$tmp/x/etc/edgeprov/modules' | cut -d: -f1) -lt \$(grep -n '/virtio_net.ko$' '$tmp/x/etc/edgeprov/modules' | cut -d: -f1)"
before() { # FILE A B: module A is loaded before module B
  test "$(grep -n "/$2.ko$" "$1" | cut -d: -f1)" -lt "$(grep -n "/$3.ko$" "$1" | cut -d: -f1)"
}
M=$tmp/x/etc/edgeprov/modules
check "  crc32c_generic loads before libcrc32c, libcrc32c before erofs (nothing runs modprobe)" \
  eval 'before "$M" crc32c_generic libcrc32c && before "$M" libcrc32c erofs'
check "  dm-mod before dm-crypt; dm-bufio and reed_solomon before dm-verity" \
  eval 'before "$M" dm-mod dm-crypt && before "$M" dm-bufio dm-verity && before "$M" reed_solomon dm-verity'
check "  the FDE modules are not PCI-gated" absent -E '^[^|]*/(dm-mod|dm-crypt|aesni-intel|dm-verity|erofs)\.ko\|' "$tmp/x/etc/edgeprov/modules.pci"
check "  igb's dependency dca is listed before it" sh -c "test \$(grep -n '/dca.ko$' '$tmp/x/etc/edgeprov/modules' | cut -d: -f1) -lt \$(grep -n '/igb.ko$' '$tmp/x/etc/edgeprov/modules' | cut -d: -f1)"
# PCI gates: a NIC driver is loaded only for its PCI IDs, with what only such drivers need;
# modules with other aliases (virtio_net, ext4) always load.
P=$tmp/x/etc/edgeprov/modules.pci
check "  modules.pci gates igb by its PCI IDs (82576: 8086:10C9), with dca" grep -qE '^kernel/drivers/net/ethernet/intel/igb/igb\.ko\|[^|]*kernel/drivers/dca/dca\.ko[^|]*\|.*(^| |\|)v00008086d000010C9sv\*sd\*bc\*sc\*i\*( |$)' "$P"
check "  ... and ahci by its class too" grep -qE '^kernel/drivers/ata/ahci\.ko\|.*\|(.* )?v\*d\*sv\*sd\*bc01sc06i01\*( |$)' "$P"
check "  virtio_net and ext4 are not gated" absent -E '^[^|]*/(virtio_net|ext4)\.ko\|' "$P"
check "  no gated module's dependency is one an ungated module needs (jbd2)" absent 'jbd2' "$P"

for f in ipxe.efi micro-os.efi; do
  check "sbverify: $f is signed with the site's db key" sh -c "sbverify --cert '$tmp/keys/db.crt' '$A/$f' 2>&1 | grep -q 'Signature verification OK'"
  check "sbverify: $f does not verify against another key" sh -c "! sbverify --cert '$tmp/keys/KEK.crt' '$A/$f' >/dev/null 2>&1"
done
# A signed bare kernel would boot under Secure Boot with any initramfs and command line: a signed
# build offers none. vmlinuz is there for image tools, with no signature at all (Debian's removed).
check "the bare kernel is not signed with the db key" sh -c "! sbverify --cert '$tmp/keys/db.crt' '$A/vmlinuz' >/dev/null 2>&1"
check "  and carries no signature at all" sh -c "! sbverify --list '$A/vmlinuz' 2>&1 | grep -q '^signature [0-9]'"
check "  the manifest says the Micro-OS boots as the UKI" grep -q '"micro_os": "uki"' "$A/manifest.json"
check "  and that the kernel is unsigned" grep -q '"kernel_signed": false' "$A/manifest.json"
check "published db certificate is the signing certificate" cmp -s "$A/db.crt" "$tmp/keys/db.crt"

# cacerts.esl: one EFI_SIGNATURE_LIST of type EFI_CERT_X509_GUID holding the CA's DER.
esl_ok() { # ESL PEM
  /usr/bin/python3 - "$1" "$2" <<'PY'
import struct, subprocess, sys, uuid
esl = open(sys.argv[1], "rb").read()
der = subprocess.run(["openssl", "x509", "-in", sys.argv[2], "-outform", "DER"], capture_output=True, check=True).stdout
guid = uuid.UUID(bytes_le=esl[:16])
size, header, sigsize = struct.unpack("<III", esl[16:28])
ok = str(guid) == "a5c059a1-94e4-4aa7-87b5-ab155c2bf072" and size == len(esl) and header == 0 \
     and sigsize == 16 + len(der) and esl[44:] == der
sys.exit(0 if ok else 1)
PY
}
check "cacerts.esl holds the CA in an EFI signature list" esl_ok "$A/cacerts.esl" "$tmp/ca.pem"

check "boot.ipxe is an iPXE script" sh -c "head -1 '$A/boot.ipxe' | grep -qx '#!ipxe'"
check "  fetches from artifacts.base_url" contains "$A/boot.ipxe" "set edgeprov-base https://10.0.2.2:$https/boot"
check "  chains the signed UKI (the build is signed)" contains "$A/boot.ipxe" 'chain micro-os.efi '
check "  never names the bare kernel or the initrd" sh -c "! grep -qE 'vmlinuz|initrd' '$A/boot.ipxe'"
check "  passes the orchestrator" contains "$A/boot.ipxe" "edgeprov.orchestrator=10.0.2.2:$grpc"
check "  passes the NIC's MAC and IP" contains "$A/boot.ipxe" 'edgeprov.mac=${net${edgeprov-nic}/mac} edgeprov.ip=${net${edgeprov-nic}/ip}'
check "  loops over the NICs" contains "$A/boot.ipxe" 'isset ${net${edgeprov-nic}/mac} || goto round-failed'
check "autoexec.ipxe (boot-usb) is the same script" cmp -s "$A/boot.ipxe" "$A/autoexec.ipxe"

# ---- the USB image (boot-usb) ----------------------------------------------------------------
usb_checks() { # PAYLOAD EXPECTED_BOOT_FILE
  local img="$tmp/usb-$1.img"
  check "usb-image --payload $1 writes an image" run_status 0 "$tmp/usb.out" $E --config "$tmp/site.conf" usb-image --out "$img" --payload "$1"
  check "  sgdisk -v finds no problems" sh -c "sgdisk -v '$img' | grep -q 'No problems found'"
  local first last
  first=$(sgdisk -i 1 "$img" | sed -n 's/^First sector: \([0-9]*\).*/\1/p')
  last=$(sgdisk -i 1 "$img" | sed -n 's/^Last sector: \([0-9]*\).*/\1/p')
  check "  partition 1 is an EFI system partition" sh -c "sgdisk -i 1 '$img' | grep -q 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'"
  dd if="$img" of="$tmp/esp.img" bs=512 skip="$first" count=$((last - first + 1)) status=none
  check "  fsck.vfat -n passes on the ESP" run_status 0 "$tmp/fsck.out" fsck.vfat -n "$tmp/esp.img"
  rm -f "$tmp/bootx64.efi" && mcopy -i "$tmp/esp.img" ::/EFI/BOOT/BOOTX64.EFI "$tmp/bootx64.efi" 2>/dev/null
  check "  BOOTX64.EFI is the signed $2" cmp -s "$tmp/bootx64.efi" "$A/$2"
  check "  and verifies with sbverify" sh -c "sbverify --cert '$tmp/keys/db.crt' '$tmp/bootx64.efi' 2>&1 | grep -q OK"
}
usb_checks ipxe ipxe.efi
check "  autoexec.ipxe is on the ESP" sh -c "mcopy -i '$tmp/esp.img' ::/autoexec.ipxe - 2>/dev/null | cmp -s - '$A/autoexec.ipxe'"
usb_checks micro-os micro-os.efi
check "usb-image without --out is a usage error" run_status 2 "$tmp/usb2.out" $E --config "$tmp/site.conf" usb-image
check "usb-image from a directory without artifacts fails, naming the file" run_status 1 "$tmp/usb3.out" \
  $E --config "$tmp/site.conf" usb-image --out "$tmp/none.img" --from "$tmp/pki"
check "  ipxe.efi" contains "$tmp/usb3.out" "ipxe.efi"
check "  and writes nothing" test ! -e "$tmp/none.img"

# ---- reproducible, and replaced in one step -------------------------------------------------
cp "$A/SHA256SUMS" "$tmp/sums.1"
check "a second build gives the same bytes" run_status 0 "$tmp/build2.out" $E --config "$tmp/site.conf" artifacts build
check "  and says so" contains "$tmp/build2.out" "unchanged: same bytes as before"
check "  SHA256SUMS is identical" cmp -s "$tmp/sums.1" "$A/SHA256SUMS"
check "a build into another directory gives the same bytes" run_status 0 "$tmp/build3.out" $E --config "$tmp/site.conf" artifacts build --out "$tmp/other"
# Only a previous build is ever replaced: not the current directory, nor a directory of anything else.
mkdir -p "$tmp/mine" && echo keep >"$tmp/mine/notes.txt"
check "--out . (the current directory) is refused" run_status 1 "$tmp/dot.out" \
  sh -c "cd '$tmp/mine' && $E --config '$tmp/site.conf' artifacts build --out ."
check "  saying why" contains "$tmp/dot.out" "is the current directory or holds it"
check "--out naming a directory of other files is refused" run_status 1 "$tmp/mine.out" \
  $E --config "$tmp/site.conf" artifacts build --out "$tmp/mine"
check "  saying why" contains "$tmp/mine.out" "holds no previous build (no SHA256SUMS): not replaced"
check "  and the files are still there" test "$(cat "$tmp/mine/notes.txt")" = keep
check "--out '' is refused" run_status 1 "$tmp/empty.out" $E --config "$tmp/site.conf" artifacts build --out ""
check "  SHA256SUMS is identical" cmp -s "$tmp/sums.1" "$tmp/other/SHA256SUMS"

# ---- bad values: refused with the field named, nothing replaced ----------------------------
write_conf 'kernel_args = "console=ttyS0; reboot";'
check "kernel_args with ';' is refused" run_status 1 "$tmp/bad1.out" $E config check "$tmp/site.conf"
check "  naming artifacts.kernel_args" contains "$tmp/bad1.out" "artifacts.kernel_args"
write_conf 'proxy = "http://proxy:3128/\$(reboot)";'
check "a proxy URL with \$( is refused" run_status 1 "$tmp/bad2.out" $E config check "$tmp/site.conf"
check "  naming artifacts.proxy" contains "$tmp/bad2.out" "artifacts.proxy"
write_conf ""
sed -i "s|base_url = \"https://10.0.2.2:$https/boot\"|base_url = \"https://10.0.2.2:$https/boot/\${x}\"|" "$tmp/site.conf"
check "a base_url with \${ is refused" run_status 1 "$tmp/bad3.out" $E config check "$tmp/site.conf"
check "  naming artifacts.base_url" contains "$tmp/bad3.out" "artifacts.base_url"
openssl pkey -in "$tmp/keys/db.key" -aes256 -passout pass:secret -out "$tmp/keys/db-enc.key" 2>/dev/null
write_conf ""
sed -i "s|$tmp/keys/db.key|$tmp/keys/db-enc.key|" "$tmp/site.conf"
check "an encrypted signing key is refused" run_status 1 "$tmp/bad4.out" $E --config "$tmp/site.conf" artifacts build
check "  naming artifacts.signing_key" contains "$tmp/bad4.out" "artifacts.signing_key"
check "  the artifacts are untouched" cmp -s "$tmp/sums.1" "$A/SHA256SUMS"
check "  and no staging directory is left" sh -c "! ls -d '$tmp/data/'artifacts.* 2>/dev/null | grep -q ."
write_conf "" '[ "no_such_module" ]'
check "an unknown kernel module is refused" run_status 1 "$tmp/bad5.out" $E --config "$tmp/site.conf" artifacts build
check "  naming it" contains "$tmp/bad5.out" "no_such_module"
check "  the artifacts are untouched" cmp -s "$tmp/sums.1" "$A/SHA256SUMS"

write_conf ""
printf 'boot-https = { payload = "kernel"; };\n' >>"$tmp/site.conf"
check "boot-https payload=kernel is refused for a signed build" run_status 1 "$tmp/bad6.out" $E --config "$tmp/site.conf" artifacts build
check "  naming the setting" contains "$tmp/bad6.out" "setting payload: 'kernel'"
check "  and why" contains "$tmp/bad6.out" "Secure Boot would not check"
check "  the artifacts are untouched" cmp -s "$tmp/sums.1" "$A/SHA256SUMS"

# ---- CA rotation ----------------------------------------------------------------------------
write_conf ""
make_ca "$tmp/pki2"
cp "$tmp/pki2/ca.pem" "$tmp/ca.pem"
check "a rebuild after a CA rotation succeeds" run_status 0 "$tmp/rot.out" $E --config "$tmp/site.conf" artifacts build
check "  and is not 'unchanged'" lacks "$tmp/rot.out" "unchanged"
rm -rf "$tmp/x" && mkdir -p "$tmp/x" && (cd "$tmp/x" && zstd -dc "$A/initrd.img" | cpio -id --quiet etc/edgeprov/ca.pem 2>/dev/null)
check "  the initramfs carries the new CA" cmp -s "$tmp/x/etc/edgeprov/ca.pem" "$tmp/pki2/ca.pem"
check "  cacerts.esl holds the new CA" esl_ok "$A/cacerts.esl" "$tmp/pki2/ca.pem"
check "  the manifest records the new CA" grep -q "$(sha256sum "$tmp/pki2/ca.pem" | cut -d' ' -f1)" "$A/manifest.json"
check "  the signed files still verify" sh -c "sbverify --cert '$tmp/keys/db.crt' '$A/micro-os.efi' 2>&1 | grep -q OK"
cp "$tmp/pki/ca.pem" "$tmp/ca.pem" # back to the CA the server's certificate chains to
$E --config "$tmp/site.conf" artifacts build >/dev/null 2>&1

# ---- served by edgeprovd's boot-https -------------------------------------------------------
"$build/bin/edgeprovd" --config "$tmp/site.conf" >"$tmp/daemon.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q 'msg="ready' "$tmp/daemon.log" && break; sleep 0.05; done
check "edgeprovd starts with boot-https" grep -q 'msg="ready' "$tmp/daemon.log"
check "  and says what it serves" contains "$tmp/daemon.log" "at /boot/"

serve_checks() { # LABEL BASE_URL
  local label=$1 base=$2 size
  local C="curl -s --cacert $tmp/pki/ca.pem"
  size=$(stat -c %s "$A/initrd.img")
  $C -o "$tmp/whole" "$base/initrd.img"
  check "$label: GET returns the file" cmp -s "$tmp/whole" "$A/initrd.img"
  $C -D "$tmp/h1" -o "$tmp/r1" -H 'Range: bytes=0-99' "$base/initrd.img"
  check "$label: Range 0-99 is 206" grep -q '^HTTP/[0-9.]* 206' "$tmp/h1"
  check "$label:   with Content-Range" grep -qi "^content-range: bytes 0-99/$size" "$tmp/h1"
  check "$label:   and the first 100 bytes" sh -c "head -c 100 '$A/initrd.img' | cmp -s - '$tmp/r1'"
  $C -o "$tmp/r2" -H 'Range: bytes=-1000' "$base/initrd.img"
  check "$label: suffix range -1000 gives the last 1000 bytes" sh -c "tail -c 1000 '$A/initrd.img' | cmp -s - '$tmp/r2'"
  $C -o "$tmp/r3" -H "Range: bytes=$((size - 5000))-" "$base/initrd.img"
  check "$label: open range gives the rest" sh -c "tail -c 5000 '$A/initrd.img' | cmp -s - '$tmp/r3'"
  $C -o "$tmp/r4" -H "Range: bytes=1000-1999" "$base/initrd.img"
  check "$label: middle range 1000-1999" sh -c "tail -c +1001 '$A/initrd.img' | head -c 1000 | cmp -s - '$tmp/r4'"
  $C -D "$tmp/h5" -o /dev/null -H "Range: bytes=$size-" "$base/initrd.img"
  check "$label: a range past the end is 416" grep -q '^HTTP/[0-9.]* 416' "$tmp/h5"
  check "$label:   with bytes */size" grep -qi "^content-range: bytes \*/$size" "$tmp/h5"
  $C -D "$tmp/h6" -o /dev/null -I "$base/initrd.img"
  check "$label: HEAD gives the length" grep -qi "^content-length: $size" "$tmp/h6"
  check "$label:   an ETag" grep -qi '^etag: "' "$tmp/h6"
  check "$label:   and Accept-Ranges" grep -qi '^accept-ranges: bytes' "$tmp/h6"
  local etag
  etag=$(grep -i '^etag:' "$tmp/h6" | cut -d' ' -f2 | tr -d '\r')
  check "$label: If-None-Match with the ETag is 304" sh -c "$C -o /dev/null -w '%{http_code}' -H 'If-None-Match: $etag' '$base/initrd.img' | grep -qx 304"
  check "$label: If-Range with another ETag gives the whole file" sh -c "$C -o /dev/null -w '%{http_code}' -H 'If-Range: \"other\"' -H 'Range: bytes=0-9' '$base/initrd.img' | grep -qx 200"
  check "$label: POST is refused" sh -c "$C -o /dev/null -w '%{http_code}' -X POST -d x '$base/initrd.img' | grep -qE '^(403|405)$'"
  check "$label: ../ traversal is 404" sh -c "$C --path-as-is -o /dev/null -w '%{http_code}' '$base/../../../../etc/passwd' | grep -qE '^(400|404)$'"
  check "$label: %2e%2e traversal is 404" sh -c "$C --path-as-is -o /dev/null -w '%{http_code}' '$base/%2e%2e/%2e%2e/etc/passwd' | grep -qE '^(400|404)$'"
  check "$label: a hidden file is 404" sh -c "$C -o /dev/null -w '%{http_code}' '$base/.hidden' | grep -qx 404"
  check "$label: a symbolic link out of the directory is 404" sh -c "$C -o /dev/null -w '%{http_code}' '$base/escape' | grep -qE '^(403|404)$'"
  check "$label: a missing file is 404" sh -c "$C -o /dev/null -w '%{http_code}' '$base/nothing.efi' | grep -qx 404"
  check "$label: boot.ipxe is served" sh -c "$C '$base/boot.ipxe' | cmp -s - '$A/boot.ipxe'"
  # UEFI HTTP boot sends HEAD then GET and cannot open a second TLS connection in between.
  $C -v -o /dev/null -I "$base/ipxe.efi" -: -s --cacert "$tmp/pki/ca.pem" -o "$tmp/keep" "$base/ipxe.efi" 2>"$tmp/keep.log"
  check "$label: HEAD then GET share one connection (keep-alive)" contains "$tmp/keep.log" "Re-using existing connection"
  check "$label:   and the GET after the HEAD is whole" cmp -s "$tmp/keep" "$A/ipxe.efi"
}
echo secret >"$A/.hidden"
ln -s /etc/passwd "$A/escape"
serve_checks "boot-https" "https://127.0.0.1:$https/boot"

# ---- served by nginx from the generated config ---------------------------------------------
cp "$tmp/pki/tls.key" "$tmp/pki/web.key" && chmod 644 "$tmp/pki/web.key"
chmod 755 "$tmp/data" # nginx's workers (nobody) read the artifacts
check "artifacts nginx-conf writes a site config" run_status 0 "$tmp/ngx.out" $E --config "$tmp/site.conf" artifacts nginx-conf \
  --listen "127.0.0.1:$web" --key "$tmp/pki/web.key" --out "$tmp/edgeprov-site.conf"
check "nginx-conf refuses a listen value with a quote" run_status 1 "$tmp/ngx2.out" $E --config "$tmp/site.conf" artifacts nginx-conf --listen '127.0.0.1:1"; include /x'
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $tmp/nginx.pid; error_log $tmp/nginx-error.log;
events {}
http { access_log off; client_body_temp_path $tmp/b; proxy_temp_path $tmp/p; fastcgi_temp_path $tmp/f;
       uwsgi_temp_path $tmp/u; scgi_temp_path $tmp/s; include $tmp/edgeprov-site.conf; }
CONF
check "nginx -t accepts the generated config" run_status 0 "$tmp/nginx-t.out" nginx -t -c "$tmp/nginx.conf"
nginx -c "$tmp/nginx.conf" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null --cacert "$tmp/pki/ca.pem" "https://127.0.0.1:$web/boot/boot.ipxe" && break; sleep 0.05; done
serve_checks "nginx" "https://127.0.0.1:$web/boot"
rm -f "$A/.hidden" "$A/escape"

# ---- the Micro-OS boots and its agent onboards here -----------------------------------------
check "the test node is pre-registered" run_status 0 "$tmp/hostadd.out" $E --config "$tmp/site.conf" host add \
  --uuid 6f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b --serial EPART0001 --auto-onboard
timeout 120 qemu-system-x86_64 -accel tcg -m 1024 -nographic -no-reboot -kernel "$A/vmlinuz" -initrd "$A/initrd.img" \
  -append "console=ttyS0,115200 panic=-1 no_timer_check" -uuid 6f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b -smbios type=1,serial=EPART0001 -netdev user,id=n0 -device virtio-net-pci,netdev=n0 \
  -serial "file:$tmp/console.log" -monitor none -display none </dev/null >/dev/null 2>&1 &
qemu=$!
pids+=($qemu)
for _ in $(seq 240); do grep -q 'reported in on the node API' "$tmp/console.log" 2>/dev/null && break; sleep 0.5; done
kill "$qemu" 2>/dev/null
check "Micro-OS: /init runs" contains "$tmp/console.log" "edgeprov-microos: init"
check "Micro-OS: modules load" grep -q 'edgeprov-microos: modules loaded ([1-9]' "$tmp/console.log"
check "Micro-OS: the network comes up by DHCP" contains "$tmp/console.log" "edgeprov-microos: network up eth0 10.0.2.15"
check "Micro-OS: the agent starts" contains "$tmp/console.log" "edgeprov-microos: agent starting"
check "Micro-OS: the agent onboards over TLS with the built-in CA" contains "$tmp/console.log" "onboarded as"
check "Micro-OS: the agent gets a token and reports in" contains "$tmp/console.log" "reported in on the node API"
check "edgeprovd saw the node onboard" grep -q 'onboard' "$tmp/daemon.log"
finish
