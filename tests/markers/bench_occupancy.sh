#!/bin/bash
# bench_occupancy.sh — latency of occupancy markers (issue 16): connect and
# disconnect of an untraced client to reader-in-use / reader-free at the
# card, against the end of a session a card saw before (pcscd's POWER_OFF)
# in the same run (bench_occupancy.py); and what the watcher costs an APDU
# (markers on vs off, shared and exclusive sessions, alternating batches in
# one run).  Never fails on time.
# Env: BENCH_SESSIONS (default 50), BENCH_COLD (default 20), BED_LIB (+ bed).
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
bed_start --driver pcsctap --driver-opts markers=on --card test
bench=$(dirname "$0")/bench_occupancy.py
"$bench" "${BENCH_SESSIONS:-50}" "${BENCH_COLD:-20}" || bed_fail "benchmark client"
echo "pcscd log lines of the watcher's queries: $(grep -c 'CMD_GET_READERS_STATE' "$BED_DIR/pcscd.log") in total"
on_env=$BED_DIR/env
off=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-occbench.XXXXXX")
trap '"$BED_STACK" stop "$off/stack"; rm -rf "$off"; bed_stop' EXIT
"$BED_STACK" start "$off/stack" --owner $$ --driver pcsctap --card test >/dev/null || bed_fail "markers-off stack"
# apdus ENV: one batch against the stack of ENV.
apdus() { (set -a; . "$1"; exec "$bench" apdus 200); }
for i in 1 2 3; do
	apdus "$on_env" | sed 's/^/on /'
	apdus "$off/stack/env" | sed 's/^/off /'
done > "$off/apdus"
for mode in shared exclusive; do
	awk -v m="$mode" '$2 == m { v[$1] = v[$1] " " $3 }
		END { printf "APDU round trip, %s session (median of 3 batches of 200, us): markers off%s | on%s\n", m, v["off"], v["on"] }' "$off/apdus"
done
echo "load: $(uptime)"
