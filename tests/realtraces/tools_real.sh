#!/bin/bash
# tools_real.sh SCENARIO — pcsctap show, sessions, stats and export on
# traces of real clients run under `pcsctap run` on an isolated stack
# (pcsctap driver, markers on, the test card answering from responses.txt:
# 00B0... -> 6A82, 00CA... -> 0102 9000, anything else 9000).
# SCENARIO: opensc-tool, pyscard, interleaved (two pyscard processes in
# shared mode on one reader, interleaved with cue files), wire (the shim's
# trace merged with the driver's wire trace, DEVICENAME option trace=).
# Exports are checked with tshark by counting matches.
# Env: PCSCTAP, BED_LIB (+ bed), RT_TESTS, TRACE_SQL.
. "$BED_LIB"
scenario=$1
case $scenario in
opensc-tool) bed_require pcscd tshark opensc-tool ;;
pyscard|interleaved|wire) bed_require pcscd tshark ;;
*) bed_fail "unknown scenario $scenario" ;;
esac
if [ "$scenario" != opensc-tool ]; then
	/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
fi
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"
# What the traces name a python3 process: the base name of /proc/PID/exe.
PY=$(basename "$(readlink -f /usr/bin/python3)")

show() { "$PCSCTAP" show --color never "$@"; }
# jexpect WHAT FILE EXPR WANT: a Python expression on JSON lines.
jexpect() {
	local got
	got=$("$RT_TESTS/rt_check.py" json "$2" "$3") || bed_fail "$scenario: $1: cannot evaluate $3"
	bed_expect "$1" "$got" "$4"
}
# texpect WANT FILE FILTER: the number of frames matching a display filter.
texpect() {
	local got
	got=$(tshark -r "$2" -2 -Y "$3" -T fields -e frame.number 2>/dev/null | wc -l)
	bed_expect "$(basename "$2"): $3" "$got" "$1"
}
# lines PATTERN FILE: how many lines of FILE match the extended regexp.
lines() { grep -cE -- "$1" "$2"; }
q() { "$TRACE_SQL" "$trace" "$1"; }
# run_client NAME COMMAND...: one client under pcsctap run into $trace.
run_client() {
	local name=$1
	shift
	"$PCSCTAP" run -o "$trace" -- "$@" > "$work/$name.out" 2>&1 ||
		bed_fail "$scenario: $name failed: $(cat "$work/$name.out")"
}
# stats_vs_trace: every function's count and errors in `stats --json`
# are what the trace holds.
stats_vs_trace() {
	local want got
	want=$(q "SELECT f.name, count(*), sum(c.rv != 0) FROM calls c JOIN functions f ON f.id = c.fn GROUP BY f.name ORDER BY f.name")
	got=$("$RT_TESTS/rt_check.py" json "$work/stats.json" \
		"'\n'.join('%s\t%d\t%d' % (f['fn'], f['count'], f['errors']) for f in sorted(obj['functions'], key=lambda f: f['fn']))")
	bed_expect "stats --json per function = the trace's calls" "$got" "$want"
}
# export_all: pcapng and pcap of $trace (and more traces given).
export_all() {
	"$PCSCTAP" export -o "$work/t.pcapng" "$trace" "$@" 2>"$work/err" || bed_fail "export: $(cat "$work/err")"
	"$PCSCTAP" export --format pcap -o "$work/t.pcap" "$trace" "$@" 2>"$work/err" || bed_fail "export pcap: $(cat "$work/err")"
	texpect 0 "$work/t.pcapng" '_ws.malformed || _ws.expert.severity >= warning'
	texpect 0 "$work/t.pcap" '_ws.malformed || _ws.expert.severity >= warning'
	texpect 0 "$work/t.pcap" 'frame.interface_name || frame.comment'
}

