#!/bin/bash
# vpcd's reversed mode (DEVICENAME host:PORT: the driver connects to a
# listening card) with the pcsctap driver.  Stock vpcd 3.3 is not tested
# here: with no card listening on its second port it passes fd -1 to
# FD_SET and pcscd aborts ("bit out of range 0 - FD_SETSIZE").
. "$BED_LIB"
bed_require pcscd opensc-tool
bed_start --driver pcsctap --reversed --card test
out=$(opensc-tool -r "$BED_READER" -s 00A4040000 2>&1) || bed_fail "opensc-tool: $out"
echo "$out" | grep -q 'SW1=0x90, SW2=0x00' || bed_fail "no 9000: $out"
bed_lines APDU | cut -f1 | grep -qx 00A4040000 || bed_fail "the APDU did not reach the card"
pid=$(cat "$BED_DIR/pcscd.bedpid")
kill -0 "$pid" || bed_fail "pcscd died"
echo "ok - reversed mode with the pcsctap driver"
