#!/bin/bash
# Hostile cards never crash pcscd nor block it beyond the driver's timeout
# (here timeout=1000 ms): garbage, empty and oversized answers, a close in
# mid-frame, one byte per second, silence, bytes sent unasked.  After each,
# pcscd still answers and a good card can connect again.
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
client=$PROXY_TESTS/e2e_client.py
bed_start --driver pcsctap --driver-opts markers=on:timeout=1000 --card none
pcscd_pid=$(cat "$BED_DIR/pcscd.bedpid")
card_pid=
trap '[ -n "$card_pid" ] && kill "$card_pid" 2>/dev/null; bed_stop' EXIT

for mode in garbage zero oversized midframe slow silent unasked tiny; do
	/usr/bin/python3 "$PROXY_TESTS/cards.py" hostile "$mode" "$BED_PORT" &
	card_pid=$!
	# Let pcscd poll the card a few times (it polls every 0.4 s).
	sleep 2
	# A client that tries the card: it may fail, but must return.
	timeout 30 "$client" features >/dev/null 2>&1
	[ $? = 124 ] && bed_fail "$mode: a client call hung"
	kill "$card_pid" 2>/dev/null
	wait "$card_pid" 2>/dev/null
	card_pid=
	kill -0 "$pcscd_pid" 2>/dev/null || bed_fail "$mode: pcscd died"
	timeout 30 "$client" alive 10 >/dev/null || bed_fail "$mode: pcscd does not answer"
	echo "ok - $mode: pcscd alive and answering"
done

# A good card connects again, on the same port, and works.
"$PCSCTAP" card --connect "127.0.0.1:$BED_PORT" --quiet --log "$BED_CARD_LOG" &
card_pid=$!
timeout 30 "$client" present 15 || bed_fail "a good card could not connect again"
out=$(timeout 30 "$client" features 2>&1); grep -q "feature A5" <<<"$out" || bed_fail "the good card does not work: $out"
grep -c 'virtual card connected' "$BED_DIR/pcscd.log" | sed 's/^/card connections seen by the driver: /'
echo "ok - a card connects again after hostile ones"
