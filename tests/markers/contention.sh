#!/bin/bash
# contention.sh — markers under contention (issue 12): an untraced holder
# loops SCardBeginTransaction, one APDU, ON ms, SCardEndTransaction, OFF
# ms, while one or two guests run under `pcsctap run`: connect, APDUs,
# disconnect.  For each duty cycle the card's log must hold every guest's
# markers exactly once, in order against its APDUs, seq without gaps
# (check_markers.py); each guest's output and exit status must equal an
# untraced run of the same guest against the same holder.
# The contention is certain, not left to the duty cycle: each traced
# guest cues the holder after its last APDU (contend.c, CONTEND_CUE) and
# disconnects only once the holder holds a transaction, which it ends only
# after the card saw the guest's disconnect marker (or the disconnect
# returned).  The set-up proves itself per scenario: the holder served
# every disconnect's cue, and the driver took at least that many markers
# of each guest through the side channel, which the shim uses only after
# pcscd refused a marker for another handle's transaction.
# Env: PCSCTAP, CONTEND, CHECK_MARKERS, BED_LIB (+ bed).
. "$BED_LIB"
bed_require pcscd
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"
bed_start --driver pcsctap --driver-opts markers=on --card test
# Inside pcscd's mount namespace, $BED_DIR is /run/pcscd.
SIDE_DIR_IN_PCSCD=/run/pcscd
holder_pid=
trap 'stop_holder; bed_stop' EXIT

stop_holder() {
	[ -n "$holder_pid" ] || return 0
	kill "$holder_pid" 2>/dev/null
	wait "$holder_pid" 2>/dev/null
	holder_pid=
}

# start_holder ON OFF: the untraced holder, serving cues at $BED_TMP/cue,
# once it holds its first transaction.
start_holder() {
	"$CONTEND" holder "$BED_READER" "$1" "$2" 120 "$BED_TMP/cue" "$BED_CARD_LOG" > "$BED_TMP/holder.out" 2>&1 &
	holder_pid=$!
	for i in $(seq 100); do grep -q '^holding' "$BED_TMP/holder.out" && return 0; sleep 0.1; done
	bed_fail "the holder never held a transaction"
}

# guests N APDUS GAP DISP TRACED: N guests at once; outputs in $BED_TMP/g-ID.out.
# Traced guests cue the holder when $cue names its socket.
guests() {
	local n=$1 apdus=$2 gap=$3 disp=$4 traced=$5 id pids=() rc=0
	for id in $(seq "$n"); do
		if [ "$traced" = yes ]; then
			CONTEND_CUE=$cue "$PCSCTAP" run -o "$BED_TMP/trace" -- "$CONTEND" guest "$BED_READER" "$id" "$apdus" "$gap" "$disp" "$sessions" \
				> "$BED_TMP/g-$id.out" 2> "$BED_TMP/g-$id.err" &
		else
			"$CONTEND" guest "$BED_READER" "$id" "$apdus" "$gap" "$disp" "$sessions" \
				> "$BED_TMP/u-$id.out" 2> "$BED_TMP/u-$id.err" &
		fi
		pids+=($!)
	done
	for id in $(seq "$n"); do
		wait "${pids[$((id - 1))]}"
		echo $? > "$BED_TMP/$([ "$traced" = yes ] && echo g || echo u)-$id.rc"
	done
}

# proven_contention NAME GUESTS PCSCD_MARK: every traced guest's
# disconnects were cued and met the holder's transaction (the set-up
# proves itself).
proven_contention() {
	local name=$1 n=$2 mark=$3 id pid n_disc side cues served
	cues=$(grep -c '^cue ' "$BED_TMP/holder.out")
	served=$(grep -cE '^cue [0-9]+ 0x[0-9a-f]+ (marker|returned)$' "$BED_TMP/holder.out")
	[ "$served" = "$cues" ] ||
		bed_fail "$name: the holder did not serve every cue: $(grep '^cue ' "$BED_TMP/holder.out")"
	n_disc=0
	for id in $(seq "$n"); do
		n_disc=$((n_disc + $(grep -c '^disconnect ' "$BED_TMP/g-$id.out")))
	done
	[ "$cues" = "$n_disc" ] || bed_fail "$name: $cues cues for $n_disc disconnects (set-up)"
	for id in $(seq "$n"); do
		pid=$(head -n 1 "$BED_TMP/g-$id.out" | cut -d' ' -f2)
		side=$(tail -n +$((mark + 1)) "$BED_DIR/pcscd.log" |
			grep -c "pcsctap: side channel marker of pid $pid: sent")
		[ "$side" -ge "$(grep -c '^disconnect ' "$BED_TMP/g-$id.out")" ] ||
			bed_fail "$name: guest $id: $side markers through the side channel, fewer than its cued disconnects (set-up)"
	done
	side_total=$((side_total + n_disc))
}

