#!/bin/bash
# replay.sh SCENARIO — `pcsctap replay` on an isolated stack: real clients
# are recorded against the test card (answering from responses.txt), the
# card is stopped, and the recording, replayed as the card, answers the
# same clients: their output must be identical.
# SCENARIO:
#   clients  opensc-tool, pyscard and Java recorded then replayed with
#            --check (pcsctap driver, markers on); a background replay
#            ended by SIGTERM with its summary; a command never recorded
#   vpcd     the same against stock vpcd, from the driver-less client view
#   wire     the driver's wire trace (card view) replayed
#   t0       a T=0-only card: the replayed session is T=0 again
#   edges    GET RESPONSE chain (61xx), extended APDU, PIN any value,
#            --strict, and bad input: truncated/foreign trace, no APDUs,
#            another reader, bad options, unreachable reader
# Env: PCSCTAP, BED_LIB (+ bed), REPLAY_TESTS, RT_TESTS.
. "$BED_LIB"
scenario=$1
case $scenario in
clients) bed_require pcscd opensc-tool java ;;
vpcd|wire|t0|edges) bed_require pcscd ;;
*) bed_fail "unknown scenario $scenario" ;;
esac
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"
work=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-replay.XXXXXX")
replay_pid=
trap 'stop_replay; bed_stop; rm -rf "$work"' EXIT
PY=/usr/bin/python3
PYCLIENT=$RT_TESTS/rt_pyscard.py
JAVA_CLIENT=$RT_TESTS/SmartcardIoRT.java

# record NAME COMMAND...: run a client under pcsctap run against the test
# card; its stdout in $work/NAME.rec, its trace in $work/NAME.trace.
record() {
	local name=$1
	shift
	"$PCSCTAP" run -o "$work/$name.trace" -- "$@" > "$work/$name.rec" 2> "$work/$name.rec.err" ||
		bed_fail "recording $name failed: $(cat "$work/$name.rec.err" "$work/$name.rec")"
}
# card_stop: stop the stack's test card (its recorded PID) and wait until
# pcscd sees the reader empty.
card_stop() {
	local pid
	pid=$(cat "$BED_DIR/card.bedpid")
	kill -TERM "$pid"
	for _ in $(seq 50); do
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	rm -f "$BED_DIR/card.bedpid"
	"$BED_WAIT" "$BED_READER" absent 15000 || bed_fail "the reader never went empty"
}
# check NAME [REPLAY OPTIONS] -- COMMAND...: replay NAME's trace with
# --check; the client's output in $work/NAME.now, replay's stderr in
# $work/NAME.check; returns replay's exit status.
check() {
	local name=$1
	shift
	"$PCSCTAP" replay --check -c "127.0.0.1:$BED_PORT" "$@" > "$work/$name.now" 2> "$work/$name.check"
}
# same_output NAME: the replayed run printed what the recorded one did.
same_output() {
	cmp -s "$work/$1.rec" "$work/$1.now" ||
		bed_fail "$1: the output differs: $(diff "$work/$1.rec" "$work/$1.now")"
	bed_ok "$1: the replayed card gave the client the recorded output ($(wc -l < "$work/$1.rec") lines)"
}
# summary NAME: the counts of replay's summary line, "matched unmatched unused recorded".
summary() {
	sed -n 's/.*: \([0-9]*\) matched (.*), \([0-9]*\) unmatched, \([0-9]*\) unused of \([0-9]*\) recorded$/\1 \2 \3 \4/p' "$work/$1.check"
}
# start_replay NAME [OPTIONS]: a background replay, its stdout in NAME.log.
start_replay() {
	local name=$1
	shift
	"$PCSCTAP" replay -c "127.0.0.1:$BED_PORT" "$@" > "$work/$name.log" 2> "$work/$name.check" &
	replay_pid=$!
	"$BED_WAIT" "$BED_READER" present 15000 || bed_fail "the replayed card was never seen: $(cat "$work/$name.check")"
	# pcscd powers a card it has just seen: the replayed card answered.
	for _ in $(seq 100); do
		grep -q '^POWER_ON$' "$work/$name.log" && return 0
		sleep 0.1
	done
	bed_fail "the replayed card was not powered: $(cat "$work/$name.log")"
}
stop_replay() {
	[ -n "$replay_pid" ] || return 0
	kill -TERM "$replay_pid" 2>/dev/null
	wait "$replay_pid"
	replay_status=$?
	replay_pid=
	"$BED_WAIT" "$BED_READER" absent 15000 || bed_fail "the reader never went empty"
}
sessions_protocol() {
	"$PCSCTAP" sessions --json "$1" | "$PY" -c 'import json, sys; print(" ".join(json.loads(l)["protocol"] for l in sys.stdin if l.strip()))'
}

