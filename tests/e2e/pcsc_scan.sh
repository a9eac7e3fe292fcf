#!/bin/bash
# pcsc_scan (an SCardGetStatusChange loop) sees the reader and the card's ATR.
. "$BED_LIB"
bed_require pcscd pcsc_scan
bed_start --card test

out=$(pcsc_scan -t 3 -n 2>&1)
echo "$out" | grep -q "$BED_READER" || bed_fail "pcsc_scan did not list $BED_READER: $out"
echo "$out" | grep -q '3B 80 80 01 01' || bed_fail "pcsc_scan did not show the ATR: $out"
echo "$out" | grep -q 'Card inserted' || bed_fail "pcsc_scan did not see the card: $out"
echo "ok"
