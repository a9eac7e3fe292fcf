#!/bin/bash
# Event-driven presence (presence=event, the default; docs/driver.md):
#  1. an idle card gets no message in 10 s (presence=poll, the control,
#     gets vpcd's GET ATR polls);
#  2. a card that drops and connects again is reported removed and
#     inserted, and works;
#  3. two slots: each card is seen, one leaving does not touch the other;
#  4. pcscd killed and started again while the card waits: the card is
#     seen again and works;
#  5. connections that close at once (before or right after their ATR)
#     leave the reader empty and pcscd answering; a good card then works.
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
client=$PROXY_TESTS/e2e_client.py
cards=$PROXY_TESTS/cards.py
card2_pid=
trap '[ -n "$card2_pid" ] && kill "$card2_pid" 2>/dev/null; bed_stop' EXIT

# count KIND MARK: messages of KIND in the card log since MARK.
count() {
	bed_kinds "$2" | grep -cx "$1"
}

# 1. Idle card.  The control first: presence=poll polls (proves the count).
bed_start --driver pcsctap --driver-opts presence=poll
bed_wait_kind POWER_OFF 50 || bed_fail "poll: the idle card was never powered down"
m=$(bed_mark)
sleep 2
polls=$(count GET_ATR "$m")
[ "$polls" -ge 2 ] || bed_fail "poll: only $polls GET ATR in 2 s: the count does not see polls"
bed_stop
bed_start --driver pcsctap
# The card was seen: its handshake GET ATR, then pcscd's power-up.
[ "$(bed_kinds 0 | grep -vx CONNECTED | head -3 | tr '\n' ' ')" = "GET_ATR POWER_ON GET_ATR " ] ||
	bed_fail "event: unexpected first messages: $(bed_kinds 0 | tr '\n' ' ')"
bed_wait_kind POWER_OFF 50 || bed_fail "event: the idle card was never powered down"
m=$(bed_mark)
sleep 10
n=$(bed_kinds "$m" | wc -l)
[ "$n" = 0 ] || bed_fail "event: the idle card got $n messages in 10 s: $(bed_kinds "$m" | sort | uniq -c | tr '\n' ' ')"
echo "ok - idle card: 0 messages in 10 s (presence=poll: $polls GET ATR in 2 s)"
bed_stop

# 2. A card that drops (--drop-on) and connects again at once.
bed_start --driver pcsctap --card-args "--drop-on 00B0"
removed0=$(grep -c 'Card Removed' "$BED_DIR/pcscd.log")
inserted0=$(grep -c 'Card inserted' "$BED_DIR/pcscd.log")
out=$(/usr/bin/python3 - <<-'EOF'
	import os
	from smartcard.scard import *
	rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
	rv, card, proto = SCardConnect(ctx, os.environ["BED_READER"], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)
	rv, resp = SCardTransmit(card, SCARD_PCI_T1, [0x00, 0xB0, 0x00, 0x00, 0x00])
	print("%08X" % (rv & 0xFFFFFFFF))
	EOF
)
[ "$out" = 8010000C ] || bed_fail "reconnect: the dropped APDU gave $out, not SCARD_E_NO_SMARTCARD"
"$BED_WAIT" "$BED_READER" present 15000 || bed_fail "reconnect: the card never came back"
for i in $(seq 100); do
	[ "$(grep -c 'Card inserted' "$BED_DIR/pcscd.log")" -gt "$inserted0" ] && break
	sleep 0.1
done
[ "$(grep -c 'Card Removed' "$BED_DIR/pcscd.log")" -gt "$removed0" ] || bed_fail "reconnect: pcscd never saw the card go"
[ "$(grep -c 'Card inserted' "$BED_DIR/pcscd.log")" -gt "$inserted0" ] || bed_fail "reconnect: pcscd never saw the card come back"
[ "$(grep -c $'\tCONNECTED\t' "$BED_CARD_LOG")" -ge 2 ] || bed_fail "reconnect: the card did not connect twice"
out=$(timeout 30 "$client" features 2>&1); grep -q "feature 12" <<<"$out" || bed_fail "reconnect: the card does not work: $out"
echo "ok - a card that drops and reconnects is removed, inserted and works"
bed_stop

# 3. Two slots.
bed_start --driver pcsctap
"$PCSCTAP" card --connect "127.0.0.1:$((BED_PORT + 1))" --atr 3B8180018080 --quiet \
	--log "$BED_DIR/card2.log" &
card2_pid=$!
"$BED_WAIT" "$BED_READER2" present 15000 || bed_fail "two slots: slot 1's card never showed up"
"$BED_WAIT" "$BED_READER" present 1000 || bed_fail "two slots: slot 0's card is gone"
BED_READER=$BED_READER2 timeout 30 "$client" present 5 3B8180018080 >/dev/null ||
	bed_fail "two slots: slot 1 does not show its card's ATR"
kill "$card2_pid"
wait "$card2_pid" 2>/dev/null
card2_pid=
"$BED_WAIT" "$BED_READER2" absent 15000 || bed_fail "two slots: slot 1's card never left"
"$BED_WAIT" "$BED_READER" present 1000 || bed_fail "two slots: slot 0's card left with slot 1's"
out=$(timeout 30 "$client" features 2>&1); grep -q "feature 12" <<<"$out" || bed_fail "two slots: slot 0 does not work: $out"
echo "ok - two slots: each card seen, slot 1 leaving leaves slot 0 working"

# 4. pcscd killed and started again; the card keeps trying to connect.
connected0=$(grep -c $'\tCONNECTED\t' "$BED_CARD_LOG")
"$BED_STACK" pcscd-stop "$BED_DIR" || bed_fail "pcscd-stop failed"
"$BED_STACK" pcscd-start "$BED_DIR" || bed_fail "pcscd-start: the card was not seen again"
[ "$(grep -c $'\tCONNECTED\t' "$BED_CARD_LOG")" -gt "$connected0" ] || bed_fail "pcscd restart: the card did not connect again"
out=$(timeout 30 "$client" features 2>&1); grep -q "feature 12" <<<"$out" || bed_fail "pcscd restart: the card does not work: $out"
echo "ok - pcscd killed and restarted with the card waiting: seen again, works"
bed_stop

# 5. Connections that close at once, with no card in the reader.
bed_start --driver pcsctap --card none
pcscd_pid=$(cat "$BED_DIR/pcscd.bedpid")
timeout 60 /usr/bin/python3 "$cards" flash "$BED_PORT" 20 || bed_fail "flash: the connections failed"
kill -0 "$pcscd_pid" 2>/dev/null || bed_fail "flash: pcscd died"
"$BED_WAIT" "$BED_READER" absent 15000 || bed_fail "flash: the reader is not empty afterwards"
n=$(grep -c 'virtual card connected' "$BED_DIR/pcscd.log")
[ "$n" -ge 1 ] || bed_fail "flash: no connection reached the driver's handshake"
timeout 30 "$client" alive 10 >/dev/null || bed_fail "flash: pcscd does not answer"
"$PCSCTAP" card --connect "127.0.0.1:$BED_PORT" --quiet --log "$BED_CARD_LOG" &
card2_pid=$!
timeout 30 "$client" present 15 3B80800101 >/dev/null || bed_fail "flash: a good card could not connect afterwards"
out=$(timeout 30 "$client" features 2>&1); grep -q "feature 12" <<<"$out" || bed_fail "flash: the good card does not work: $out"
echo "ok - 40 connections that close at once: reader empty, pcscd alive ($n adopted and gone), a good card works"