cards="--card test --card-args --responses=$REPLAY_TESTS/responses.txt"
case $scenario in
clients)
	bed_start --driver pcsctap --driver-opts markers=on $cards
	record opensc opensc-tool -r "$BED_READER" -a -s 00A4040000 -s 00B0000004 -s 00CA010100
	record pyscard "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000004 transmit:00CA010100 end:leave transmit:00CA010100 disconnect:reset
	record java java "$JAVA_CLIENT" "$BED_READER"
	grep -q 'SW1=0x6A, SW2=0x82' "$work/opensc.rec" || bed_fail "no 6A82 in the recording"
	card_stop

	check opensc "$work/opensc.trace" -- opensc-tool -r "$BED_READER" -a -s 00A4040000 -s 00B0000004 -s 00CA010100 ||
		bed_fail "opensc: check failed: $(cat "$work/opensc.check")"
	same_output opensc
	read -r matched unmatched unused recorded <<< "$(summary opensc)"
	bed_expect "opensc: every APDU answered, none unused" "$matched $unmatched $unused" "$recorded 0 0"
	[ "$recorded" -ge 3 ] || bed_fail "opensc: only $recorded APDUs recorded"
	grep -q 'the APDUs are those of the recording' "$work/opensc.check" || bed_fail "opensc: no verdict"
	bed_ok "opensc: --check says the APDUs are the recorded ones"

	check pyscard "$work/pyscard.trace" -- "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000004 transmit:00CA010100 end:leave transmit:00CA010100 disconnect:reset ||
		bed_fail "pyscard: check failed: $(cat "$work/pyscard.check")"
	same_output pyscard
	bed_expect "pyscard: summary" "$(summary pyscard)" "4 0 0 4"

	check java "$work/java.trace" -- java "$JAVA_CLIENT" "$BED_READER" ||
		bed_fail "java: check failed: $(cat "$work/java.check")"
	same_output java
	bed_expect "java: summary" "$(summary java)" "2 0 0 2"

	# A regression: the client now sends another command.
	check regress "$work/pyscard.trace" -- "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000008 transmit:00CA010100 end:leave transmit:00CA010100 disconnect:reset
	status=$?
	[ $status = 8 ] || bed_fail "regress: exit status $status: $(cat "$work/regress.check")"
	bed_ok "a changed client: --check exit status 8"
	grep -q 'unmatched APDU 00B0000008' "$work/regress.check" || bed_fail "regress: not reported: $(cat "$work/regress.check")"
	grep -q 'rv=0x00000000 resp=6D00' "$work/regress.now" || bed_fail "regress: no 6D00: $(cat "$work/regress.now")"
	grep -A4 'differ from the recording at APDU 2:' "$work/regress.check" > "$work/diff"
	grep -q 'recorded  > READ BINARY 00 B0 00 00 Le=4' "$work/diff" && grep -q 'now       > READ BINARY 00 B0 00 00 Le=8' "$work/diff" &&
		grep -q '< 6D00' "$work/diff" || bed_fail "regress: the diff: $(cat "$work/regress.check")"
	bed_ok "a changed client: the first difference, readable, and 6D00 for the unknown command"

	# Plain replay in the background, ended by SIGTERM: its summary.
	start_replay bg "$work/pyscard.trace"
	"$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000004 transmit:00CA010100 end:leave transmit:00CA010100 disconnect:reset > "$work/bg.now" ||
		bed_fail "bg: the client failed: $(cat "$work/bg.now")"
	"$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 transmit:00DEAD0000 disconnect:leave > "$work/bg2.now"
	stop_replay
	cmp -s "$work/pyscard.rec" "$work/bg.now" || bed_fail "bg: output differs: $(diff "$work/pyscard.rec" "$work/bg.now")"
	bed_ok "background replay: identical client output"
	bed_expect "background replay: exit status with an unmatched command" "$replay_status" 8
	bed_expect "background replay: summary" "$(summary bg)" "5 1 0 4"
	grep -q 'transmit:00DEAD0000 rv=0x00000000 resp=6D00' "$work/bg2.now" || bed_fail "bg: $(cat "$work/bg2.now")"
	# Both SELECTs follow a power-up or reset: both in context.
	bed_expect "the log names each answer's context" "$(grep -c '^APDU 00A4040000 -> 9000  in context #' "$work/bg.log")" 2
	bed_ok "an unknown command got 6D00"
	;;
