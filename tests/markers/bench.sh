#!/bin/bash
# bench.sh — what markers add to SCardConnect and SCardDisconnect, with
# and without contention, against untraced runs in the same stack and the
# same minute.  Prints medians in microseconds and the added time; never
# fails on time.
#
#  - pair: one process, two handles; B's disconnect(LEAVE) while A holds a
#    transaction (its marker meets the violation and takes the side
#    channel), B's connect and disconnect when the card is free.
#  - holder: an untraced holder at 50 % (150/150 ms) and a guest that
#    connects and disconnects repeatedly (connects wait for the holder as
#    they would untraced; the figure is mostly that wait).
# Env: PCSCTAP, CONTEND, BED_LIB (+ bed); BENCH_ROUNDS (default 300).
. "$BED_LIB"
bed_require pcscd
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"
bed_start --driver pcsctap --driver-opts markers=on --card test
rounds=${BENCH_ROUNDS:-300}
holder_pid=
trap '[ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null; bed_stop' EXIT

echo "load: $(uptime)"
# run NAME: pair figures of one run, as "metric value" lines
pair() {
	case $1 in
	untraced) "$CONTEND" pair "$BED_READER" "$rounds" ;;
	markers) "$PCSCTAP" run -o "$BED_TMP/trace" -- "$CONTEND" pair "$BED_READER" "$rounds" 2>/dev/null ;;
	no-markers) "$PCSCTAP" run --no-markers -o "$BED_TMP/trace-off" -- "$CONTEND" pair "$BED_READER" "$rounds" 2>/dev/null ;;
	esac | grep -v '^pid '
}
side0=$(grep -c 'side channel marker of pid [0-9]*: sent' "$BED_DIR/pcscd.log")
for run in untraced markers no-markers; do pair "$run" > "$BED_TMP/pair-$run"; done
side=$(( $(grep -c 'side channel marker of pid [0-9]*: sent' "$BED_DIR/pcscd.log") - side0 ))
echo "pair, $rounds rounds (medians, us); $side markers took the side channel"
printf '%-18s %9s %9s %9s %9s\n' metric untraced markers added ratio
join "$BED_TMP/pair-untraced" "$BED_TMP/pair-markers" |
	awk '{ printf "%-18s %9d %9d %+9d %9.2f\n", $1, $2, $3, $3 - $2, $2 ? $3 / $2 : 0 }'
printf '%-18s %9s %9s %9s %9s\n' metric untraced no-mark added ratio
join "$BED_TMP/pair-untraced" "$BED_TMP/pair-no-markers" |
	awk '{ printf "%-18s %9d %9d %+9d %9.2f\n", $1, $2, $3, $3 - $2, $2 ? $3 / $2 : 0 }'

"$CONTEND" holder "$BED_READER" 150 150 600 > "$BED_TMP/holder.out" 2>&1 &
holder_pid=$!
for i in $(seq 100); do grep -q '^holding' "$BED_TMP/holder.out" && break; sleep 0.1; done
sessions=$((rounds / 10))
median() {
	grep "^$1 " "$2" | awk '{ print $2 }' | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int(NR / 2) + 1] : 0 }'
}
CONTEND_TIMES=$BED_TMP/h-untraced "$CONTEND" guest "$BED_READER" 1 1 0 leave "$sessions" > /dev/null
CONTEND_TIMES=$BED_TMP/h-markers "$PCSCTAP" run -o "$BED_TMP/trace" -- "$CONTEND" guest "$BED_READER" 1 1 0 leave "$sessions" > /dev/null 2>&1
echo "holder at 50 %, $sessions sessions (medians, us)"
printf '%-18s %9s %9s %9s\n' metric untraced markers added
for m in connect disconnect; do
	u=$(median "$m" "$BED_TMP/h-untraced") t=$(median "$m" "$BED_TMP/h-markers")
	printf '%-18s %9d %9d %+9d\n' "$m" "$u" "$t" $((t - u))
done
echo "load: $(uptime)"
