#!/bin/bash
# bench_occupancy.sh — latency of occupancy markers (issue 16): connect and
# disconnect of an untraced client to reader-in-use / reader-free at the
# card, against the end of a session a card saw before (pcscd's POWER_OFF)
# in the same run (bench_occupancy.py).  Never fails on time.
# Env: BENCH_SESSIONS (default 50), BENCH_COLD (default 20), BED_LIB (+ bed).
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
bed_start --driver pcsctap --driver-opts markers=on --card test
"$(dirname "$0")/bench_occupancy.py" "${BENCH_SESSIONS:-50}" "${BENCH_COLD:-20}" || bed_fail "benchmark client"
echo "pcscd log lines of the watcher's queries: $(grep -c 'CMD_GET_READERS_STATE' "$BED_DIR/pcscd.log") in total"