# The wire scenario names its reader (pcscd and the driver alike) so that
# both traces agree; its files outlive the stack, which is stopped to
# flush the driver's trace.
work=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-rt.XXXXXX")
trap 'bed_stop; rm -rf "$work"' EXIT
trace=$work/trace
cards="--card test --card-args --responses=$RT_TESTS/responses.txt"
if [ "$scenario" = wire ]; then
	bed_start --driver pcsctap --driver-opts "markers=on:trace=$work/wire:name=RTW" --name RTW $cards
	[ "$BED_READER" = "RTW 00 00" ] || bed_fail "the reader is named $BED_READER"
else
	bed_start --driver pcsctap --driver-opts markers=on $cards
fi

case $scenario in
opensc-tool)
	run_client opensc-tool opensc-tool -r "$BED_READER" -s 00A4040000 -s 00B0000004
	grep -q 'SW1=0x6A, SW2=0x82' "$work/opensc-tool.out" || bed_fail "no 6A82: $(cat "$work/opensc-tool.out")"
	pid=$(q "SELECT pid FROM processes WHERE name = 'opensc-tool'")
	# Sessions: a look at slot 0, a DIRECT connect to the empty slot 1
	# (its markers fail: no card), then the session with card detection
	# (4 APDUs) and our 2 APDUs, one transaction each.
	"$PCSCTAP" sessions --json "$trace" > "$work/sessions.json" || bed_fail "sessions --json"
	jexpect "sessions" "$work/sessions.json" \
		"[(r['process'], r['pid'], r['reader'], r['share'], r['protocol'], r['apdus'], r['transactions'], r['disposition_name'], r['markers']) for r in rows]" \
		"[('opensc-tool', $pid, '$BED_READER', 'SHARED', 'T1', 0, 0, 'LEAVE', 2), ('opensc-tool', $pid, '$BED_READER2', 'DIRECT', 'UNDEFINED', 0, 0, 'LEAVE', 0), ('opensc-tool', $pid, '$BED_READER', 'SHARED', 'T1', 6, 6, 'LEAVE', 14)]"
	"$PCSCTAP" sessions "$trace" > "$work/sessions.txt"
	bed_expect "sessions text" "$(tail -n 1 "$work/sessions.txt")" "3 sessions"
	sid=$("$RT_TESTS/rt_check.py" json "$work/sessions.json" "rows[2]['id']")

	# The timeline: APDUs decoded, SELECT named, SW meanings.
	show "$trace" > "$work/show.txt" || bed_fail "show"
	bed_expect "Transmit lines" "$(lines ' SCardTransmit ' "$work/show.txt")" 6
	bed_expect "our SELECT decoded" "$(lines "opensc-tool\[$pid\] .* SCardTransmit .* T1 > SELECT 00 A4 04 00 Le=256 < 9000 success " "$work/show.txt")" 1
	bed_expect "SELECTs named" "$(lines ' SCardTransmit .* > SELECT 00 A4 04 00 ' "$work/show.txt")" 3
	bed_expect "READ BINARY and 6A82 decoded" \
		"$(lines ' SCardTransmit .* > READ BINARY 00 B0 00 00 Le=4 < 6A82 .*not found' "$work/show.txt")" 1
	bed_expect "markers in show" "$(lines " marker (connect|disconnect|begin-transaction|end-transaction) pid=$pid " "$work/show.txt")" 18
	show --function SCardTransmit "$trace" > "$work/f.txt"
	bed_expect "--function SCardTransmit" "$(wc -l < "$work/f.txt")/$(lines ' SCardTransmit ' "$work/f.txt")" 6/6
	show --session "$sid" "$trace" > "$work/s.txt"
	bed_expect "--session: transmits" "$(lines ' SCardTransmit ' "$work/s.txt")" 6
	bed_expect "--session: markers" "$(lines ' marker ' "$work/s.txt")" 14
	bed_expect "--session: nothing of the other sessions" "$(lines ' SCardConnect ' "$work/s.txt")/$(lines 'GetStatusChange' "$work/s.txt")" 1/0
	show --pid "$pid" "$trace" > "$work/p.txt"
	bed_expect "--pid" "$(wc -l < "$work/p.txt")" "$(lines "opensc-tool\[$pid\]" "$work/p.txt")"
	bed_expect "--pid: every call" "$(lines ' SCard' "$work/p.txt")" "$(q "SELECT count(*) FROM calls")"
	bed_expect "--pid of another process" "$(show --pid 1 "$trace" | wc -l)" 0
	show --json "$trace" > "$work/show.json"
	jexpect "show --json APDUs" "$work/show.json" \
		"[(r['apdu'].get('ins_name') or r['in'], r['sw'], r['sw_meaning'] != '') for r in rows if r.get('fn') == 'SCardTransmit']" \
		"[('SELECT', '9000', True), ('B03C0100', '9000', True), ('SELECT', '9000', True), ('B03C000040', '9000', True), ('SELECT', '9000', True), ('READ BINARY', '6A82', True)]"

	# Statistics: the calls opensc-tool made.
	"$PCSCTAP" stats --json "$trace" > "$work/stats.json" || bed_fail "stats --json"
	stats_vs_trace
	jexpect "stats: calls of opensc-tool" "$work/stats.json" \
		"sorted((f['fn'], f['count']) for f in obj['functions'] if f['fn'] in ('SCardEstablishContext', 'SCardReleaseContext', 'SCardConnect', 'SCardDisconnect', 'SCardBeginTransaction', 'SCardEndTransaction', 'SCardTransmit'))" \
		"[('SCardBeginTransaction', 6), ('SCardConnect', 3), ('SCardDisconnect', 3), ('SCardEndTransaction', 6), ('SCardEstablishContext', 1), ('SCardReleaseContext', 1), ('SCardTransmit', 6)]"
	jexpect "stats: process" "$work/stats.json" "[(p['process'], p['pid'], p['apdus']) for p in obj['processes']]" "[('opensc-tool', $pid, 6)]"
	jexpect "stats: SW" "$work/stats.json" "sorted((s['sw'], s['count']) for s in obj['sw'])" "[('6A82', 1), ('9000', 5)]"
	jexpect "stats: SELECT" "$work/stats.json" "[i['count'] for i in obj['ins'] if i.get('name') == 'SELECT']" "[3]"
	"$PCSCTAP" stats "$trace" > "$work/stats.txt"
	bed_expect "stats text" "$(tail -n 1 "$work/stats.txt")" "$(q "SELECT count(*) FROM calls") calls, 6 APDUs"

	export_all
	F=$work/t.pcapng
	texpect 3 "$F" 'iso7816.apdu.ins == 0xa4'
	texpect 1 "$F" 'iso7816.apdu.ins == 0xb0'
	texpect 6 "$F" 'iso7816.resp_to'
	texpect 6 "$F" 'iso7816.resp_in'
	texpect 1 "$F" 'iso7816.apdu.sw1 == 0x6a && iso7816.apdu.sw2 == 0x82'
	texpect 12 "$F" "iso7816 && !iso7816.atr && frame.interface_name == \"$BED_READER\""
	texpect 12 "$F" "iso7816 && frame.comment contains \"SCardTransmit pid=$pid \""
	texpect 3 "$F" 'syslog.msg contains "SCardConnect"'
	texpect 18 "$F" 'syslog.msg contains " marker "'
	texpect 2 "$F" "syslog.msg contains \" marker \" && frame.comment contains \"rv=SCARD_E_NOT_TRANSACTED\" && frame.interface_name == \"$BED_READER2\""
	P=$work/t.pcap
	texpect 3 "$P" 'iso7816.apdu.ins == 0xa4'
	texpect 6 "$P" 'iso7816.resp_to'
	texpect 3 "$P" 'syslog.msg contains "SCardConnect"'
	"$PCSCTAP" export --session "$sid" -o "$work/s.pcapng" "$trace" 2>/dev/null || bed_fail "export --session"
	texpect 6 "$work/s.pcapng" 'iso7816.apdu.cla && exported_pdu.p2p_dir == 0'
	texpect 1 "$work/s.pcapng" 'syslog.msg contains "SCardConnect"'
	texpect 0 "$work/s.pcapng" '_ws.malformed || _ws.expert.severity >= warning'
	;;