# scenario NAME ON OFF GUESTS APDUS GAP DISP [SESSIONS]
scenario() {
	local name=$1 on=$2 off=$3 n=$4 apdus=$5 gap=$6 disp=$7 mark pcscd_mark outs=() id holder_out t0=$SECONDS
	sessions=${8:-1}
	rm -f "$BED_TMP"/g-* "$BED_TMP"/u-*
	cue=
	if [ "$on" -gt 0 ]; then
		start_holder "$on" "$off"
		cue=$BED_TMP/cue
	fi
	mark=$(bed_mark)
	pcscd_mark=$(wc -l < "$BED_DIR/pcscd.log")
	guests "$n" "$apdus" "$gap" "$disp" yes
	for id in $(seq "$n"); do outs+=("$BED_TMP/g-$id.out"); done
	holder_out=$([ "$on" -gt 0 ] && echo "$BED_TMP/holder.out")
	HOLDER_OUT=$holder_out "$CHECK_MARKERS" "$BED_CARD_LOG" "$mark" "${outs[@]}" > "$BED_TMP/check" ||
		bed_fail "$name: $(cat "$BED_TMP/check")"
	[ -z "$cue" ] || proven_contention "$name" "$n" "$pcscd_mark"
	# Untraced guests have no marker to wait for: they do not cue.
	cue=
	guests "$n" "$apdus" "$gap" "$disp" no
	stop_holder
	for id in $(seq "$n"); do
		diff <(tail -n +2 "$BED_TMP/u-$id.out") <(tail -n +2 "$BED_TMP/g-$id.out") > /dev/null ||
			bed_fail "$name: guest $id's output differs under pcsctap run:
$(diff <(tail -n +2 "$BED_TMP/u-$id.out") <(tail -n +2 "$BED_TMP/g-$id.out"))"
		cmp -s "$BED_TMP/u-$id.rc" "$BED_TMP/g-$id.rc" ||
			bed_fail "$name: guest $id exit $(cat "$BED_TMP/g-$id.rc") traced, $(cat "$BED_TMP/u-$id.rc") untraced"
		# `pcsctap run` itself says where the trace is; the shim says nothing.
		! grep -v '^pcsctap: trace in ' "$BED_TMP/g-$id.err" ||
			bed_fail "$name: guest $id wrote to stderr (above)"
	done
	echo "ok $name: $(tail -n 1 "$BED_TMP/check") ($((SECONDS - t0)) s)"
}

# Each traced session meets a cued transaction (proven_contention); the
# duty cycles vary what else meets the holder: connects that wait for it,
# transmits that pcsc-lite retries, markers and discoveries it refuses.
# pcscd lets a waiting SCardConnect look for a free card every 100 ms,
# so at 95 % a connect waits ~2 s: those cases are kept short.
side_total=0
#        name                        on   off guests apdus gap disp sessions
scenario "no holder (0 %)"            0    0   1      3     70  leave
scenario "issue 12 (50 %, 8 runs)"    150  150 1      3     70  leave 8
scenario "short transactions (50 %)"  5    5   2      3     10  leave 4
scenario "long transactions (80 %)"   800  200 1      3     150 leave 2
scenario "busy holder (95 %)"         95   5   1      2     10  leave
scenario "reset under contention"     150  150 1      3     70  reset 3
scenario "many sessions (50 %)"       20   20  2      2     5   leave 8
echo "ok: $side_total cued disconnect markers met the holder's transaction and went through the side channel"

# pcscd killed (its side channel sockets stay behind) and started again:
# the new driver replaces the stale sockets, with new tokens.
"$BED_STACK" pcscd-stop "$BED_DIR" || bed_fail "pcscd-stop"
[ -S "$BED_DIR/pcsctap-00-00" ] || bed_fail "no stale side channel socket after the kill (set-up)"
"$BED_STACK" pcscd-start "$BED_DIR" || bed_fail "pcscd-start"
grep -q "marker side channel $SIDE_DIR_IN_PCSCD/pcsctap-00-00" "$BED_DIR/pcscd.log" ||
	bed_fail "the restarted driver has no side channel: $(grep 'side channel' "$BED_DIR/pcscd.log")"
scenario "after a pcscd restart (50 %)" 150 150 1 3 70 leave 3

# Stock vpcd under contention: discovery meets the holder's transactions,
# finds no side channel, and is retried until the reader answers without
# the marker feature; the card never sees a marker (control byte 05).
stop_holder
bed_stop
bed_start --driver vpcd --card test
start_holder 5 5
mark=$(bed_mark)
sessions=4
# Stock vpcd carries no markers: nothing for a cue to wait for.
cue=
rm -f "$BED_TMP/trace"
guests 2 3 10 leave yes
guests 2 3 10 leave no
stop_holder
for id in 1 2; do
	diff <(tail -n +2 "$BED_TMP/u-$id.out") <(tail -n +2 "$BED_TMP/g-$id.out") > /dev/null ||
		bed_fail "stock vpcd: guest $id's output differs under pcsctap run"
	cmp -s "$BED_TMP/u-$id.rc" "$BED_TMP/g-$id.rc" || bed_fail "stock vpcd: guest $id's exit status differs"
	! grep -v '^pcsctap: trace in ' "$BED_TMP/g-$id.err" || bed_fail "stock vpcd: guest $id wrote to stderr (above)"
done
! bed_kinds "$mark" | grep -qx MARKER || bed_fail "stock vpcd: the card saw a marker"
# Not even tried: stock vpcd would refuse the code before the card.
tried=$(/usr/bin/python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from markers").fetchone()[0])' "$BED_TMP/trace") ||
	bed_fail "stock vpcd: cannot read the trace"
[ "$tried" = 0 ] || bed_fail "stock vpcd: the shim tried $tried markers"
[ "$(bed_kinds "$mark" | grep -cx APDU)" -gt 0 ] || bed_fail "stock vpcd: no APDU at the card (set-up)"
echo "ok stock vpcd under contention: no marker, outputs as untraced"
