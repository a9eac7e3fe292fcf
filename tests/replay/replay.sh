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
n=0
ok() {
	n=$((n + 1))
	echo "ok $n - $scenario: $*"
}
expect() {
	[ "$2" = "$3" ] || bed_fail "$scenario: $1: got [$2], want [$3]"
	ok "$1 = $3"
}
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
	ok "$1: the replayed card gave the client the recorded output ($(wc -l < "$work/$1.rec") lines)"
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
	expect "opensc: every APDU answered, none unused" "$matched $unmatched $unused" "$recorded 0 0"
	[ "$recorded" -ge 3 ] || bed_fail "opensc: only $recorded APDUs recorded"
	grep -q 'the APDUs are those of the recording' "$work/opensc.check" || bed_fail "opensc: no verdict"
	ok "opensc: --check says the APDUs are the recorded ones"

	check pyscard "$work/pyscard.trace" -- "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000004 transmit:00CA010100 end:leave transmit:00CA010100 disconnect:reset ||
		bed_fail "pyscard: check failed: $(cat "$work/pyscard.check")"
	same_output pyscard
	expect "pyscard: summary" "$(summary pyscard)" "4 0 0 4"

	check java "$work/java.trace" -- java "$JAVA_CLIENT" "$BED_READER" ||
		bed_fail "java: check failed: $(cat "$work/java.check")"
	same_output java
	expect "java: summary" "$(summary java)" "2 0 0 2"

	# A regression: the client now sends another command.
	check regress "$work/pyscard.trace" -- "$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000008 transmit:00CA010100 end:leave transmit:00CA010100 disconnect:reset
	status=$?
	[ $status = 8 ] || bed_fail "regress: exit status $status: $(cat "$work/regress.check")"
	ok "a changed client: --check exit status 8"
	grep -q 'unmatched APDU 00B0000008' "$work/regress.check" || bed_fail "regress: not reported: $(cat "$work/regress.check")"
	grep -q 'rv=0x00000000 resp=6D00' "$work/regress.now" || bed_fail "regress: no 6D00: $(cat "$work/regress.now")"
	grep -A4 'differ from the recording at APDU 2:' "$work/regress.check" > "$work/diff"
	grep -q 'recorded  > READ BINARY 00 B0 00 00 Le=4' "$work/diff" && grep -q 'now       > READ BINARY 00 B0 00 00 Le=8' "$work/diff" &&
		grep -q '< 6D00' "$work/diff" || bed_fail "regress: the diff: $(cat "$work/regress.check")"
	ok "a changed client: the first difference, readable, and 6D00 for the unknown command"

	# Plain replay in the background, ended by SIGTERM: its summary.
	start_replay bg "$work/pyscard.trace"
	"$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 \
		begin transmit:00B0000004 transmit:00CA010100 end:leave transmit:00CA010100 disconnect:reset > "$work/bg.now" ||
		bed_fail "bg: the client failed: $(cat "$work/bg.now")"
	"$PY" "$PYCLIENT" "$BED_READER" connect:shared:t01 transmit:00A4040000 transmit:00DEAD0000 disconnect:leave > "$work/bg2.now"
	stop_replay
	cmp -s "$work/pyscard.rec" "$work/bg.now" || bed_fail "bg: output differs: $(diff "$work/pyscard.rec" "$work/bg.now")"
	ok "background replay: identical client output"
	expect "background replay: exit status with an unmatched command" "$replay_status" 8
	expect "background replay: summary" "$(summary bg)" "5 1 0 4"
	grep -q 'transmit:00DEAD0000 rv=0x00000000 resp=6D00' "$work/bg2.now" || bed_fail "bg: $(cat "$work/bg2.now")"
	# Both SELECTs follow a power-up or reset: both in context.
	expect "the log names each answer's context" "$(grep -c '^APDU 00A4040000 -> 9000  in context #' "$work/bg.log")" 2
	ok "an unknown command got 6D00"
	;;
esac
echo "1..$n"
