#!/bin/bash
# Java smartcardio (JDK 17, single-file program) against the test card.
. "$BED_LIB"
bed_require pcscd java
bed_start --card test
mark=$(bed_mark)
out=$(java "$(dirname "$0")/SmartcardIo.java" "$BED_READER" 2>&1) || bed_fail "java: $out"
echo "$out"
echo "$out" | grep -qx 'protocol T=1' || bed_fail "not connected with T=1"
echo "$out" | grep -qx 'sw 9000' || bed_fail "no 9000"
bed_lines APDU "$mark" | cut -f1 | grep -qx '00A4040000' || bed_fail "the SELECT did not reach the card"
bed_wait_kind RESET 30 "$mark" || bed_fail "disconnect(true) did not reset the card: $(bed_kinds "$mark" | tr '\n' ' ')"
echo "ok"
