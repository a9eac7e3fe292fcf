#!/bin/bash
# markers.sh — session markers end to end: the shim under `pcsctap run`,
# the pcsctap driver with markers=on, the test card logging every MARKER.
# Asserts the exact shim marker sequence at the card per scenario (pid,
# handle and timestamps normalised; the driver's own protocol and
# occupancy markers left out), then that stock vpcd is never sent a marker.
# Env: PCSCTAP, PCSCTAP_DRIVER, MARKER_CLIENT, TRACE_SQL, BED_LIB (+ bed).
. "$BED_LIB"
bed_require pcscd
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"
bed_start --driver pcsctap --driver-opts markers=on --card test
n=0

# The shim's markers logged after MARK, normalised, one per line.
markers_since() {
	bed_lines MARKER "$1" | cut -f3 | grep -Ev '^(protocol|reader-[a-z-]+) ' |
		sed -E 's/pid=[0-9]+ //; s/handle=0x[0-9a-f]+ //; s/ t=[0-9]+$//'
}

# scenario NAME EXPECTED STEP...: one client run under pcsctap run.
scenario() {
	local name=$1 expected=$2 mark got
	shift 2
	mark=$(bed_mark)
	"$PCSCTAP" run -o "$BED_TMP/trace" -- "$MARKER_CLIENT" "$BED_READER" "$@" > "$BED_TMP/out" 2>&1 ||
		bed_fail "$name: the client failed: $(cat "$BED_TMP/out")"
	got=$(markers_since "$mark")
	[ "$got" = "$expected" ] || bed_fail "$name: the card saw
$got
expected
$expected"
	n=$((n + 1))
}

P="process=marker-client"
for d in leave:0 reset:1 unpower:2 eject:3; do
	scenario "disposition ${d%:*}" \
