#!/bin/bash
# demo.sh — the built-in demo: an isolated pcscd with the pcsctap reader
# driver (session markers on) and the reference virtual card, an unmodified
# client (opensc-tool) run under `pcsctap run`, then what the card saw and
# what the trace holds: `pcsctap sessions`, `pcsctap show`, and a pcapng
# export checked with tshark.  Installs and builds first (tools/setup.sh).
# Touches no system pcscd; leaves no process, mount or socket behind.  The
# traces and the pcapng stay in build/demo/ for a look with sqlite3 or
# Wireshark.
set -eu

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PCSCTAP_BUILD:-$top/build}
bash "$top/tools/setup.sh"

pcsctap=$build/tools/pcsctap
export PCSCTAP=$pcsctap BED_WAIT=$build/tests/bed/bedwait PCSCTAP_DRIVER=$build/proxy/libifdpcsctap.so
out=$build/demo
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d /tmp/pcsctap-demo.XXXXXX)
trap '"$top/tests/bed/stack.sh" stop "$work/stack"; rm -rf "$work"' EXIT

step() {
	printf '\n\033[1m== %s\033[0m\n' "$*"
}

step "an isolated pcscd, the pcsctap reader (markers=on) and the pcsctap virtual card"
"$top/tests/bed/stack.sh" start "$work/stack" --owner $$ --name "pcsctap demo" \
	--driver pcsctap --driver-opts "markers=on:trace=$out/wire.trace"
set -a
. "$work/stack/env"
set +a
echo "reader: $BED_READER (pcscd socket $PCSCLITE_CSOCK_NAME)"

step "pcsctap run -- opensc-tool -a -s 00A4040000 -s <VERIFY with a PIN>   (an unmodified client)"
"$pcsctap" run -o "$out/app.trace" -- \
	opensc-tool -r "$BED_READER" -a -s 00A4040000 -s 00200001083132333400000000

step "what the virtual card received (pcsctap card): markers tell it each session and transaction"
"$top/tests/bed/stack.sh" stop "$work/stack"
grep -v 'GET_ATR' "$BED_DIR/card.out" | sed -E 's/^(\[[^]]*\] MARKER +)[0-9A-F]+ +/\1/'

step "pcsctap sessions"
"$pcsctap" sessions "$out/app.trace"

last=$("$pcsctap" sessions --json "$out/app.trace" | tail -n 1 |
	/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
step "pcsctap show --session $last   (the VERIFY's PIN is redacted in the trace)"
"$pcsctap" show --color never --session "$last" "$out/app.trace"

step "pcsctap export -o demo.pcapng (the client's calls merged with the driver's wire view)"
"$pcsctap" export -o "$out/demo.pcapng" "$out/app.trace" "$out/wire.trace"
tshark -r "$out/demo.pcapng" -2 -Y iso7816 2>/dev/null | head -n 12

echo
echo "Files: $out/app.trace and $out/wire.trace (SQLite: try sqlite3 $out/app.trace 'select * from sessions'),"
echo "       $out/demo.pcapng (Wireshark)."
