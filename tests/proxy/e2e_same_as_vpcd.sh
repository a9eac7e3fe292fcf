#!/bin/bash
# With markers off, the test card sees the same message sequences through
# the pcsctap driver as through stock vpcd, for one fixed client scenario
# (connect, short and extended APDUs up to 65,535 bytes, transactions,
# control, attributes, every disposition).  Part 10 feature discovery and
# the ATR attribute are answered by pcsctap (stock vpcd 0.8 refuses them)
# without any message to the card: only their return codes may differ.
# With presence=poll the sequences are identical; with presence=event (the
# default) they are identical once vpcd's presence polls (GET_ATR not right
# after POWER_ON or RESET) are left out, which is the point of that mode.
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || bed_skip "vpcd is not installed"
out=$(mktemp -d /tmp/pcsctap-same.XXXXXX)
for run in vpcd poll event; do
	case $run in
	vpcd) bed_start --driver vpcd ;;
	*) bed_start --driver pcsctap --driver-opts "presence=$run" ;;
	esac
	"$PROXY_TESTS/e2e_client.py" scenario > "$out/$run.txt" || bed_fail "scenario under $run"
	bed_stop
done
cat "$out/event.txt"
# Only the return codes of the two lines pcsctap answers itself may differ.
norm() { sed -E '/^(Control\(GET_FEATURE\)|GetAttrib\(ATR\))/s/ rv=.*$//' "$1"; }
nopolls() { norm "$1" | "$PROXY_TESTS/e2e_client.py" nopolls; }
if ! diff <(norm "$out/vpcd.txt") <(norm "$out/poll.txt"); then
	rm -rf "$out"
	bed_fail "presence=poll: the card saw different sequences (< vpcd, > pcsctap)"
fi
echo "ok - presence=poll: identical message sequences to stock vpcd"
if ! diff <(nopolls "$out/vpcd.txt") <(norm "$out/event.txt"); then
	rm -rf "$out"
	bed_fail "presence=event: the card saw different sequences (< vpcd without polls, > pcsctap)"
fi
rm -rf "$out"
echo "ok - presence=event: identical message sequences to stock vpcd, less its presence polls"