pyscard)
	run_client pyscard /usr/bin/python3 "$RT_TESTS/rt_pyscard.py" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000004 transmit:00CA010100 end:leave disconnect:reset
	pid=$(q "SELECT pid FROM processes")
	"$PCSCTAP" sessions --json "$trace" > "$work/sessions.json" || bed_fail "sessions --json"
	jexpect "sessions" "$work/sessions.json" \
		"[(r['process'], r['pid'], r['reader'], r['share'], r['protocol'], r['preferred_protocols'], r['apdus'], r['transactions'], r['disposition_name'], r['markers']) for r in rows]" \
		"[('$PY', $pid, '$BED_READER', 'SHARED', 'T1', 3, 3, 1, 'RESET', 4)]"
	show "$trace" > "$work/show.txt" || bed_fail "show"
	bed_expect "SELECT decoded" "$(lines "$PY\[$pid\] .* SCardTransmit .* T1 > SELECT 00 A4 04 00 Le=256 < 9000 success " "$work/show.txt")" 1
	bed_expect "READ BINARY, 6A82 decoded" "$(lines ' SCardTransmit .* > READ BINARY 00 B0 00 00 Le=4 < 6A82 .*not found' "$work/show.txt")" 1
	bed_expect "GET DATA decoded" "$(lines ' SCardTransmit .* > GET DATA 00 CA 01 01 Le=256 < 9000 success \(2 bytes\) 0102 ' "$work/show.txt")" 1
	bed_expect "markers in show" "$(lines " marker (connect|begin-transaction|end-transaction|disconnect) pid=$pid .* SCARD_S_SUCCESS" "$work/show.txt")" 4
	bed_expect "--function Transmit" "$(show --function Transmit "$trace" | grep -c ' SCardTransmit ')/$(show --function Transmit "$trace" | wc -l)" 3/3
	show --json "$trace" > "$work/show.json"
	# A call's time is the real call's (shim_ns apart): the end-transaction
	# and disconnect markers, sent just before the real call, come first.
	jexpect "show --json order" "$work/show.json" "' '.join(r.get('fn', r.get('event', '?')) for r in rows)" \
		"SCardEstablishContext SCardConnect connect SCardTransmit SCardBeginTransaction begin-transaction SCardTransmit SCardTransmit end-transaction SCardEndTransaction disconnect SCardDisconnect SCardReleaseContext"
	"$PCSCTAP" stats --json "$trace" > "$work/stats.json" || bed_fail "stats --json"
	stats_vs_trace
	jexpect "stats: the client's calls" "$work/stats.json" "(obj['calls'], obj['apdus'], sorted((f['fn'], f['count'], f['errors']) for f in obj['functions']))" \
		"(9, 3, [('SCardBeginTransaction', 1, 0), ('SCardConnect', 1, 0), ('SCardDisconnect', 1, 0), ('SCardEndTransaction', 1, 0), ('SCardEstablishContext', 1, 0), ('SCardReleaseContext', 1, 0), ('SCardTransmit', 3, 0)])"
	jexpect "stats: INS" "$work/stats.json" "sorted((i['name'], i['count']) for i in obj['ins'])" "[('GET DATA', 1), ('READ BINARY', 1), ('SELECT', 1)]"
	jexpect "stats: SW" "$work/stats.json" "sorted((s['sw'], s['count']) for s in obj['sw'])" "[('6A82', 1), ('9000', 2)]"
	export_all
	F=$work/t.pcapng
	texpect 1 "$F" 'iso7816.apdu.ins == 0xa4'
	texpect 1 "$F" 'iso7816.apdu.ins == 0xb0'
	texpect 1 "$F" 'iso7816.apdu.ins == 0xca'
	texpect 3 "$F" 'iso7816.resp_to'
	texpect 1 "$F" 'iso7816.apdu.sw1 == 0x6a && iso7816.apdu.sw2 == 0x82'
	texpect 6 "$F" "iso7816 && frame.interface_name == \"$BED_READER\" && frame.comment contains \"pid=$pid \""
	texpect 4 "$F" 'syslog.msg contains " marker " && frame.comment contains "rv=SCARD_S_SUCCESS"'
	texpect 1 "$F" 'syslog.msg contains "SCardBeginTransaction"'
	texpect 1 "$F" 'syslog.msg contains "SCardDisconnect" && syslog.msg contains "disp=RESET"'
	P=$work/t.pcap
	texpect 1 "$P" 'iso7816.apdu.ins == 0xca'
	texpect 3 "$P" 'iso7816.resp_to'
	;;
