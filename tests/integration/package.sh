#!/usr/bin/env bash
# Integration test: the Debian packages (cmake/Packaging.cmake, issue 19). Builds a tree of its
# own configured for /usr in the scratch directory (the packages' paths are compiled in) and runs
# `--target package` there, so no .deb lands in the source or build tree; lintian reports no
# errors on either package; systemd-analyze verify accepts the unit; the packages hold what
# they should (plugins in /usr/lib/edgeprov/plugins, the conffile, the unit, the SDK in -dev,
# dependencies from dpkg-shlibdeps); the packaged edgeprovd tells systemd READY=1 once its
# listeners are up. Then the package is installed with apt-get into a fresh Debian root
# (debootstrap --variant=minbase of this machine's suite, cached as a tarball under
# ${EDGEPROV_E2E_CACHE:-/var/cache/edgeprov-e2e}, from this machine's own apt source as
# scripts/apt-mirror.sh finds it, or $EDGEPROV_E2E_MIRROR), where edgeprov --version,
# edgeprov plugins list and edgeprovd --check --config /etc/edgeprov/edgeprov.conf run in a
# chroot, loading every plugin from the installed paths; the root is then booted in a container
# (systemd-nspawn, its own network namespace), where edgeprovd.service runs sandboxed as the
# edgeprov user and a probe unit checks it; then the package is purged.
# Needs root (debootstrap, chroot, systemd-nspawn). About 1 minute with the cached root.
# Usage: package.sh SOURCE_DIR BUILD_DIR ...
set -u
src=$1 build=$2
. "$src/tests/integration/lib.sh"
scratch
unset EDGEPROV_CONFIG
export LC_ALL=C

