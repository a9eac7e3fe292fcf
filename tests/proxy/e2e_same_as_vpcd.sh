#!/bin/bash
# With markers off, the test card sees the same message sequences through
# the pcsctap driver as through stock vpcd, for one fixed client scenario
# (connect, short and extended APDUs up to 65,535 bytes, transactions,
# control, attributes, every disposition).  Part 10 feature discovery and
# the ATR attribute are answered by pcsctap (stock vpcd 0.8 refuses them)
# without any message to the card: only their return codes may differ.
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || bed_skip "vpcd is not installed"
out=$(mktemp -d /tmp/pcsctap-same.XXXXXX)
for driver in vpcd pcsctap; do
	bed_start --driver "$driver"
	"$PROXY_TESTS/e2e_client.py" scenario > "$out/$driver.txt" || bed_fail "scenario under $driver"
	bed_stop
done
cat "$out/pcsctap.txt"
# Only the return codes of the two lines pcsctap answers itself may differ.
norm() { sed -E '/^(Control\(GET_FEATURE\)|GetAttrib\(ATR\))/s/ rv=.*$//' "$1"; }
if ! diff <(norm "$out/vpcd.txt") <(norm "$out/pcsctap.txt"); then
	rm -rf "$out"
	bed_fail "the card saw different sequences (< vpcd, > pcsctap)"
fi
rm -rf "$out"
echo "ok - identical message sequences to stock vpcd"
