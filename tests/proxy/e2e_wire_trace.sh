#!/bin/bash
# The driver's wire view in a trace file (DEVICENAME option trace=PATH):
# power, ATR, APDUs and markers with timestamps, read back with sqlite3.
# Skips while the trace writer (branch trace) is not in this build.
# Argument: the driver's presence option (default event; meson runs poll too).
. "$BED_LIB"
bed_require pcscd sqlite3
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
trace=$(mktemp -u /tmp/pcsctap-wire.XXXXXX.db)
bed_start --driver pcsctap --driver-opts "markers=on:trace=$trace:presence=${1:-event}"
"$PROXY_TESTS/e2e_client.py" protocol T1 >/dev/null || bed_fail "client"
bed_stop
[ -f "$trace" ] || bed_fail "no trace file $trace"
kinds=$(sqlite3 "$trace" "SELECT kind FROM wire ORDER BY t_ns" 2>&1) || bed_fail "cannot read the wire table: $kinds"
rm -f "$trace" "$trace"-*
echo "$kinds" | tr '\n' ' '
for k in 1 4 5 512; do	# POWER_ON, GET_ATR, MARKER, CARD_CONNECTED
	grep -qx "$k" <<<"$kinds" || bed_fail "wire kind $k missing"
done
echo "ok - wire trace"
