#!/bin/bash
# markers_real.sh CLIENT — session markers for a real, unmodified client
# run under `pcsctap run` on an isolated stack (pcsctap driver, markers on,
# the test card logging every message).  Asserts the exact sequence of
# shim markers the card logged (pid, handle and times normalised, the
# driver's own protocol and occupancy markers left out; process names kept), that each
# client numbers its markers from 1 and carries the traced process's pid
# and name, and that the trace's markers table holds the same bodies with
# rv 0 (rt_check.py).  CLIENT: opensc-tool, pyscard, java, pcsc_scan.
# Env: PCSCTAP, BED_LIB (+ bed), RT_TESTS, TRACE_SQL.
. "$BED_LIB"
client=$1
case $client in
opensc-tool|pcsc_scan|java) bed_require pcscd "$client" ;;
pyscard) bed_require pcscd ;;
*) bed_fail "unknown client $client" ;;
esac
if [ "$client" = pyscard ]; then
	/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
fi
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"
bed_start --driver pcsctap --driver-opts markers=on --card test
trace=$BED_TMP/trace
out=$BED_TMP/out

# run COMMAND...: the client under pcsctap run; its output in $out.
run() {
	"$PCSCTAP" run -o "$trace" -- "$@" > "$out" 2>&1 || bed_fail "$client failed: $(cat "$out")"
}

# Card log lines are written before the card answers, and a marker has no
# answer: a disconnect marker may be logged just after the client exits.
# Wait (bounded) until the trace's delivered markers are all in the log.
wait_markers() {
	local want i
	want=$("$TRACE_SQL" "$trace" "SELECT count(*) FROM markers WHERE rv = 0")
	for i in $(seq 50); do
		[ "$(bed_lines MARKER "$1" | cut -f3 | grep -Evc '^(protocol|reader-[a-z-]+) ')" -ge "$want" ] && return 0
		sleep 0.1
	done
}

# expect_markers MARK UNDELIVERED EXPECTED
expect_markers() {
	local got
	wait_markers "$1"
	got=$("$RT_TESTS/rt_check.py" markers "$BED_CARD_LOG" "$1" "$trace" "$2") || bed_fail "$client: markers inconsistent"
	[ "$got" = "$3" ] || bed_fail "$client: the card saw
$got
expected
$3"
	echo "ok - $client: $(printf "%s" "$got" | grep -c .) markers in the expected order"
}

mark=$(bed_mark)
case $client in
opensc-tool)
	run opensc-tool -r "$BED_READER" -s 00A4040000
	grep -q 'SW1=0x90, SW2=0x00' "$out" || bed_fail "no 9000: $(cat "$out")"
	# opensc-tool: a first look at slot 0 (connect, disconnect), a DIRECT
	# connect to the empty slot 1 (its two markers fail there, no card:
	# SCARD_E_NOT_TRANSACTED, never logged), then a session with five
	# transactions, one per APDU (card detection, then ours).
	P="process=opensc-tool"
	S="share=2 preferred=0x3 protocol=0x2"
	expected="connect $P seq=1 $S
disconnect $P seq=2 $S disposition=0
connect $P seq=1 $S"
	for i in 1 2 3 4 5; do
		expected="$expected
begin-transaction $P seq=$((2 * i)) $S
end-transaction $P seq=$((2 * i + 1)) $S disposition=0"
	done
	expected="$expected
disconnect $P seq=12 $S disposition=0"
	expect_markers "$mark" 2 "$expected"
	[ "$("$TRACE_SQL" "$trace" "SELECT DISTINCT reader, rv FROM markers WHERE rv != 0")" = \
		"$BED_READER2	$((0x80100016))" ] || bed_fail "undelivered markers not on the empty slot 1"
	# Two handles, one process: the last APDU is ours.
	[ "$(bed_lines MARKER "$mark" | cut -f3 | grep -Ev '^(protocol|reader-[a-z-]+)( |$)' | grep -o 'handle=0x[0-9a-f]*' | sort -u | wc -l)" = 2 ] ||
		bed_fail "opensc-tool: not two clients"
	[ "$(bed_lines APDU "$mark" | tail -n 1 | cut -f1)" = 00A4040000 ] || bed_fail "our SELECT is not the last APDU"
	;;
