#!/bin/bash
# pyscard (Debian's /usr/bin/python3) against the test card.
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard (python3-pyscard) is not installed"
bed_start --card test
/usr/bin/python3 "$(dirname "$0")/pyscard_dispositions.py" || bed_fail "pyscard scenario"
