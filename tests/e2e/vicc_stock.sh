#!/bin/bash
# Debian's stock Python vicc behind stock vpcd answers a real client.
. "$BED_LIB"
bed_require pcscd opensc-tool vicc
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || bed_skip "vpcd is not installed"
bed_start --driver vpcd --card vicc

# vicc's iso7816 card type has this ATR.
out=$(opensc-tool -r "$BED_READER" -a 2>&1) || bed_fail "opensc-tool -a failed: $out"
echo "$out" | grep -q '^3b:' || bed_fail "no ATR from vicc: $out"
out=$(opensc-tool -r "$BED_READER" -s 00840000 08 2>&1) || bed_fail "GET CHALLENGE failed: $out"
echo "$out" | grep -q 'Received (SW1=0x90, SW2=0x00)' || bed_fail "vicc did not answer GET CHALLENGE with 9000: $out"
echo "ok"
