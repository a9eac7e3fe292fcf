#!/bin/bash
# APDU round trip through the pcsctap driver vs stock vpcd, alternating
# batches in one run, with (a) a card that does not set TCP_QUICKACK (like
# the stock vicc) and (b) one that does.  Also the added cost of markers
# per connect + disconnect.  Prints ratios measured in this run.
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || bed_skip "vpcd is not installed"
tmp=$(mktemp -d /tmp/pcsctap-bench.XXXXXX)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for d in "$tmp"/*/stack; do "$BED_STACK" stop "$d"; done
	rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME DRIVER OPTS CARDARGS: a stack and a worker on fds 3x / 4x.
start() {
	mkdir -p "$tmp/$1"
	"$BED_STACK" start "$tmp/$1/stack" --owner $$ --driver "$2" ${3:+--driver-opts "$3"} \
		--card test --card-args "--quiet $4" >/dev/null || bed_fail "stack $1"
	mkfifo "$tmp/$1/in" "$tmp/$1/out"
	(set -a; . "$tmp/$1/stack/env"; exec /usr/bin/python3 "$PROXY_TESTS/bench_worker.py" \
		< "$tmp/$1/in" > "$tmp/$1/out") &
	pids+=($!)
}
ask() {	# ask NAME CMD N -> seconds
	echo "$2 $3" >&"${FD_IN[$1]}"
	read -r secs <&"${FD_OUT[$1]}"
	echo "$secs"
}
declare -A FD_IN FD_OUT
open() {
	exec {fi}>"$tmp/$1/in"
	exec {fo}<"$tmp/$1/out"
	FD_IN[$1]=$fi FD_OUT[$1]=$fo
}
per() { awk -v s="$1" -v n="$2" 'BEGIN { printf "%.1f", s / n * 1e6 }'; }

for mode in plain quickack; do
	args=$([ $mode = quickack ] && echo --quickack)
	start vpcd-$mode vpcd "" "$args"
	start tap-$mode pcsctap "" "$args"
	open vpcd-$mode
	open tap-$mode
	ask vpcd-$mode apdu 2 >/dev/null; ask tap-$mode apdu 20 >/dev/null	# warm up
	nv=$([ $mode = plain ] && echo 20 || echo 500)
	tv=0 tt=0 cv=0 ct=0
	for round in 1 2 3 4 5; do
		s=$(ask vpcd-$mode apdu $nv); tv=$(awk -v a=$tv -v b=$s 'BEGIN { print a + b }'); cv=$((cv + nv))
		s=$(ask tap-$mode apdu 500); tt=$(awk -v a=$tt -v b=$s 'BEGIN { print a + b }'); ct=$((ct + 500))
	done
	uv=$(per "$tv" "$cv") ut=$(per "$tt" "$ct")
	ratio=$(awk -v a="$uv" -v b="$ut" 'BEGIN { printf "%.1f", a / b }')
	echo "($([ $mode = plain ] && echo a || echo b)) card ${args:-without --quickack}: stock vpcd $uv us/APDU ($cv APDUs), pcsctap $ut us/APDU ($ct APDUs): pcsctap ${ratio}x faster"
done

# Markers: connect + disconnect, with and without the two markers the shim sends.
start markers pcsctap markers=on ""
open markers
ask markers cd 5 >/dev/null
t0=0 t1=0 n=0
for round in 1 2 3 4 5; do
	s=$(ask markers cd 100); t0=$(awk -v a=$t0 -v b=$s 'BEGIN { print a + b }')
	s=$(ask markers cdm 100); t1=$(awk -v a=$t1 -v b=$s 'BEGIN { print a + b }')
	n=$((n + 100))
done
u0=$(per "$t0" "$n") u1=$(per "$t1" "$n")
echo "markers: connect+disconnect $u0 us without, $u1 us with 2 markers: +$(awk -v a="$u1" -v b="$u0" 'BEGIN { printf "%.1f", a - b }') us per connect + disconnect"
