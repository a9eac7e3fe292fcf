#!/bin/bash
# opensc-tool (a dlopen user of libpcsclite) reaches the test card.
. "$BED_LIB"
bed_require pcscd opensc-tool
bed_start --card test

out=$(opensc-tool -r "$BED_READER" -a 2>&1) || bed_fail "opensc-tool -a failed: $out"
echo "$out" | grep -qx '3b:80:80:01:01' || bed_fail "opensc-tool -a did not print the card's ATR: $out"

mark=$(bed_mark)
out=$(opensc-tool -r "$BED_READER" -s 00A4040000 2>&1) || bed_fail "opensc-tool -s failed: $out"
echo "$out" | grep -q 'SW1=0x90, SW2=0x00' || bed_fail "no 9000 in: $out"
bed_lines APDU "$mark" | cut -f1,2 | grep -qx $'00A4040000\t9000' ||
	bed_fail "the card did not receive 00A4040000: $(bed_kinds "$mark" | tr '\n' ' ')"
echo "ok"