"connect $P seq=1 share=2 preferred=0x2 protocol=0x2
disconnect $P seq=2 share=2 preferred=0x2 protocol=0x2 disposition=${d#*:}" \
		connect:shared:t1 transmit "disconnect:${d%:*}"
done
scenario "exclusive" \
"connect $P seq=1 share=1 preferred=0x2 protocol=0x2
disconnect $P seq=2 share=1 preferred=0x2 protocol=0x2 disposition=1" \
	connect:exclusive:t1 transmit disconnect:reset
for p in t0:0x1:0x1 t1:0x2:0x2 t01:0x3:0x2 raw:0x4:0x4; do
	IFS=: read -r word pref active <<< "$p"
	scenario "protocol $word" \
"connect $P seq=1 share=2 preferred=$pref protocol=$active
disconnect $P seq=2 share=2 preferred=$pref protocol=$active disposition=1" \
		"connect:shared:$word" transmit disconnect:reset
done
scenario "transactions and reconnect" \
"connect $P seq=1 share=2 preferred=0x2 protocol=0x2
begin-transaction $P seq=2 share=2 preferred=0x2 protocol=0x2
end-transaction $P seq=3 share=2 preferred=0x2 protocol=0x2 disposition=0
reconnect $P seq=4 share=1 preferred=0x3 protocol=0x2 disposition=1
begin-transaction $P seq=5 share=1 preferred=0x3 protocol=0x2
end-transaction $P seq=6 share=1 preferred=0x3 protocol=0x2 disposition=1
disconnect $P seq=7 share=1 preferred=0x3 protocol=0x2 disposition=0" \
	connect:shared:t1 begin transmit end:leave reconnect:exclusive:t01:reset \
	begin transmit end:reset disconnect:leave

# Two processes interleaving in shared mode: A connects, B connects, A
# disconnects, B disconnects; each is its own client (pid + handle).
mark=$(bed_mark)
mkfifo "$BED_TMP/a.in" "$BED_TMP/b.in"
"$PCSCTAP" run -o "$BED_TMP/trace" -- "$MARKER_CLIENT" "$BED_READER" connect:shared:t1 wait disconnect:leave \
	< "$BED_TMP/a.in" > "$BED_TMP/a.out" 2>&1 &
a=$!
exec 7> "$BED_TMP/a.in"
for i in $(seq 100); do grep -q '^connect' "$BED_TMP/a.out" && break; sleep 0.1; done
"$PCSCTAP" run -o "$BED_TMP/trace" -- "$MARKER_CLIENT" "$BED_READER" connect:shared:t1 wait disconnect:leave \
	< "$BED_TMP/b.in" > "$BED_TMP/b.out" 2>&1 &
b=$!
exec 8> "$BED_TMP/b.in"
for i in $(seq 100); do grep -q '^connect' "$BED_TMP/b.out" && break; sleep 0.1; done
echo >&7; exec 7>&-; wait $a || bed_fail "client A failed"
echo >&8; exec 8>&-; wait $b || bed_fail "client B failed"
got=$(bed_lines MARKER "$mark" | cut -f3 | grep -Ev '^(protocol|reader-[a-z-]+) ' | sed -E 's/ t=[0-9]+$//' |
	awk '{ print $1, $2, $5 }' | sed -E 's/pid=//')
pids=$(echo "$got" | awk '{ print $2 }' | uniq | tr '\n' ' ')
set -- $pids
[ $# -ge 2 ] || bed_fail "interleaving: one process only: $got"
pa=$1 pb=$2
expected="connect $pa seq=1
connect $pb seq=1
disconnect $pa seq=2
disconnect $pb seq=2"
[ "$got" = "$expected" ] || bed_fail "interleaving: the card saw
$got
expected
$expected"
n=$((n + 1))

# Killed with SIGKILL mid-session (inside a transaction): the card sees the
# connect and begin markers and nothing from the client after that; pcscd
# then releases the dead client's handle and transaction, and powers the
# idle card down (POWER_OFF) as after any last disconnect.
mark=$(bed_mark)
"$PCSCTAP" run -o "$BED_TMP/trace" -- "$MARKER_CLIENT" "$BED_READER" connect:shared:t1 begin pause \
	> "$BED_TMP/k.out" 2>&1 &
k=$!
for i in $(seq 100); do grep -q '^paused' "$BED_TMP/k.out" && break; sleep 0.1; done
kpid=$(pgrep -P "$k" -x marker-client) || bed_fail "no client under pcsctap run"
kill -KILL "$kpid"
wait $k
[ $? = $((128 + 9)) ] || bed_fail "pcsctap run did not report the SIGKILL as 137"
bed_wait_kind POWER_OFF 50 "$mark" || bed_fail "the card was never powered off after the kill"
got=$(markers_since "$mark" | awk '{ print $1, $3 }')
[ "$got" = "connect seq=1
begin-transaction seq=2" ] || bed_fail "SIGKILL: the card saw $got"
n=$((n + 1))

# --no-markers: the shim sends none (the driver's protocol markers remain).
mark=$(bed_mark)
"$PCSCTAP" run --no-markers -o "$BED_TMP/trace-off" -- "$MARKER_CLIENT" "$BED_READER" connect:shared:t1 transmit disconnect:leave >/dev/null 2>&1 ||
	bed_fail "--no-markers: the client failed"
[ -z "$(markers_since "$mark")" ] || bed_fail "--no-markers: the card saw $(markers_since "$mark")"
[ "$("$TRACE_SQL" "$BED_TMP/trace-off" "SELECT count(*) FROM markers")" = 0 ] || bed_fail "--no-markers: markers in the trace"
n=$((n + 1))

# Every marker the shim sent is in the trace with its SCardControl result.
"$TRACE_SQL" "$BED_TMP/trace" "SELECT count(*), sum(rv != 0) FROM markers" | grep -qx $'[1-9][0-9]*\t0' ||
	bed_fail "markers in the trace: $("$TRACE_SQL" "$BED_TMP/trace" "SELECT count(*), sum(rv != 0) FROM markers")"
bed_stop

# Stock vpcd answers feature discovery without the pcsctap tag: no marker.
bed_start --driver vpcd --card test
mark=$(bed_mark)
"$PCSCTAP" run -o "$BED_TMP/trace-vpcd" -- "$MARKER_CLIENT" "$BED_READER" connect:shared:t1 begin transmit end:leave disconnect:reset >/dev/null 2>&1 ||
	bed_fail "stock vpcd: the client failed"
bed_kinds "$mark" | grep -qx MARKER && bed_fail "stock vpcd: the card saw a marker"
[ "$("$TRACE_SQL" "$BED_TMP/trace-vpcd" "SELECT count(*) FROM markers")" = 0 ] || bed_fail "stock vpcd: markers in the trace"
[ "$("$TRACE_SQL" "$BED_TMP/trace-vpcd" "SELECT count(*) FROM calls WHERE fn = 12 AND rv = 0")" = 1 ] ||
	bed_fail "stock vpcd: the transmit is not in the trace"
n=$((n + 1))
echo "ok: $n marker scenarios"