vpcd)
	[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || bed_skip "stock vpcd is not installed"
	bed_start --driver vpcd $cards
	record pyscard "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		transmit:00B0000004 transmit:00CA010100 disconnect:leave
	card_stop
	check pyscard "$work/pyscard.trace" -- "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		transmit:00B0000004 transmit:00CA010100 disconnect:leave ||
		bed_fail "check against stock vpcd failed: $(cat "$work/pyscard.check")"
	same_output pyscard
	bed_expect "stock vpcd: summary" "$(summary pyscard)" "3 0 0 3"
	;;
wire)
	# The driver's own trace of the card (card view); the shim is not needed.
	bed_start --driver pcsctap --driver-opts "markers=on:trace=$work/wire:name=RPW" --name RPW $cards
	"$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 transmit:00B0000004 \
		transmit:00CA010100 disconnect:reset > "$work/pyscard.rec" || bed_fail "the client failed"
	card_stop
	check pyscard --view card "$work/wire" -- "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 \
		transmit:00A4040000 transmit:00B0000004 transmit:00CA010100 disconnect:reset ||
		bed_fail "check of the wire trace failed: $(cat "$work/pyscard.check")"
	same_output pyscard
	bed_expect "wire: summary" "$(summary pyscard)" "3 0 0 3"
	grep -q "replaying 3 exchanges (card view, reader $BED_READER), ATR 3B80800101" "$work/pyscard.check" ||
		bed_fail "wire: $(head -3 "$work/pyscard.check")"
	! grep -q 'holds no ATR' "$work/pyscard.check" || bed_fail "wire: the driver's ATR was not used"
	bed_ok "wire: the card view, and the ATR the driver recorded"
	;;
t0)
	# A T=0-only card: the replayed one must offer T=0 only again, from
	# the recorded ATR (opensc-tool asks for it) or, where the client
	# never asked (pyscard), from the protocol its session used.
	bed_start --driver pcsctap --driver-opts markers=on --card test \
		--card-args "--atr 3B00 --responses=$REPLAY_TESTS/responses.txt"
	record opensc opensc-tool -r "$BED_READER" -a -s 00A4040007A000000003101000
	bed_expect "opensc-tool fetched the 61xx answer with GET RESPONSE" \
		"$("$TRACE_SQL" "$work/opensc.trace" "SELECT hex(data_in) || ' ' || hex(data_out) FROM calls WHERE fn = 12 AND hex(data_in) LIKE '_0C0%'")" \
		"B0C0000012 6F10840AA00000000310109F650107FF9000"
	record pyscard "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040007A0000000031010 \
		transmit:00C0000012 disconnect:leave
	card_stop
	bed_expect "recorded: T=0" "$(sessions_protocol "$work/pyscard.trace")" T0
	check opensc -o "$work/opensc.now.trace" "$work/opensc.trace" -- opensc-tool -r "$BED_READER" -a \
		-s 00A4040007A000000003101000 || bed_fail "opensc: $(cat "$work/opensc.check")"
	same_output opensc
	grep -qi '6F 10 84 0A A0' "$work/opensc.now" || bed_fail "opensc: no GET RESPONSE data: $(cat "$work/opensc.now")"
	bed_ok "opensc: its automatic GET RESPONSE after 6112 answered from the recording"
	check pyscard -o "$work/pyscard.now.trace" "$work/pyscard.trace" -- "$PY" "$PYCLIENT" "$BED_READER" \
		connect:shared:t01 transmit:00A4040007A0000000031010 transmit:00C0000012 disconnect:leave ||
		bed_fail "pyscard: $(cat "$work/pyscard.check")"
	same_output pyscard
	grep -q 'holds no ATR; answering 3B00 ' "$work/pyscard.check" || bed_fail "pyscard: $(cat "$work/pyscard.check")"
	bed_expect "replayed: T=0 (pyscard)" "$(sessions_protocol "$work/pyscard.now.trace")" T0
	bed_expect "replayed: T=0 (opensc-tool)" "$(sessions_protocol "$work/opensc.now.trace" | tr ' ' '\n' | sort -u | grep -v UNDEFINED)" T0
	;;
