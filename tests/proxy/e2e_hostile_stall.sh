#!/bin/bash
# A connection that never answers its ATR holds up nobody (issue 11 item 3,
# docs/security.md):
#  1. silent connections to slot 1's port, kept coming, while opensc-tool
#     reads the ATR of slot 0's card: same output, same number of messages
#     at the card as without them; its time is printed, not asserted;
#  2. a silent connection to slot 0's port before the real card: the real
#     card is seen and works (the time to PRESENT is printed).
# Env PRESENCE (default event) picks the driver's presence option, so the
# same cases can be run against presence=poll, where the handshake is bound
# to 1 s but still on pcscd's path (the times show it).
. "$BED_LIB"
bed_require pcscd opensc-tool
cards=$PROXY_TESTS/cards.py
flood_pid= card_pid=
trap 'for p in $flood_pid $card_pid; do kill "$p" 2>/dev/null; done; bed_stop' EXIT
presence=${PRESENCE:-event}

ms_since() {
	echo $(( ($(date +%s%N) - $1) / 1000000 ))
}

# run_opensc: opensc-tool -a (it looks at every reader, then reads slot
# 0's card); sets out, ms, msgs.
run_opensc() {
	local m t0
	m=$(bed_mark)
	t0=$(date +%s%N)
	out=$(timeout 60 opensc-tool -a 2>&1) || bed_fail "opensc-tool failed: $out"
	ms=$(ms_since "$t0")
	# POWER_OFF is pcscd's grace timer 0.4 s after the last client, not a
	# round trip of opensc-tool's: it lands in a run that took that long.
	msgs=$(bed_kinds "$m" | grep -vx -e CONNECTED -e POWER_OFF | without_polls | tr '\n' ' ')
}

# With presence=poll, pcscd's polls (GET_ATR not right after POWER_ON or
# RESET) come whenever they fall due: they are not opensc-tool's.
without_polls() {
	if [ "$presence" = poll ]; then
		awk '$0 != "GET_ATR" || prev == "POWER_ON" || prev == "RESET" { print } { prev = $0 }'
	else
		cat
	fi
}

# 1. Slot 1 flooded with silent connections while slot 0 is used.
bed_start --driver pcsctap --driver-opts "presence=$presence"
bed_wait_kind POWER_OFF 50 || bed_fail "the idle card was never powered down"
run_opensc
base_out=$out base_ms=$ms base_msgs=$msgs
grep -qi '3b:80:80:01:01' <<<"$base_out" || bed_fail "opensc-tool did not read the ATR: $base_out"
bed_wait_kind POWER_OFF 50 "$(bed_mark)"
# What the driver logs when it starts a new connection's handshake.
if [ "$presence" = poll ]; then
	started="virtual card connected on port $((BED_PORT + 1))"
else
	started="new connection on port $((BED_PORT + 1)), asked for its ATR"
fi
handshakes0=$(grep -c "$started" "$BED_DIR/pcscd.log")
/usr/bin/python3 "$cards" silent-flood "$((BED_PORT + 1))" 120 > "$BED_DIR/flood.out" &
flood_pid=$!
# The set-up: a silent handshake has started (opensc-tool runs in it: a
# handshake lasts 1 s, or the timeout, 10 s, before the fix).
for i in $(seq 200); do
	[ "$(grep -c "$started" "$BED_DIR/pcscd.log")" -gt "$handshakes0" ] && break
	sleep 0.02
done
[ "$i" -lt 200 ] || bed_fail "the silent connections never reached the driver's handshake"
run_opensc
kill -0 "$flood_pid" 2>/dev/null || bed_fail "the silent connections ended during opensc-tool's run"
kill "$flood_pid"
wait "$flood_pid" 2>/dev/null
flood_pid=
[ "$out" = "$base_out" ] || bed_fail "opensc-tool printed [$out] with slot 1 flooded, [$base_out] without ($ms ms)"
[ "$msgs" = "$base_msgs" ] || bed_fail "the card got [$msgs] with slot 1 flooded, [$base_msgs] without ($ms ms)"
echo "ok - presence=$presence: slot 1 flooded with silent connections:" \
	"opensc-tool's output and the card's messages [$msgs] unchanged; ${ms} ms (${base_ms} ms without)"
bed_stop

# 2. A silent connection to slot 0's port before the real card.
bed_start --driver pcsctap --driver-opts "presence=$presence" --card none
/usr/bin/python3 "$cards" hostile silent "$BED_PORT" &
flood_pid=$!
for i in $(seq 100); do
	# The silent card's side: remote 127.0.0.1:PORT, state 01 (established).
	grep -q " 0100007F:$(printf '%04X' "$BED_PORT") 01 " /proc/net/tcp && break
	sleep 0.05
done
[ "$i" -lt 100 ] || bed_fail "the silent connection was never established"
t0=$(date +%s%N)
"$PCSCTAP" card --connect "127.0.0.1:$BED_PORT" --quiet --log "$BED_CARD_LOG" &
card_pid=$!
"$BED_WAIT" "$BED_READER" present 15000 || bed_fail "the real card was never seen"
present_ms=$(ms_since "$t0")
# The set-up: both were in their handshake at once, the real card won.
[ "$presence" = poll ] || grep -q "port $BED_PORT closed: another card answered first" "$BED_DIR/pcscd.log" ||
	bed_fail "the silent connection was not in its handshake when the real card answered"
kill "$flood_pid" 2>/dev/null
wait "$flood_pid" 2>/dev/null
flood_pid=
bed_wait_kind POWER_OFF 50 || bed_fail "the real card was never powered down"
run_opensc
# The reader's name differs from the first stack's: compare the ATR.
[ "$(tail -1 <<<"$out")" = "$(tail -1 <<<"$base_out")" ] ||
	bed_fail "opensc-tool printed [$out] after a silent first connection"
echo "ok - presence=$presence: a silent connection first: the real card seen in ${present_ms} ms and works"
