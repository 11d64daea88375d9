#!/usr/bin/env bash
# The Debian package end to end: scripts/package.sh builds rvs_*.deb (cargo-deb); its contents,
# conffile and dependencies are checked; `dpkg -i` installs it on this machine; the installed
# rvsd accepts the shipped /etc/rvs/rvsd.toml with the unit's own ExecStart command line plus
# --check; `man rvsd` and `man rvsadm` render; systemd-analyze verifies rvsd.service (skipped
# cleanly where systemd-analyze is missing); the unit's stop timeout outlasts the drain grace; the
# installed rvsd runs the shipped config (null ports), rvsadm lists its service and adds one, and
# SIGTERM drains it out with status 0; a reinstall (an upgrade's path) keeps an edited conffile;
# `dpkg --purge` leaves nothing. The EXIT trap purges the package again, so the machine is left
# as it was, also on failure or Ctrl-C. A package that was installed before this suite started is
# not touched: the suite fails instead.
set -uo pipefail
. "$(dirname "$0")/../lib/topo.sh"
PKG=rvs
CONF=/etc/rvs/rvsd.toml
UNIT=/usr/lib/systemd/system/rvsd.service
installed_by_us=0
pkg_pid=

is_installed() { dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok installed'; }
cleanup() {
    local rc=$?
    set +e
    if [ -n "$pkg_pid" ]; then kill -9 "$pkg_pid" 2>/dev/null; wait "$pkg_pid" 2>/dev/null; fi
    if [ "$installed_by_us" -eq 1 ] && dpkg-query -W "$PKG" >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >/dev/null 2>&1 || echo "70-package: dpkg --purge $PKG failed" >&2
    fi
    rm -rf "$RVS_TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then echo "70-package: needs root (dpkg -i)" >&2; exit 1; fi
if dpkg-query -W "$PKG" >/dev/null 2>&1; then
    fail "package $PKG is already on this machine ($(dpkg-query -W -f='${Version} ${Status}' "$PKG")); not touching it"
    finish; exit 1
fi

echo "== build: scripts/package.sh (release build, man pages, cargo deb)"
if ! deb=$(bash "$RVS_ROOT/scripts/package.sh" 2> "$RVS_TMP/package.err" | tail -1) || [ ! -f "$deb" ]; then
    cat "$RVS_TMP/package.err" >&2
    fail "scripts/package.sh built no package"; finish; exit 1
fi
case $deb in /*) ;; *) deb="$RVS_ROOT/$deb" ;; esac
ok "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
check "named rvs_<version>_<arch>.deb" bash -c '[[ "$(basename "$0")" =~ ^rvs_[0-9][^_]*_[a-z0-9]+\.deb$ ]]' "$deb"

echo "== contents and control fields"
dpkg-deb -c "$deb" | awk '{print $NF}' > "$RVS_TMP/files"
for f in ./usr/bin/rvsd ./usr/bin/rvsadm ./etc/rvs/rvsd.toml ./usr/lib/systemd/system/rvsd.service \
    ./usr/share/man/man8/rvsd.8.gz ./usr/share/man/man8/rvsadm.8.gz ./usr/share/doc/rvs/operations.md; do
    check "ships $f" grep -qx "$f" "$RVS_TMP/files"
done
check "/etc/rvs/rvsd.toml is a conffile" bash -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/rvs/rvsd.toml"
depends=$(dpkg-deb -f "$deb" Depends)
check "Depends (dpkg-shlibdeps) names the DPDK libraries: ${depends:0:80}..." grep -q 'librte-eal' <<<"$depends"
# The release profile keeps line tables (debug = 1); scripts/package.sh has cargo-deb strip them.
check "the binaries are stripped (no .debug_info)" bash -c "dpkg-deb --fsys-tarfile '$deb' | tar -xO ./usr/bin/rvsd > '$RVS_TMP/rvsd.bin' && [ -s '$RVS_TMP/rvsd.bin' ] && ! readelf -S '$RVS_TMP/rvsd.bin' | grep -q '\\.debug_info'"

echo "== dpkg -i"
installed_by_us=1
if ! DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" > "$RVS_TMP/dpkg.out" 2>&1; then
    cat "$RVS_TMP/dpkg.out"; fail "dpkg -i $(basename "$deb")"; finish; exit 1
fi
check "dpkg -i: $PKG installed" is_installed
check "rvsd and rvsadm on the PATH in /usr/bin" [ "$(command -v rvsd):$(command -v rvsadm)" = /usr/bin/rvsd:/usr/bin/rvsadm ]
check "the service is neither enabled nor started on install" bash -c "! pgrep -f '^/usr/bin/rvsd( |$)' >/dev/null && [ ! -e /etc/systemd/system/multi-user.target.wants/rvsd.service ]"

echo "== the shipped configuration"
out=$(/usr/bin/rvsd --check -c "$CONF" 2>&1); rc=$?
check "rvsd --check -c $CONF: $out" [ "$rc:$out" = "0:config ok" ]
exec_start=$(sed -n 's/^ExecStart=//p' "$UNIT")
check "ExecStart is rvsd's real command line ($exec_start)" [ "$exec_start" = "/usr/bin/rvsd -c $CONF" ]
# The unit's own command line, with --check: what systemd would run parses and passes.
read -r -a argv <<<"$exec_start"
out=$("${argv[@]}" --check 2>&1); rc=$?
check "the unit's ExecStart plus --check passes: $out" [ "$rc:$out" = "0:config ok" ]
check "KillSignal=SIGTERM (the graceful drain)" grep -qx 'KillSignal=SIGTERM' "$UNIT"
check "Restart=on-failure" grep -qx 'Restart=on-failure' "$UNIT"
grace=$(sed -n 's/^drain_grace_s *= *\([0-9]*\).*/\1/p' "$CONF"); grace=${grace:-30}
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\?$/\1/p' "$UNIT")
check "TimeoutStopSec (${stop_s:-none} s) outlasts conn.drain_grace_s ($grace s)" [ "${stop_s:-0}" -gt "$grace" ]
check "the unit documents CPU isolation and hugepages" bash -c "grep -q isolcpus '$UNIT' && grep -q nohz_full '$UNIT' && grep -q CPUAffinity '$UNIT' && grep -qi hugepages '$UNIT'"

echo "== systemd-analyze verify"
if command -v systemd-analyze >/dev/null 2>&1; then
    # Only rvsd.service's own lines: on a machine without systemd as PID 1 the tool also comments
    # on units it cannot reach, which are not this package's.
    systemd-analyze verify "$UNIT" > "$RVS_TMP/verify" 2>&1; vrc=$?
    sed 's/^/    /' "$RVS_TMP/verify"
    check "systemd-analyze verify rvsd.service (status $vrc, no complaint about rvsd.service)" \
        bash -c "[ $vrc -eq 0 ] && ! grep -q 'rvsd.service' '$RVS_TMP/verify'"
else
    echo "  skip systemd-analyze verify: systemd-analyze is not installed"
fi

echo "== man pages"
export MANPAGER=cat MANWIDTH=100
man rvsadm > "$RVS_TMP/man-rvsadm" 2> "$RVS_TMP/man.err"; mrc=$?
check "man rvsadm renders (status $mrc, $(wc -l < "$RVS_TMP/man-rvsadm") lines)" [ $mrc -eq 0 ]
check "man rvsadm: NAME and the synopsis" bash -c "grep -q 'rvsadm - ipvsadm for rvs' '$RVS_TMP/man-rvsadm' && grep -q 'rvsadm --set tcp tcpfin udp' '$RVS_TMP/man-rvsadm'"
check "man rvsadm: FULLNAT options (-b, --add-laddr, -z)" bash -c "grep -q -- '--add-laddr' '$RVS_TMP/man-rvsadm' && grep -q -- '-b, --fullnat' '$RVS_TMP/man-rvsadm' && grep -q -- '--laddr' '$RVS_TMP/man-rvsadm'"
man rvsd > "$RVS_TMP/man-rvsd" 2>> "$RVS_TMP/man.err"; mrc=$?
check "man rvsd renders (status $mrc)" [ $mrc -eq 0 ]
check "man rvsd: --check, --config and the SIGTERM drain" bash -c "grep -q -- '--check' '$RVS_TMP/man-rvsd' && grep -q -- '--config' '$RVS_TMP/man-rvsd' && grep -q 'SIGTERM drains' '$RVS_TMP/man-rvsd'"
check "man printed no warning" [ ! -s "$RVS_TMP/man.err" ]

echo "== the installed rvsd runs the shipped configuration; rvsadm; SIGTERM drains it out"
sock="$RVS_TMP/rvsd.sock"
# The shipped config as it is, but on its own socket (not /run/rvs, which a real service uses).
/usr/bin/rvsd -c "$CONF" --socket "$sock" > "$RVS_TMP/rvsd.out" 2> "$RVS_TMP/rvsd.err" &
pkg_pid=$!
for _ in $(seq 1 100); do
    [ -S "$sock" ] && /usr/bin/rvsadm --socket "$sock" -Ln >/dev/null 2>&1 && break
    kill -0 "$pkg_pid" 2>/dev/null || break
    sleep 0.1
done
/usr/bin/rvsadm --socket "$sock" -Ln > "$RVS_TMP/ln" 2>&1
sed 's/^/    /' "$RVS_TMP/ln"
if ! check "rvsadm -Ln lists the shipped service" grep -qE '^TCP  192\.0\.2\.100:80 +wrr' "$RVS_TMP/ln"; then
    tail -5 "$RVS_TMP/rvsd.err"
fi
check "rvsadm -Ln lists its two real servers" [ "$(grep -c 'FullNat' "$RVS_TMP/ln")" -eq 2 ]
check "rvsadm -A -t 192.0.2.101:443 -s rr" /usr/bin/rvsadm --socket "$sock" -A -t 192.0.2.101:443 -s rr
check "the new service is listed" bash -c "/usr/bin/rvsadm --socket '$sock' -Ln | grep -qE '^TCP  192\.0\.2\.101:443 +rr'"
t0=$(date +%s%N)
kill -TERM "$pkg_pid" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$pkg_pid" 2>/dev/null || break; sleep 0.05; done
wait "$pkg_pid"; rc=$?; pkg_pid=
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "SIGTERM: drained (no connection) and exited with status 0 in $ms ms" [ $rc -eq 0 -a "$ms" -lt 5000 ]
check "rvsd logged the drain" grep -q 'SIGTERM: draining' "$RVS_TMP/rvsd.err"

echo "== upgrade path: a reinstall keeps the operator's conffile"
echo "# edited by the operator ($$)" >> "$CONF"
DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold "$deb" > "$RVS_TMP/dpkg2.out" 2>&1; rc=$?
check "dpkg -i again (status $rc)" [ $rc -eq 0 ]
check "the edited /etc/rvs/rvsd.toml is kept" grep -q "edited by the operator ($$)" "$CONF"

echo "== dpkg --purge"
DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" > "$RVS_TMP/purge.out" 2>&1; rc=$?
check "dpkg --purge $PKG (status $rc)" [ $rc -eq 0 ]
check "nothing left: binaries, unit, config, man pages" bash -c "[ ! -e /usr/bin/rvsd ] && [ ! -e /usr/bin/rvsadm ] && [ ! -e '$UNIT' ] && [ ! -e /etc/rvs ] && [ ! -e /usr/share/man/man8/rvsadm.8.gz ]"
check "dpkg no longer knows $PKG" bash -c "! dpkg-query -W '$PKG' >/dev/null 2>&1"
finish