edges)
	bed_start --driver pcsctap --driver-opts markers=on $cards
	ext=00DA0000000100$(printf 'AB%.0s' $(seq 256))
	steps="connect:shared:t01 transmit:00A4040007A0000000031010 transmit:00C0000012 transmit:$ext transmit:0020008104FFFFFFFF transmit:00CA010100 disconnect:leave"
	# The PIN the client sends, the shim records as FF FF FF FF.
	record edges "$PY" "$PYCLIENT" "$BED_READER" ${steps//FFFFFFFF/31323334}
	record noapdu "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 disconnect:leave
	card_stop
	bed_expect "the recorded VERIFY is redacted" "$("$TRACE_SQL" "$work/edges.trace" "SELECT hex(data_in) FROM calls WHERE redacted = 1")" 0020008104FFFFFFFF

	check edges "$work/edges.trace" -- "$PY" "$PYCLIENT" "$BED_READER" ${steps//FFFFFFFF/39393939} ||
		bed_fail "another PIN of the same length: $(cat "$work/edges.check")"
	# The client prints its steps, the PIN among them.
	sed -i 's/002000810439393939 /002000810431323334 /' "$work/edges.now"
	same_output edges
	bed_expect "GET RESPONSE chain, extended APDU, PIN: summary" "$(summary edges)" "5 0 0 5"
	grep -q "^APDU ${ext} -> 4F4B9000  in context" "$work/edges.check" || bed_fail "extended: $(cat "$work/edges.check")"
	bed_ok "the extended command (Lc 256) answered in context"

	check pin5 --sw 6A81 "$work/edges.trace" -- "$PY" "$PYCLIENT" "$BED_READER" ${steps//04FFFFFFFF/053132333435}
	bed_expect "a PIN of another length: exit status" "$?" 8
	sed -i 's/ 3132333435//' "$work/pin5.check"
	grep -q 'unmatched APDU 0020008105FFFFFFFFFF (VERIFY .*): answered 6A81' "$work/pin5.check" ||
		bed_fail "pin5: $(cat "$work/pin5.check")"
	grep -q 'transmit:0020008105.* rv=0x00000000 resp=6A81' "$work/pin5.now" || bed_fail "pin5: $(cat "$work/pin5.now")"
	bed_ok "a PIN of another length is a command never recorded: --sw 6A81 answers it"

	check strict --strict "$work/edges.trace" -- "$PY" "$PYCLIENT" "$BED_READER" ${steps//FFFFFFFF/31323334} ||
		bed_fail "strict: $(cat "$work/strict.check")"
	bed_expect "--strict, same order: summary" "$(summary strict)" "5 0 0 5"
	check strict2 --strict "$work/edges.trace" -- "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 \
		transmit:00CA010100 transmit:00A4040007A0000000031010 disconnect:leave
	bed_expect "--strict, another order: exit status" "$?" 8
	bed_expect "--strict, another order: summary" "$(summary strict2)" "1 1 4 5"
	check loose "$work/edges.trace" -- "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 \
		transmit:00CA010100 transmit:00A4040007A0000000031010 disconnect:leave
	bed_expect "without --strict, another order is answered (exit 8: the sequence differs)" "$?/$(summary loose)" "8/2 0 3 5"
	grep -q "APDU 00CA010100 -> 01029000  out of context" "$work/loose.check" || bed_fail "loose: $(cat "$work/loose.check")"
	bed_ok "out of its context, a command is answered from anywhere"

	check none "$work/edges.trace" -- true
	status=$?
	[ $status = 8 ] || bed_fail "none: exit status $status: $(cat "$work/none.check")"
	grep -A3 'differ from the recording at APDU 1:' "$work/none.check" | grep -q 'now       (none)' ||
		bed_fail "none: $(cat "$work/none.check")"
	bed_ok "--check of a command that makes no PC/SC call: the first recorded APDU is missing"

	# --session and --pid pick; bad selections are clear errors.
	sid=$("$PCSCTAP" sessions --json "$work/edges.trace" | "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())["id"])')
	pid=$("$TRACE_SQL" "$work/edges.trace" "SELECT pid FROM processes")
	r() { "$PCSCTAP" replay -c "127.0.0.1:$BED_PORT" --wait 0.2 "$@" > "$work/r.out" 2> "$work/r.err"; echo $?; }
	bed_expect "--session ID" "$(r --session "$sid" --connect 127.0.0.1:1 "$work/edges.trace")/$(head -1 "$work/r.out")" \
		"4/replaying 5 exchanges (client view, reader $BED_READER), ATR 3B800181"
	bed_expect "--pid" "$(r --pid "$pid" -c 127.0.0.1:1 "$work/edges.trace")/$(cut -d" " -f1-3 "$work/r.out")" "4/replaying 5 exchanges"
	bed_expect "unreachable reader: message" "$(cat "$work/r.err" | tail -1)" "pcsctap replay: cannot reach the reader at 127.0.0.1:1: Connection refused"
	bed_expect "--session of no session" "$(r --session 999999 "$work/edges.trace")" 2
	grep -q 'no session 999999 in the trace' "$work/r.err" || bed_fail "$(cat "$work/r.err")"
	bed_expect "--pid of another process" "$(r --pid 1 "$work/edges.trace")" 7
	bed_expect "--reader of another reader" "$(r --reader "$BED_READER2" "$work/edges.trace")" 7
	grep -q 'no APDUs to replay' "$work/r.err" || bed_fail "$(cat "$work/r.err")"
	bed_expect "a trace without APDUs" "$(r "$work/noapdu.trace")" 7
	"$GEN_TRACE" --calls 400 "$work/two.trace" > /dev/null || bed_fail "gen_trace"
	bed_expect "APDUs of two readers" "$(r "$work/two.trace")" 1
	grep -q "more than one reader .*: choose one with --reader" "$work/r.err" || bed_fail "$(cat "$work/r.err")"
	bed_expect "APDUs of two readers, --reader picks" "$(r --reader 'Virtual PCD 00 01' -c 127.0.0.1:1 "$work/two.trace")" 4

	# Bad input: clear errors, the documented exit statuses.
	# Cut in the middle, once everything is in the main file.
	"$PY" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("pragma wal_checkpoint(TRUNCATE)")' "$work/edges.trace"
	[ ! -s "$work/edges.trace-wal" ] || bed_fail "the trace still has a WAL"
	head -c $(( $(stat -c %s "$work/edges.trace") / 2 )) "$work/edges.trace" > "$work/trunc.trace"
	bed_expect "truncated trace" "$(r "$work/trunc.trace")" 5
	grep -q "^pcsctap replay: $work/trunc.trace: .*\\(damaged\\|malformed\\|corrupt\\|not a pcsctap trace\\)" "$work/r.err" || bed_fail "truncated: $(cat "$work/r.err")"
	"$PY" -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.commit()' "$work/foreign.db"
	bed_expect "foreign database" "$(r "$work/foreign.db")" 5
	bed_expect "missing trace" "$(r "$work/none.trace")" 2
	bed_expect "--sw not a status word" "$(r --sw 6D "$work/edges.trace")" 1
	bed_expect "--view unknown" "$(r --view both "$work/edges.trace")" 1
	bed_expect "--check without a command" "$(r --check "$work/edges.trace")" 1
	bed_expect "a command without --check" "$(r "$work/edges.trace" -- true)" 1
	bed_expect "no trace" "$(r)" 1
	bed_expect "two traces" "$(r "$work/edges.trace" "$work/edges.trace")" 1
	bed_expect "bad --atr" "$(r --atr 3 "$work/edges.trace")" 1
	bed_expect "bad HOST:PORT" "$(r -c nowhere "$work/edges.trace")" 1
	;;
esac
echo "1..$bed_n"