interleaved)
	# A: connect, a transaction around a SELECT, then waits; B connects and
	# sends GET DATA while A's session is open, then waits; A reads and
	# leaves; B selects and disconnects with reset.
	run_client A /usr/bin/python3 "$RT_TESTS/rt_pyscard.py" "$BED_READER" connect:shared:t1 begin transmit:00A4040000 \
		end:leave "wait:$work/a1" transmit:00B0000004 disconnect:leave &
	a=$!
	for i in $(seq 300); do [ -e "$work/a1.ready" ] && break; sleep 0.1; done
	[ -e "$work/a1.ready" ] || bed_fail "client A never got to its cue"
	run_client B /usr/bin/python3 "$RT_TESTS/rt_pyscard.py" "$BED_READER" connect:shared:t1 transmit:00CA010100 \
		"wait:$work/b1" transmit:00A4040000 disconnect:reset &
	b=$!
	for i in $(seq 300); do [ -e "$work/b1.ready" ] && break; sleep 0.1; done
	[ -e "$work/b1.ready" ] || bed_fail "client B never got to its cue"
	touch "$work/a1"
	wait $a || bed_fail "client A failed"
	touch "$work/b1"
	wait $b || bed_fail "client B failed"
	pa=$(q "SELECT pid FROM calls WHERE fn = 12 AND data_in = x'00B0000004'")
	pb=$(q "SELECT pid FROM calls WHERE fn = 12 AND data_in = x'00CA010100'")
	[ -n "$pa" ] && [ -n "$pb" ] && [ "$pa" != "$pb" ] || bed_fail "two processes expected: [$pa] [$pb]"
	"$PCSCTAP" sessions --json "$trace" > "$work/sessions.json" || bed_fail "sessions --json"
	jexpect "two sessions" "$work/sessions.json" \
		"[(r['process'], r['pid'], r['share'], r['protocol'], r['apdus'], r['transactions'], r['disposition_name'], r['markers']) for r in rows]" \
		"[('$PY', $pa, 'SHARED', 'T1', 2, 1, 'LEAVE', 4), ('$PY', $pb, 'SHARED', 'T1', 2, 0, 'RESET', 2)]"
	jexpect "the sessions overlap" "$work/sessions.json" "rows[1]['start_ns'] < rows[0]['end_ns'] < rows[1]['end_ns']" True
	sb=$("$RT_TESTS/rt_check.py" json "$work/sessions.json" "rows[1]['id']")
	"$PCSCTAP" sessions --pid "$pb" "$trace" > "$work/sp.txt"
	bed_expect "sessions --pid" "$(tail -n 1 "$work/sp.txt")" "1 session"
	show --function SCardTransmit "$trace" > "$work/f.txt"
	bed_expect "transmits interleaved" "$(sed -E 's/^.*\[([0-9]+)\] .* > ([A-Z ]+) [0-9A-F]{2} .*$/\1 \2/' "$work/f.txt" | tr '\n' ,)" \
		"$pa SELECT,$pb GET DATA,$pa READ BINARY,$pb SELECT,"
	show --pid "$pa" "$trace" > "$work/pa.txt"
	bed_expect "--pid A: only A" "$(wc -l < "$work/pa.txt")" "$(lines "^ *\+[0-9.]+ $PY\[$pa\] " "$work/pa.txt")"
	bed_expect "--pid A: its calls and markers" "$(wc -l < "$work/pa.txt")" $((8 + 4))
	show --session "$sb" "$trace" > "$work/sb.txt"
	bed_expect "--session B" "$(grep -oE '(SCard[A-Za-z]+|marker [a-z-]+)' "$work/sb.txt" | tr '\n' ,)" \
		"SCardConnect,marker connect,SCardTransmit,SCardTransmit,marker disconnect,SCardDisconnect,"
	bed_expect "--session B: only B" "$(lines "$PY\[$pb\]" "$work/sb.txt")" 6
	"$PCSCTAP" stats --json "$trace" > "$work/stats.json" || bed_fail "stats --json"
	stats_vs_trace
	jexpect "stats per process" "$work/stats.json" "sorted((p['pid'], p['calls'], p['errors'], p['apdus']) for p in obj['processes'])" \
		"$(/usr/bin/python3 -c "print(sorted([($pa, 8, 0, 2), ($pb, 6, 0, 2)]))")"
	"$PCSCTAP" stats --pid "$pb" --json "$trace" > "$work/statsb.json"
	jexpect "stats --pid B" "$work/statsb.json" "(obj['calls'], obj['apdus'], len(obj['processes']))" "(6, 2, 1)"
	export_all
	F=$work/t.pcapng
	texpect 2 "$F" 'iso7816.apdu.ins == 0xa4'
	texpect 4 "$F" 'iso7816.resp_to'
	texpect 4 "$F" "iso7816 && frame.comment contains \"pid=$pa \""
	texpect 4 "$F" "iso7816 && frame.comment contains \"pid=$pb \""
	texpect 8 "$F" "iso7816 && frame.interface_name == \"$BED_READER\""
	texpect 6 "$F" 'syslog.msg contains " marker "'
	"$PCSCTAP" export --pid "$pb" -o "$work/b.pcapng" "$trace" 2>/dev/null || bed_fail "export --pid"
	texpect 2 "$work/b.pcapng" 'iso7816.apdu.cla && exported_pdu.p2p_dir == 0'
	texpect 1 "$work/b.pcapng" 'iso7816.apdu.ins == 0xca'
	texpect 0 "$work/b.pcapng" "frame.comment contains \"pid=$pa \""
	;;
