#!/bin/bash
# Markers through the pcsctap driver: the part 10 feature answer with and
# without markers=on, protocol markers from IFDHSetProtocolParameters,
# marker forwarding from SCardControl, refusal of malformed bodies, and
# SCARD_E_UNSUPPORTED_FEATURE with markers off.  Argument: the driver's
# presence option (default event; meson runs poll too).
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
client=$PROXY_TESTS/e2e_client.py

bed_start --driver pcsctap --driver-opts "markers=on:presence=${1:-event}"
out=$("$client" features) || bed_fail "features"
echo "$out"
grep -qx 'feature 12 42330012' <<<"$out" || bed_fail "no FEATURE_GET_TLV_PROPERTIES"
grep -qx 'feature A5 423300A5' <<<"$out" || bed_fail "no marker feature with markers=on"
# TLV properties: sFirmwareID (08) and dwMaxAPDUDataSize (0A) = 65526 (f6ff0000).
grep -q '^tlv rv=00000000 props=08.*0a04f6ff0000' <<<"$out" || bed_fail "TLV properties"

for p in T0 T1; do
	m=$(bed_mark)
	"$client" protocol $p || bed_fail "connect $p"
	want=$([ $p = T0 ] && echo 0x1 || echo 0x2)
	bed_lines MARKER "$m" | grep -q "protocol protocol=$want" ||
		bed_fail "no protocol marker $want: $(bed_lines MARKER "$m")"
	# The protocol marker follows POWER_ON + GET_ATR.
	bed_kinds "$m" | tr '\n' ' ' | grep -q 'POWER_ON GET_ATR MARKER' || bed_fail "marker order: $(bed_kinds "$m" | tr '\n' ' ')"
done
echo "ok - protocol markers T=0 and T=1"

# A connect marker as the shim sends it: pid 4242, process "demo", seq 1.
body=0101010400001092030464656d6f040400000001
m=$(bed_mark)
"$client" marker "$body" | grep -qx 'rv=00000000 out=0' || bed_fail "marker not accepted"
# Wait for this marker itself: the connect may first bring a protocol
# marker, and a slow pcscd (ASan) delivers ours a moment after it.
for i in $(seq 20); do
	bed_lines MARKER "$m" | grep -q "connect pid=4242 process=demo seq=1" && break
	sleep 0.1
done
bed_lines MARKER "$m" | grep -q "connect pid=4242 process=demo seq=1" || bed_fail "marker text: $(bed_lines MARKER "$m")"
echo "ok - a marker from SCardControl reaches the card"

# Malformed bodies: refused with SCARD_E_NOT_TRANSACTED, nothing sent.
for bad in 01 0201 01010104 0101010200; do
	m=$(bed_mark)
	"$client" marker "$bad" | grep -qx 'rv=80100016 out=0' || bed_fail "malformed $bad not refused"
	# The driver's own protocol marker may follow a power-up by pcscd.
	bed_lines MARKER "$m" | cut -f3 | grep -Ev '^(protocol|reader-[a-z-]+) ' | grep -q . &&
		bed_fail "malformed $bad reached the card: $(bed_lines MARKER "$m")"
done
echo "ok - malformed markers refused"
bed_stop

bed_start --driver pcsctap
out=$("$client" features) || bed_fail "features (markers off)"
grep -q 'feature A5' <<<"$out" && bed_fail "marker feature advertised with markers off"
"$client" marker "$body" | grep -qx 'rv=8010001F out=0' || bed_fail "markers off: not SCARD_E_UNSUPPORTED_FEATURE"
"$client" protocol T1 >/dev/null
bed_kinds 0 | grep -qx MARKER && bed_fail "markers off, yet a marker reached the card"
echo "ok - markers off: no feature, SCARD_E_UNSUPPORTED_FEATURE, nothing on the wire"
