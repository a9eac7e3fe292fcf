#!/bin/bash
# random.sh — seeded random schedules: three traced processes at once,
# each a random sequence of connects, transactions, transmits, pauses and
# disconnects (contend random), for ROUNDS seeds.  After each round every
# process's markers at the card must be complete, once each, in order
# against its APDUs, seq without gaps (check_markers.py).  The seed of a
# failing round is printed: `RANDOM_SEED=N random.sh` runs that round alone.
# Env: PCSCTAP, CONTEND, CHECK_MARKERS, BED_LIB (+ bed); ROUNDS (default 8).
. "$BED_LIB"
bed_require pcscd
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"
bed_start --driver pcsctap --driver-opts markers=on --card test

rounds=${ROUNDS:-8}
first=${RANDOM_SEED:-1}
[ -n "${RANDOM_SEED:-}" ] && rounds=1
total=0 contended=0
for seed in $(seq "$first" $((first + rounds - 1))); do
	mark=$(bed_mark)
	pids=() outs=()
	for id in 1 2 3; do
		"$PCSCTAP" run -o "$BED_TMP/trace" -- "$CONTEND" random "$BED_READER" "$id" $((seed * 10 + id)) 60 \
			> "$BED_TMP/r-$id.out" 2> "$BED_TMP/r-$id.err" &
		pids+=($!)
		outs+=("$BED_TMP/r-$id.out")
	done
	for p in "${pids[@]}"; do wait "$p"; done
	"$CHECK_MARKERS" "$BED_CARD_LOG" "$mark" "${outs[@]}" > "$BED_TMP/check" ||
		bed_fail "seed $seed: $(cat "$BED_TMP/check")"
	n=$(tail -n 1 "$BED_TMP/check" | sed -E 's/.*checked: ([0-9]+).*/\1/')
	total=$((total + n))
	echo "ok seed $seed: $n markers"
done
# The set-up proves itself: some markers met another client's transaction
# (pcscd refused SCardControl; the side channel carried them).
side=$(grep -c 'pcsctap: side channel marker of pid [0-9]*: sent' "$BED_DIR/pcscd.log")
[ "$side" -gt 0 ] || bed_fail "no marker met another client's transaction: the schedules did not contend"
echo "ok: $rounds seeds, $total markers ($side through the side channel), 0 lost or misordered"