wire)
	run_client pyscard /usr/bin/python3 "$RT_TESTS/rt_pyscard.py" "$BED_READER" connect:shared:t01 begin \
		transmit:00A4040000 end:leave transmit:00B0000004 disconnect:reset
	pid=$(q "SELECT pid FROM processes")
	# The card logs the reset before it answers: then pcscd has recorded
	# everything of this client.  Stopping pcscd flushes the wire trace.
	bed_wait_kind RESET 50 0 || bed_fail "the card was never reset"
	bed_stop
	wire=$work/wire
	[ -f "$wire" ] || bed_fail "the driver wrote no wire trace"
	W() { "$TRACE_SQL" "$wire" "$1"; }
	bed_expect "wire APDUs" "$(W "SELECT hex(sent), hex(received) FROM wire WHERE kind = 256 ORDER BY t_ns" | tr '\n\t' ', ')" \
		"00A4040000 9000,00B0000004 6A82,"
	show "$trace" "$wire" > "$work/show.txt" || bed_fail "show SHIM WIRE"
	bed_expect "merged: wire APDUs decoded" \
		"$(lines "pcscd\[[0-9]+\] wire apdu \[RTW 00 00\] > SELECT 00 A4 04 00 Le=256 < 9000 success" "$work/show.txt")/$(lines "wire apdu \[RTW 00 00\] > READ BINARY 00 B0 00 00 Le=4 < 6A82 " "$work/show.txt")" 1/1
	bed_expect "merged: wire markers" "$(lines "wire marker \[RTW 00 00\] (connect|begin-transaction|end-transaction|disconnect) pid=$pid " "$work/show.txt")" 4
	# Merged by time: what pcscd did for a call comes after the call
	# entered, and each wire marker after the shim's marker of that seq.
	# (Power-on, ATR and protocol depend on whether pcscd had powered the
	# card down since the stack started: left out.)
	order=$(grep -oE "(SCard(Connect|BeginTransaction|Transmit|EndTransaction|Disconnect) |wire (reset|apdu|marker \[RTW 00 00\] (connect|begin-transaction|end-transaction|disconnect))|marker [a-z-]+ pid)" "$work/show.txt" |
		sed -E 's/ \[RTW 00 00\]//; s/ pid$//; s/ $//' | tr '\n' ,)
	bed_expect "merged order" "$order" "SCardConnect,marker connect,wire marker connect,SCardBeginTransaction,marker begin-transaction,wire marker begin-transaction,SCardTransmit,wire apdu,marker end-transaction,wire marker end-transaction,SCardEndTransaction,SCardTransmit,wire apdu,marker disconnect,wire marker disconnect,SCardDisconnect,wire reset,"
	show --json "$trace" "$wire" > "$work/show.json"
	jexpect "merged --json: in time order" "$work/show.json" "[r['t_ns'] for r in rows] == sorted(r['t_ns'] for r in rows)" True
	jexpect "merged --json: the card got the shim's marker bodies" "$work/show.json" \
		"[r['body'] for r in rows if r['type'] == 'marker'] == [r['sent'] for r in rows if r.get('kind') == 'marker' and r['sent'][:4].upper() not in ('0106', '0107', '0108', '0109', '010A')]" True
	jexpect "merged --json: APDUs on both sides" "$work/show.json" \
		"[(r['in'], r['out']) for r in rows if r.get('fn') == 'SCardTransmit'] == [(r['sent'], r['received']) for r in rows if r.get('kind') == 'apdu']" True
	bed_expect "merged --pid: no wire lines" "$(show --pid "$pid" "$trace" "$wire" | grep -c ' wire ')" 0
	bed_expect "merged --reader" "$(show --reader "RTW 00 00" "$trace" "$wire" | grep -cE ' wire apdu | SCardTransmit ')" 4
	"$PCSCTAP" sessions "$trace" "$wire" > "$work/sessions.txt" || bed_fail "sessions SHIM WIRE"
	bed_expect "merged sessions" "$(tail -n 1 "$work/sessions.txt")" "1 session"
	"$PCSCTAP" stats --json "$trace" "$wire" > "$work/stats.json" || bed_fail "stats SHIM WIRE"
	stats_vs_trace
	export_all "$wire"
	F=$work/t.pcapng
	texpect 1 "$F" 'iso7816.apdu.ins == 0xa4 && frame.interface_name == "RTW 00 00"'
	texpect 1 "$F" 'iso7816.apdu.ins == 0xa4 && frame.interface_name == "RTW 00 00 [driver]"'
	texpect 2 "$F" 'iso7816.apdu.sw1 == 0x6a && iso7816.apdu.sw2 == 0x82'
	texpect "$(W "SELECT count(*) FROM wire WHERE kind IN (1, 2, 4) AND length(received) >= 2")" "$F" 'iso7816.atr && frame.interface_name == "RTW 00 00 [driver]"'
	texpect "$(W "SELECT count(*) FROM wire WHERE kind = 5")" "$F" 'syslog.msg contains "wire marker"'
	texpect 4 "$F" 'syslog.msg contains " marker " && !(syslog.msg contains "wire marker")'
	ifaces=$(tshark -r "$F" -T fields -e frame.interface_name 2>/dev/null | sort -u | tr '\n' '|')
	bed_expect "interfaces" "$ifaces" "PC/SC|RTW 00 00|RTW 00 00 [driver]|"
	;;
esac
[ "$(q "SELECT count(*) FROM drops")" = 0 ] || bed_fail "the trace writer dropped events: $(q "SELECT * FROM drops")"
echo "ok - $scenario: $bed_n checks"
