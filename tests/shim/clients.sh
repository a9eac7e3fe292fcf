#!/bin/bash
# clients.sh CLIENT — a real client under `pcsctap run` on an isolated
# stack; asserts what the trace holds.  CLIENT: opensc-tool, pcsc_scan,
# pyscard, java, threads.
# Env: PCSCTAP, BED_LIB (+ bed), TRACE_SQL, THREADS_CLIENT, SHIM_TESTS (source dir).
. "$BED_LIB"
client=$1
case $client in
opensc-tool|pcsc_scan|java) bed_require pcscd "$client" ;;
*) bed_require pcscd ;;
esac
[ "$client" = pyscard ] && { /usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"; }
if [ "$client" = threads ]; then
	bed_start --card test --card-args --quickack
else
	bed_start --card test
fi
trace=$BED_TMP/trace

q() { "$TRACE_SQL" "$trace" "$1"; }
# expect WHAT SQL EXPECTED: the query's output must be EXPECTED.
expect() {
	local got
	got=$(q "$2")
	[ "$got" = "$3" ] || bed_fail "$1: expected [$3], the trace holds [$got]"
}
# Function numbers of a client's calls, in order, space-separated.
fns() { q "SELECT f.name FROM calls c JOIN functions f ON f.id = c.fn ORDER BY c.id" | tr '\n' ' '; }

case $client in
opensc-tool)
	out=$("$PCSCTAP" run -o "$trace" -- opensc-tool -r "$BED_READER" -a -s 00A4040000 -s 00200081023132 2>&1) ||
		bed_fail "opensc-tool failed: $out"
	echo "$out" | grep -q 'pcsctap: trace in' || bed_fail "pcsctap run did not say where the trace is"
	expect "connect" "SELECT DISTINCT reader, share_mode, active_protocol FROM calls WHERE fn = 4 AND rv = 0 AND reader = '$BED_READER'" \
		"$BED_READER	2	2"
	expect "select" "SELECT hex(data_in), hex(data_out), redacted FROM calls WHERE fn = 12 AND data_in = x'00A4040000'" \
		"00A4040000	9000	0"
	expect "verify redacted" "SELECT hex(data_in), redacted FROM calls WHERE fn = 12 AND hex(data_in) LIKE '00200081%'" \
		"0020008102FFFF	1"
	expect "disconnect" "SELECT count(*) FROM calls c WHERE fn = 6 AND rv = 0 AND card IN (SELECT card FROM calls WHERE fn = 12)" "1"
	expect "process row" "SELECT count(*) FROM processes WHERE exe LIKE '%opensc-tool'" "1"
	# --no-redact keeps the PIN.
	"$PCSCTAP" run --no-redact -o "$BED_TMP/trace2" -- opensc-tool -r "$BED_READER" -s 00200081023132 >/dev/null 2>&1
	trace=$BED_TMP/trace2 expect "verify kept" "SELECT hex(data_in), redacted FROM calls WHERE fn = 12 AND hex(data_in) LIKE '00200081%'" \
		"00200081023132	0"
	;;
pcsc_scan)
	"$PCSCTAP" run -o "$trace" -- pcsc_scan -t 2 -n > "$BED_TMP/out" 2>&1
	grep -q '3B 80 80 01 01' "$BED_TMP/out" || bed_fail "pcsc_scan did not show the ATR: $(cat "$BED_TMP/out")"
	n=$(q "SELECT count(*) FROM calls WHERE fn = 10")
	[ "$n" -ge 2 ] || bed_fail "only $n SCardGetStatusChange calls in the trace"
	expect "reader state with ATR" \
		"SELECT DISTINCT hex(atr) FROM reader_states WHERE reader = '$BED_READER' AND length(atr) > 0" "3B80800101"
	# -r asks about the PnP entry, whose ATR the library never sets:
	# nothing of the application's memory may be recorded as one.
	"$PCSCTAP" run -o "$BED_TMP/trace-r" -- pcsc_scan -r > "$BED_TMP/out-r" 2>&1 ||
		bed_fail "pcsc_scan -r failed: $(cat "$BED_TMP/out-r")"
	trace=$BED_TMP/trace-r expect "PnP entries, with an ATR" \
		"SELECT count(*) > 0, count(atr) FROM reader_states WHERE reader = '\\\\?PnP?\\Notification'" "1	0"
	;;
pyscard)
	"$PCSCTAP" run -o "$trace" -- /usr/bin/python3 "$SHIM_TESTS/pyscard_client.py" "$BED_READER" ||
		bed_fail "pyscard client failed"
	expect "transmits" "SELECT hex(data_in), hex(data_out), redacted FROM calls WHERE fn = 12 ORDER BY id" \
		"00A4040000	9000	0
0020008102FFFF	9000	1"
	expect "session" "SELECT count(*) FROM calls WHERE fn IN (4, 6) AND rv = 0" "2"
	;;
java)
	out=$(JAVA_TOOL_OPTIONS="-Xshare:auto" "$PCSCTAP" run -o "$trace" -- java "$SHIM_TESTS/SmartcardIoShim.java" "$BED_READER" 2>&1) ||
		bed_fail "java failed: $out"
	echo "$out" | grep -qx 'sw 9000' || bed_fail "no 9000: $out"
	# pcsctap run leaves JAVA_TOOL_OPTIONS as the user set it (the JVM
	# prints it); the JDK is reached without it (tools-run-java).
	echo "$out" | grep -qx 'Picked up JAVA_TOOL_OPTIONS: -Xshare:auto' ||
		bed_fail "JAVA_TOOL_OPTIONS was changed: $out"
	expect "select" "SELECT hex(data_in), hex(data_out) FROM calls WHERE fn = 12" "00A4040000	9000"
	expect "disconnect reset" "SELECT disposition FROM calls WHERE fn = 6 AND rv = 0" "1"
	;;
threads)
	"$PCSCTAP" run -o "$trace" -- "$THREADS_CLIENT" "$BED_READER" 50 || bed_fail "threads client failed"
	expect "transmits" "SELECT count(*), count(DISTINCT tid), sum(rv != 0) FROM calls WHERE fn = 12" "400	8	0"
	expect "connects" "SELECT count(DISTINCT card) FROM calls WHERE fn = 4 AND rv = 0" "8"
	;;
*) bed_fail "unknown client $client" ;;
esac
q "SELECT count(*) FROM drops" | grep -qx 0 || bed_fail "the writer dropped events"
echo "ok: $client traced ($(fns | wc -w) calls)"
