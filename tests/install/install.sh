#!/bin/bash
# install.sh BEDWAIT — pcsctap as installed, with no build tree in reach.
#
# Configures a scratch build with --werror -Dtests=disabled (what CI and
# packagers build), builds it, installs it with `meson install --destdir`,
# then:
#  - checks the install layout: the driver where pcscd's serial drivers
#    are (pkg-config usbdropdir + /serial), the shim in <libdir>/pcsctap,
#    the reader.conf.d example inert (every line commented) and naming the
#    installed driver;
#  - with the build tree still there, the installed pcsctap injects the
#    installed shim, not the build tree's;
#  - with the build tree moved away, the installed pcsctap traces
#    opensc-tool on a test-bed stack whose reader.conf loads the installed
#    driver (markers on), the installed `pcsctap card` being the card: the
#    card gets the client's markers and the trace holds its calls.
# The DESTDIR copy works unchanged because pcsctap looks for its shim
# relative to its own directory first (docs/shim.md).  BEDWAIT is the
# test bed's readiness probe from a test build.  Exit 0 passed, 77
# skipped (no root, pcscd or opensc-tool; a failure under CI=true),
# anything else failed.
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export BED_STACK=$top/tests/bed/stack.sh BED_LIB=$top/tests/bed/lib.sh BED_WAIT=$1
. "$BED_LIB"
bed_require pcscd opensc-tool sqlite3 meson ninja pkg-config
[ -x "$BED_WAIT" ] || bed_fail "BEDWAIT '$BED_WAIT' is not an executable"

scratch=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-install.XXXXXX")
# bed_stop first: the stack's processes run programs from the scratch dir.
trap 'bed_stop; rm -rf "$scratch"' EXIT
build=$scratch/build root=$scratch/root
log=$scratch/log

meson setup "$build" "$top" --werror -Dtests=disabled >"$log" 2>&1 &&
	ninja -C "$build" >>"$log" 2>&1 &&
	meson install -C "$build" --destdir "$root" >>"$log" 2>&1 ||
	bed_fail "setup, build or install failed: $(tail -n 20 "$log")"
echo "ok - -Dtests=disabled configures, builds and installs"

# Where meson put things, from its own record of the install.
prefix=$(meson introspect --buildoptions "$build" |
	/usr/bin/python3 -c 'import json, sys; print({o["name"]: o["value"] for o in json.load(sys.stdin)}["prefix"])')
installed() {
	find "$root" -name "$1" -type f | head -n 1
}
pcsctap=$root$prefix/bin/pcsctap
shim=$(installed libpcsctap.so)
driver=$(installed libifdpcsctap.so)
conf=$(find "$root" -path '*/reader.conf.d/pcsctap')
driver_dir=$(pkg-config --variable=usbdropdir libpcsclite)/serial
[ -x "$pcsctap" ] || bed_fail "no pcsctap in $root$prefix/bin"
[ "$driver" = "$root$driver_dir/libifdpcsctap.so" ] ||
	bed_fail "the driver is at '${driver#"$root"}', not in pcsc-lite's $driver_dir"
case $shim in
"$root$prefix"/lib*/pcsctap/libpcsctap.so) ;;
*) bed_fail "the shim is at '${shim#"$root"}', not in <libdir>/pcsctap under $prefix" ;;
esac
[ -n "$conf" ] || bed_fail "no reader.conf.d/pcsctap installed"
grep -v '^#' "$conf" | grep -q . && bed_fail "the reader.conf.d example has active lines: $(grep -v '^#' "$conf")"
grep -qx "#LIBPATH *$driver_dir/libifdpcsctap.so" "$conf" ||
	bed_fail "the reader.conf.d example does not name the installed driver: $(grep LIBPATH "$conf")"
echo "ok - layout: ${driver#"$root"}, ${shim#"$root"}, ${conf#"$root"} (inert)"

# The build tree is there and readable, and still not used.
got=$(env -u PCSCTAP_SHIM "$pcsctap" run -o "$scratch/probe.trace" -- /bin/sh -c 'printf "%s" "$LD_PRELOAD"' 2>"$log") ||
	bed_fail "pcsctap run failed: $(cat "$log")"
[ "$got" = "$(realpath "$shim")" ] || bed_fail "the installed pcsctap injected '$got', not the installed $shim"
echo "ok - the installed pcsctap injects the installed shim while the build tree exists"

mv "$build" "$build.away"
[ -e "$build" ] && bed_fail "the build tree is still at $build"

PCSCTAP=$pcsctap bed_start --driver pcsctap --driver-path "$driver" --driver-opts markers=on --card test
grep -qx "LIBPATH $driver" "$BED_TMP/stack/reader.conf" || bed_fail "the stack does not load the installed driver"
trace=$scratch/opensc.trace
mark=$(bed_mark)
out=$(env -u PCSCTAP_SHIM "$pcsctap" run -o "$trace" -- opensc-tool -r "$BED_READER" -s 00A4040000 2>&1) ||
	bed_fail "opensc-tool under the installed pcsctap failed: $out"
grep -q 'SW1=0x90, SW2=0x00' <<<"$out" || bed_fail "no 9000: $out"
transmits=$(sqlite3 "$trace" "SELECT count(*) FROM calls WHERE fn = (SELECT id FROM functions WHERE name = 'SCardTransmit')")
[ "${transmits:-0}" -ge 1 ] || bed_fail "the trace holds no SCardTransmit: $(sqlite3 "$trace" 'SELECT count(*) FROM calls') calls"
# A disconnect marker has no answer: it may reach the log just after the client exits.
bed_wait_kind MARKER 50 "$mark" || bed_fail "the card got no marker: $(bed_kinds "$mark" | tr '\n' ' ')"
bed_lines APDU "$mark" | cut -f1,2 | grep -qx $'00A4040000\t9000' || bed_fail "the card did not get the SELECT"
"$pcsctap" sessions "$trace" >"$log" 2>&1 || bed_fail "the installed pcsctap sessions failed: $(cat "$log")"
echo "ok - with the build tree moved away: opensc-tool traced ($transmits transmits), markers at the card"
