#!/bin/bash
# A card that is silently gone (its host lost, a network in between) is
# still noticed with presence=event, by TCP keepalive, without a message to
# the card.  The whole stack runs in a private network namespace whose
# loopback is then taken down: from then on nothing the driver sends
# reaches the card and no FIN or RST comes back, as with a lost host.  The
# time from the loss to EMPTY is printed (keepalive: ~4 s), not asserted.
. "$BED_LIB"
bed_require pcscd unshare ip
if [ -z "${PRESENCE_SILENT_NETNS:-}" ]; then
	# Re-run inside a network namespace of our own (loopback only).
	exec env PRESENCE_SILENT_NETNS=1 unshare -n sh -c 'ip link set lo up && exec "$0" "$@"' "$0" "$@"
fi
bed_start --driver pcsctap
card_pid=$(cat "$BED_DIR/card.bedpid")
bed_wait_kind POWER_OFF 50 || bed_fail "the idle card was never powered down"
m=$(bed_mark)
t0=$(date +%s%N)
ip link set lo down || bed_fail "cannot take the loopback down"
"$BED_WAIT" "$BED_READER" absent 30000 || bed_fail "the silently lost card was never noticed"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# The set-up: the card itself never closed (it is still running) and got
# no message: the loss was noticed by keepalive alone.
kill -0 "$card_pid" 2>/dev/null || bed_fail "the card process ended: not a silent loss"
grep -q 'gone: card silent: TCP keepalive timed out' "$BED_DIR/pcscd.log" ||
	bed_fail "the driver did not drop the card for its keepalive: $(grep 'gone:' "$BED_DIR/pcscd.log")"
[ "$(bed_kinds "$m" | wc -l)" = 0 ] || bed_fail "the card got messages: $(bed_kinds "$m" | tr '\n' ' ')"
ip link set lo up
echo "ok - a silently lost card: EMPTY ${ms} ms after the loss, by TCP keepalive, no message sent"