pyscard)
	run /usr/bin/python3 "$RT_TESTS/rt_pyscard.py" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000004 end:leave disconnect:reset
	P="process=python3"
	S="share=2 preferred=0x3 protocol=0x2"
	expect_markers "$mark" 0 "connect $P seq=1 $S
begin-transaction $P seq=2 $S
end-transaction $P seq=3 $S disposition=0
disconnect $P seq=4 $S disposition=1"
	# The transaction's APDU reached the card between its markers.
	seq=$(tail -n +$((mark + 1)) "$BED_CARD_LOG" | awk -F'\t' '$2 == "APDU" { print $3 } $2 == "MARKER" { print $5 }' |
		grep -Ev '^(protocol|reader-[a-z-]+)( |$)' | cut -d' ' -f1 | tr '\n' ' ')
	[ "$seq" = "connect 00A4040000 begin-transaction 00B0000004 end-transaction disconnect " ] ||
		bed_fail "pyscard: order at the card: $seq"
	;;
java)
	JAVA_TOOL_OPTIONS="-Xshare:auto" run java "$RT_TESTS/SmartcardIoRT.java" "$BED_READER"
	[ "$(grep -c '^sw 9000$' "$out")" = 2 ] || bed_fail "java: $(cat "$out")"
	P="process=java"
	S="share=2 preferred=0x2 protocol=0x2"
	expect_markers "$mark" 0 "connect $P seq=1 $S
begin-transaction $P seq=2 $S
end-transaction $P seq=3 $S disposition=0
disconnect $P seq=4 $S disposition=1"
	;;
pcsc_scan)
	# pcsc_scan only watches readers: no connect, so no shim marker at all.
	run pcsc_scan -t 2 -n
	grep -q '3B 80 80 01 01' "$out" || bed_fail "pcsc_scan did not show the ATR: $(cat "$out")"
	[ "$("$TRACE_SQL" "$trace" "SELECT count(*) FROM calls WHERE fn = 10")" -ge 2 ] ||
		bed_fail "pcsc_scan: no SCardGetStatusChange calls in the trace"
	[ "$("$TRACE_SQL" "$trace" "SELECT count(*) FROM calls WHERE fn = 4")" = 0 ] || bed_fail "pcsc_scan connected"
	[ "$("$TRACE_SQL" "$trace" "SELECT count(*) FROM markers")" = 0 ] || bed_fail "pcsc_scan: markers in the trace"
	expect_markers "$mark" 0 ""
	bed_kinds "$mark" | grep -qx APDU && bed_fail "pcsc_scan: the card got an APDU"
	;;
esac
[ "$("$TRACE_SQL" "$trace" "SELECT count(*) FROM drops")" = 0 ] || bed_fail "the trace writer dropped events"
# The shim's own work (discovery, marker round trips) is its own figure,
# not the real call's: stats shows it per function.
if [ "$client" != pcsc_scan ]; then
	"$PCSCTAP" stats --json "$trace" | /usr/bin/python3 -c '
import json, sys
f = {x["fn"]: x for x in json.load(sys.stdin)["functions"]}
c = f["SCardConnect"]
assert c["shim_ns"] > 0, c
assert f["SCardTransmit"]["shim_ns"] >= 0
' || bed_fail "$client: stats shows no shim time for SCardConnect"
	"$PCSCTAP" stats "$trace" | grep -q '^FUNCTION .* SHIM MEAN$' || bed_fail "stats: no SHIM MEAN column"
fi
echo "ok - $client: markers"