cache_dir=${EDGEPROV_E2E_CACHE:-/var/cache/edgeprov-e2e}
root=$tmp/root
bootstrap_pid=""
# on_exit (lib.sh's cleanup calls it): stop an unfinished debootstrap, unmount whatever is
# mounted under the scratch directory (deepest first), before $tmp is removed.
on_exit() {
  local m
  if [ -n "$bootstrap_pid" ]; then
    kill -TERM -- "-$bootstrap_pid" 2>/dev/null
    wait "$bootstrap_pid" 2>/dev/null
  fi
  for m in $(awk -v w="$tmp/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  rm -f "$cache_dir"/.tmp-package-"$$"-* 2>/dev/null
}

check "runs as root (debootstrap, chroot)" test "$(id -u)" -eq 0
for tool in lintian systemd-analyze systemd-nspawn dpkg-deb dpkg-shlibdeps debootstrap zstd chroot python3; do
  check "$tool is installed (scripts/install-deps.sh)" command -v "$tool"
done

# ---- the packages -------------------------------------------------------------------------------
pkgbuild=$tmp/build
check "configure a /usr tree" run_status 0 "$tmp/out" cmake -S "$src" -B "$pkgbuild" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DEP_BUILD_TESTS=OFF
check "build it" run_status 0 "$tmp/out" cmake --build "$pkgbuild" -j2
check "cmake --build --target package" run_status 0 "$tmp/out" cmake --build "$pkgbuild" --target package
deb=$(ls "$pkgbuild"/edgeprov_*_*.deb 2>/dev/null | head -1)
devdeb=$(ls "$pkgbuild"/edgeprov-dev_*_*.deb 2>/dev/null | head -1)
check "edgeprov_*.deb was written" test -f "$deb"
check "edgeprov-dev_*.deb was written" test -f "$devdeb"
check "no .deb in the source tree" test -z "$(find "$src" -name '*.deb' -not -path "$src/build/*" -print -quit)"

# A tree configured for another prefix is refused, by name, before anything is packaged.
if [ "$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")" != /usr ]; then
  check "cpack refuses a tree not configured for /usr" run_status 1 "$tmp/refused.log" \
    cpack --config "$build/CPackConfig.cmake" -B "$tmp/refused"
  check "  and says how to configure one" contains "$tmp/refused.log" "-DCMAKE_INSTALL_PREFIX=/usr"
  check "  and writes no package" test -z "$(find "$tmp/refused" -name '*.deb' 2>/dev/null)"
fi

# lintian: errors fail (warnings are listed).
check "lintian: no errors" run_status 0 "$tmp/lintian.log" lintian --fail-on error "$deb" "$devdeb"
sed 's/^/    /' "$tmp/lintian.log"

x=$tmp/x
xdev=$tmp/xdev
dpkg-deb -x "$deb" "$x" && dpkg-deb -x "$devdeb" "$xdev"
dpkg-deb -f "$deb" >"$tmp/control"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/files"
dpkg-deb -c "$devdeb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/devfiles"
for p in edgeprov edgeprovd edgeprov-agent; do check "package: /usr/bin/$p" grep -qx "/usr/bin/$p" "$tmp/files"; done
for p in storage-sqlite auth-local actions-core boot-https os-ubuntu; do
  check "package: plugin $p in /usr/lib/edgeprov/plugins" grep -qx "/usr/lib/edgeprov/plugins/$p.so" "$tmp/files"
done
check "package: the unit" grep -qx /usr/lib/systemd/system/edgeprovd.service "$tmp/files"
check "package: man page edgeprov(1)" grep -qx /usr/share/man/man1/edgeprov.1.gz "$tmp/files"
check "package: man page edgeprovd(8)" grep -qx /usr/share/man/man8/edgeprovd.8.gz "$tmp/files"
check "package: bash completion" grep -qx /usr/share/bash-completion/completions/edgeprov "$tmp/files"
check "lintian: the programs have man pages" lacks "$tmp/lintian.log" "no-manual-page usr/bin/edgeprov "
check "package: the system user (sysusers.d)" grep -qx /usr/lib/sysusers.d/edgeprov.conf "$tmp/files"
check "package: the site config" grep -qx /etc/edgeprov/edgeprov.conf "$tmp/files"
check "package: the site config is a conffile" contains <(dpkg-deb -I "$deb" conffiles) /etc/edgeprov/edgeprov.conf
check "package: no SDK header" absent -x '/usr/include/.*' "$tmp/files"
check "package: dependencies from dpkg-shlibdeps" grep -qE '^Depends: .*libc6 \(>= [0-9.]+\).*libconfig9' "$tmp/control"
dpkg-deb -e "$deb" "$tmp/ctl"
for m in postinst prerm postrm; do check "package: $m, executable" test -x "$tmp/ctl/$m"; done
for h in edgeprov/plugin.h edgeprov-kit/os_image.h; do check "dev: /usr/include/$h" grep -qx "/usr/include/$h" "$tmp/devfiles"; done
check "dev: the kit" grep -qE '^/usr/lib/([^/]+/)?libedgeprov-kit\.a$' "$tmp/devfiles"
check "dev: the CMake package" grep -qE '^/usr/lib/([^/]+/)?cmake/edgeprov-sdk/edgeprov-sdk-config\.cmake$' "$tmp/devfiles"
pc=$(find "$xdev/usr/lib" -name edgeprov-sdk.pc | head -1)
check "dev: pkg-config file" test -f "$pc"
check "dev: its plugindir is where the package's plugins are" test \
  "$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=plugindir edgeprov-sdk | xargs realpath -m)" = \
  "$(realpath -m "$xdev/usr/lib/edgeprov/plugins")"

# ---- the unit -----------------------------------------------------------------------------------
unit=$x/usr/lib/systemd/system/edgeprovd.service
# verify looks for ExecStart's program on this machine: point it at the unpacked one.
sed "s|=/usr/bin/edgeprovd|=$x/usr/bin/edgeprovd|" "$unit" >"$tmp/edgeprovd.service"
# verify's exit status ignores unknown keys (it only warns): any output fails.
check "systemd-analyze verify: accepted, no warning" run_status 0 "$tmp/verify.log" \
  systemd-analyze verify "$tmp/edgeprovd.service"
check "  (nothing said)" test ! -s "$tmp/verify.log"
mkdir -p "$tmp/typo" && sed 's/ProtectHome=yes/ProtectHme=yes/' "$tmp/edgeprovd.service" >"$tmp/typo/edgeprovd.service"
systemd-analyze verify "$tmp/typo/edgeprovd.service" >"$tmp/typo.log" 2>&1
check "  (and a misspelt key is said)" contains "$tmp/typo.log" "Unknown key 'ProtectHme'"
for k in "ExecReload=/bin/kill -HUP \$MAINPID" User=edgeprov StateDirectory=edgeprov RuntimeDirectory=edgeprov ProtectSystem=strict NoNewPrivileges=yes \
    PrivateTmp=yes "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" MemoryDenyWriteExecute=yes; do
  check "unit: $k" grep -qx "$k" "$unit"
done
check "unit: LimitNOFILE with a hard limit the daemon raises to" grep -qE '^LimitNOFILE=[0-9]+:[0-9]+$' "$unit"
if ldd "$x/usr/bin/edgeprovd" | grep -q libsystemd; then
  check "unit: Type=notify (edgeprovd links libsystemd)" grep -qx Type=notify "$unit"
  # READY=1 comes once every listener is up: the management socket exists when it arrives.
  sb=$(free_port) hp=$(free_port)
  cat >"$tmp/notify.conf" <<CONF
listen = { management = "unix:$tmp/run/edgeprov.sock"; grpc = "127.0.0.1:$sb"; https = "127.0.0.1:$hp"; };
paths = { data = "$tmp/data"; };
CONF
  python3 - "$tmp/notify" "$tmp/run/edgeprov.sock" >"$tmp/notified" 2>&1 <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
msg = s.recv(4096).decode()
print(msg.strip(), "socket=" + ("up" if os.path.exists(sys.argv[2]) else "missing"))
PY
  notifier=$!
  pids+=("$notifier")
  for _ in $(seq 50); do [ -S "$tmp/notify" ] && break; sleep 0.1; done
  NOTIFY_SOCKET=$tmp/notify "$x/usr/bin/edgeprovd" --config "$tmp/notify.conf" >"$tmp/notify-daemon.log" 2>&1 &
  daemon=$!
  wait "$notifier"
  check "edgeprovd: READY=1 to systemd, with its listeners up" contains "$tmp/notified" "READY=1 socket=up"
  kill "$daemon" && wait "$daemon"
  check "  and it stops on SIGTERM" contains "$tmp/notify-daemon.log" 'msg="stopped"'
  daemon=
else
  check "unit: Type=simple (edgeprovd without libsystemd)" grep -qx Type=simple "$unit"
fi

# ---- apt-get install into a fresh Debian root ---------------------------------------------------
codename=$( (. /etc/os-release && echo "${VERSION_CODENAME:-}") 2>/dev/null)
. "$src/scripts/apt-mirror.sh"
mirror=${EDGEPROV_E2E_MIRROR:-$(ep_apt_mirror "$codename")}
check "this machine's apt source for '$codename' (or EDGEPROV_E2E_MIRROR)" test -n "$codename" -a -n "$mirror"

# make_root DIR: debootstrap minbase of the machine's suite with systemd (to boot it in a
# container below), its package lists fetched.
make_root() {
  local dir=$1
  setsid debootstrap --variant=minbase --arch="$(dpkg --print-architecture)" --components=main \
    --include=systemd,systemd-sysv,dbus \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$codename" "$dir" "${mirror%/}" >"$tmp/debootstrap.log" 2>&1 &
  bootstrap_pid=$!
  wait "$bootstrap_pid" || { bootstrap_pid=""; tail -n 20 "$tmp/debootstrap.log"; return 1; }
  bootstrap_pid=""
  chroot "$dir" apt-get update -qq >"$tmp/apt-update.log" 2>&1 || { cat "$tmp/apt-update.log"; return 1; }
  chroot "$dir" apt-get clean
}
key=$( (declare -f make_root; echo "$codename ${mirror%/}") | sha256sum | cut -c1-16)
tarball=$cache_dir/package-root-$codename-$key.tar.zst
if [ ! -s "$tarball" ]; then
  echo "---- debootstrap $codename (minbase) into the cache: $tarball"
  mkdir -p "$cache_dir" "$tmp/bootstrap"
  if make_root "$tmp/bootstrap"; then
    part=$cache_dir/.tmp-package-$$-root.tar.zst
    tar -C "$tmp/bootstrap" --numeric-owner -cf - . | zstd -q -T0 -o "$part" && mv "$part" "$tarball" &&
      find "$cache_dir" -maxdepth 1 -name 'package-root-*.tar.zst' ! -name "$(basename "$tarball")" -delete
  fi
  rm -rf --one-file-system "$tmp/bootstrap"
fi
check "the cached Debian root" test -s "$tarball"
mkdir -p "$root"
check "unpack the root" run_status 0 "$tmp/out" sh -c "zstd -dc '$tarball' | tar -C '$root' --numeric-owner -xf -"
# Downloaded dependencies are kept next to the tarball for the next run.
debs=$cache_dir/package-apt-archives
mkdir -p "$debs"
cp "$debs"/*.deb "$root/var/cache/apt/archives/" 2>/dev/null
cp "$deb" "$root/tmp/"
inroot() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
install_deb() { inroot apt-get install -y --no-install-recommends "/tmp/$(basename "$deb")"; }
# Stale package lists (the archive moved on since the root was cached) are refreshed once.
if ! install_deb >"$tmp/apt.log" 2>&1; then
  inroot apt-get update -qq >>"$tmp/apt.log" 2>&1
  install_deb >>"$tmp/apt.log" 2>&1
fi
inroot dpkg-query -W -f='${Status}' edgeprov >"$tmp/status" 2>&1
check "apt-get install ./edgeprov_*.deb in the root" contains "$tmp/status" "install ok installed"
grep -q "install ok installed" "$tmp/status" || tail -n 30 "$tmp/apt.log" | sed 's/^/    /'
# this run's downloads replace the last run's (no old versions pile up)
if ls "$root"/var/cache/apt/archives/*.deb >/dev/null 2>&1; then
  rm -f "$debs"/*.deb
  cp "$root"/var/cache/apt/archives/*.deb "$debs/"
  rm -f "$debs/$(basename "$deb")"
fi

check "chroot: edgeprov --version" run_status 0 "$tmp/version" inroot edgeprov --version
check "  names the version" contains "$tmp/version" "edgeprov $(dpkg-deb -f "$deb" Version)"
check "chroot: edgeprov plugins list" run_status 0 "$tmp/plugins" inroot edgeprov plugins list
n=$(grep -c ' /usr/lib/edgeprov/plugins/[a-z0-9-]*\.so$' "$tmp/plugins")
check "  lists every packaged plugin from /usr/lib/edgeprov/plugins" test "$n" -eq \
  "$(grep -c '^/usr/lib/edgeprov/plugins/.*\.so$' "$tmp/files")"
for p in storage-sqlite auth-local actions-core boot-https; do
  check "  $p active" grep -qE "^$p +[0-9.]+ +active .* /usr/lib/edgeprov/plugins/$p\.so$" "$tmp/plugins"
done
check "  none refused (each either active or waiting for its settings)" absent -E 'refused|error' "$tmp/plugins"
check "chroot: edgeprovd --check --config /etc/edgeprov/edgeprov.conf" run_status 0 "$tmp/check" \
  inroot edgeprovd --check --config /etc/edgeprov/edgeprov.conf
check "  started the plugins from the installed paths" contains "$tmp/check" \
  "plugin storage-sqlite $(dpkg-deb -f "$deb" Version) active (/usr/lib/edgeprov/plugins/storage-sqlite.so)"
check "postinst: the edgeprov system user" run_status 0 "$tmp/out" inroot getent passwd edgeprov
check "postinst: /etc/edgeprov is root:edgeprov 0750" test "$(inroot stat -c '%U:%G %a' /etc/edgeprov)" = "root:edgeprov 750"
check "postinst: no service started (no systemd in a chroot)" test ! -e "$root/run/edgeprov/edgeprov.sock"
check "postinst: the unit enabled" test -L "$root/etc/systemd/system/multi-user.target.wants/edgeprovd.service"

# ---- the unit under systemd: the root booted in a container -------------------------------------
# A probe unit ordered after edgeprovd (so after its READY=1) records what the service looks like,
# stops it and powers the container off. Its own network namespace: no port of this machine is taken.
cat >"$root/etc/systemd/system/edgeprov-probe.service" <<'UNIT'
[Unit]
Description=edgeprov package test probe
After=edgeprovd.service
Wants=edgeprovd.service
[Service]
Type=oneshot
ExecStart=/bin/sh /usr/local/sbin/edgeprov-probe
ExecStopPost=/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/usr/local/sbin"
cat >"$root/usr/local/sbin/edgeprov-probe" <<'PROBE'
exec >/probe.out 2>&1
echo "active=$(systemctl is-active edgeprovd)"
systemctl show -p Type -p NRestarts edgeprovd | sed 's/^/unit./'
pid=$(systemctl show -p MainPID --value edgeprovd)
echo "user=$(stat -c %U /proc/$pid)"
grep -E '^(NoNewPrivs|Seccomp):' /proc/$pid/status | tr -d ' \t' | sed 's/:/=/'
awk '/^Max open files/ { print "nofile=" $4 ":" $5 }' /proc/$pid/limits
echo "run=$(stat -c '%U:%G %a' /run/edgeprov) sock=$(stat -c '%U:%G %a' /run/edgeprov/edgeprov.sock)"
echo "data=$(stat -c '%U:%G %a' /var/lib/edgeprov)"
edgeprov host list >/dev/null 2>&1; echo "cli=$?"
systemctl stop edgeprovd
systemctl show -p Result -p ActiveState edgeprovd | sed 's/^/stopped./'
journalctl -u edgeprovd --no-pager -o cat >/probe.journal
PROBE
ln -sf /etc/systemd/system/edgeprov-probe.service "$root/etc/systemd/system/multi-user.target.wants/edgeprov-probe.service"
: >"$root/etc/machine-id"
check "systemd-nspawn boots the root" run_status 0 "$tmp/nspawn.log" timeout 180 systemd-nspawn -q -D "$root" -b \
  --register=no --keep-unit --private-network --machine="edgeprov-pkg-$$"
probe=$root/probe.out
check "  edgeprovd.service was active" contains "$probe" "active=active"
check "  of the unit's Type ($(sed -n 's/^Type=//p' "$unit"))" contains "$probe" "unit.Type=$(sed -n 's/^Type=//p' "$unit")"
check "  started once" contains "$probe" "unit.NRestarts=0"
check "  runs as the edgeprov user" contains "$probe" "user=edgeprov"
check "  with no new privileges" contains "$probe" "NoNewPrivs=1"
check "  under a seccomp filter" contains "$probe" "Seccomp=2"
check "  soft descriptor limit raised to the hard one" \
  test -n "$(awk -F'[=:]' '/^nofile=/ && $2 == $3 && $2 > 1024' "$probe")"
check "  management socket 0660 in a 0750 /run/edgeprov" contains "$probe" \
  "run=edgeprov:edgeprov 750 sock=edgeprov:edgeprov 660"
check "  its state in /var/lib/edgeprov" contains "$probe" "data=edgeprov:edgeprov 750"
check "  the CLI reaches it through the socket" contains "$probe" "cli=0"
check "  it stops cleanly" contains "$probe" "stopped.Result=success"
check "  and stays stopped" contains "$probe" "stopped.ActiveState=inactive"
check "  its log: plugins from the installed paths" contains "$root/probe.journal" \
  "plugin storage-sqlite $(dpkg-deb -f "$deb" Version) active (/usr/lib/edgeprov/plugins/storage-sqlite.so)"
check "  its log: ready" contains "$root/probe.journal" 'msg="ready '
rm -f "$root/etc/systemd/system/multi-user.target.wants/edgeprov-probe.service"
check "apt-get purge edgeprov" run_status 0 "$tmp/out" inroot apt-get purge -y edgeprov
check "  removes the statoverride" test -z "$(inroot dpkg-statoverride --list /etc/edgeprov)"
check "  and the config" test ! -e "$root/etc/edgeprov/edgeprov.conf"

finish
