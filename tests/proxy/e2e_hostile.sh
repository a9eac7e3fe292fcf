#!/bin/bash
# Hostile cards never crash pcscd nor block it beyond the driver's timeout
# (here timeout=1000 ms): garbage, empty and oversized answers, a close in
# mid-frame, one byte per second, silence, bytes sent unasked.  Each card
# must first be seen at work: the driver accepted it (pcscd.log) and asked
# it for its ATR (the card's log), or, sending unasked, dropped it.  After
# each, pcscd still answers and a good card can connect again.
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
client=$PROXY_TESTS/e2e_client.py
bed_start --driver pcsctap --driver-opts markers=on:timeout=1000 --card none
pcscd_pid=$(cat "$BED_DIR/pcscd.bedpid")
card_pid=
trap '[ -n "$card_pid" ] && kill "$card_pid" 2>/dev/null; bed_stop' EXIT

# polled MODE LOG SEEN: true once the driver has met this card: it logged
# the connection (after the SEEN lines of pcscd.log: a new connection in its
# handshake, or a card taken as connected) and either asked the card for
# its ATR or dropped it for sending unasked.
polled() {
	local mode=$1 log=$2 seen=$3 since
	since=$(tail -n +$((seen + 1)) "$BED_DIR/pcscd.log")
	grep -Eq "(virtual card connected|new connection) on port $BED_PORT\b" <<<"$since" || return 1
	cut -f2 "$log" 2>/dev/null | grep -qx GET_ATR && return 0
	[ "$mode" = unasked ] && grep -q "port $BED_PORT gone: card sent data unasked" <<<"$since"
}

for mode in garbage zero oversized midframe slow silent unasked tiny; do
	log=$BED_TMP/hostile-$mode.log
	seen=$(wc -l < "$BED_DIR/pcscd.log")
	/usr/bin/python3 "$PROXY_TESTS/cards.py" hostile "$mode" "$BED_PORT" "$log" &
	card_pid=$!
	for i in $(seq 150); do
		polled "$mode" "$log" "$seen" && break
		sleep 0.1
	done
	polled "$mode" "$log" "$seen" ||
		bed_fail "$mode: the driver never polled the hostile card (card log: $(cut -f2 "$log" 2>/dev/null | tr '\n' ' '))"
	# A client that tries the card: it may fail, but must return.
	timeout 30 "$client" features >/dev/null 2>&1
	[ $? = 124 ] && bed_fail "$mode: a client call hung"
	kill "$card_pid" 2>/dev/null
	wait "$card_pid" 2>/dev/null
	card_pid=
	kill -0 "$pcscd_pid" 2>/dev/null || bed_fail "$mode: pcscd died"
	timeout 30 "$client" alive 10 >/dev/null || bed_fail "$mode: pcscd does not answer"
	echo "ok - $mode: polled ($(cut -f2 "$log" | grep -cx GET_ATR) GET_ATR), pcscd alive and answering"
done

# A good card connects again, on the same port, and works.
"$PCSCTAP" card --connect "127.0.0.1:$BED_PORT" --quiet --log "$BED_CARD_LOG" &
card_pid=$!
timeout 30 "$client" present 15 3B80800101 || bed_fail "a good card could not connect again"
out=$(timeout 30 "$client" features 2>&1); grep -q "feature A5" <<<"$out" || bed_fail "the good card does not work: $out"
grep -c 'virtual card connected' "$BED_DIR/pcscd.log" | sed 's/^/card connections seen by the driver: /'
echo "ok - a card connects again after hostile ones"
