#!/bin/bash
# stress.sh — PROCS processes x THREADS threads x TRANSMITS transmits, each
# process under its own `pcsctap run`, all into one trace, with markers on
# (pcsctap driver markers=on, a quick-ACK quiet test card).
#
# Asserts: every client transmit succeeded; the trace holds exactly the
# successful transmits each client counted (per pid), each thread's
# connect and disconnect markers with rv 0, no drops; PRAGMA
# integrity_check is ok; pcscd still serves a fresh client.  A deadlock is
# caught by the meson timeout.  Prints the totals.
# Env: PCSCTAP, STRESS_CLIENT, STEP_CLIENT, TRACE_SQL, BED_LIB (+ bed);
# STRESS_PROCS, STRESS_THREADS, STRESS_TRANSMITS (default 4, 8, 10000).
. "$BED_LIB"
bed_require pcscd
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"
procs=${STRESS_PROCS:-4}
threads=${STRESS_THREADS:-8}
transmits=${STRESS_TRANSMITS:-10000}
bed_start --driver pcsctap --driver-opts markers=on --card test --card-args "--quickack --quiet"
trace=$BED_TMP/trace
q() { "$TRACE_SQL" "$trace" "$1"; }

t0=$(date +%s%N)
pids=()
for i in $(seq "$procs"); do
	"$PCSCTAP" run -o "$trace" -- "$STRESS_CLIENT" "$BED_READER" "$threads" "$transmits" \
		> "$BED_TMP/p$i.out" 2> "$BED_TMP/p$i.err" &
	pids+=($!)
done
status=0
for i in $(seq "$procs"); do
	wait "${pids[$((i - 1))]}" || status=$?
done
t1=$(date +%s%N)
[ $status = 0 ] || bed_fail "a client failed (exit $status): $(cat "$BED_TMP"/p*.out "$BED_TMP"/p*.err)"

total=0
for i in $(seq "$procs"); do
	out=$BED_TMP/p$i.out
	pid=$(sed -n 's/^pid //p' "$out")
	ok=$(sed -n 's/^transmits ok=\([0-9]*\) failed=[0-9]*$/\1/p' "$out")
	failed=$(sed -n 's/^transmits ok=[0-9]* failed=\([0-9]*\)$/\1/p' "$out")
	[ -n "$pid" ] && [ -n "$ok" ] || bed_fail "process $i printed: $(cat "$out")"
	[ "$failed" = 0 ] && [ "$ok" = $((threads * transmits)) ] ||
		bed_fail "process $i ($pid): ok=$ok failed=$failed, expected ok=$((threads * transmits))"
	got=$(q "SELECT count(*) FROM calls WHERE fn = 12 AND rv = 0 AND pid = $pid")
	[ "$got" = "$ok" ] || bed_fail "process $pid made $ok transmits, the trace holds $got"
	# Each thread: one connect (1) and one disconnect (3) marker, rv 0.
	got=$(q "SELECT count(DISTINCT tid), count(*), coalesce(sum(rv != 0), 0) FROM markers WHERE pid = $pid AND event = 1")
	[ "$got" = "$threads	$threads	0" ] || bed_fail "process $pid: connect markers (threads, count, failed): $got"
	got=$(q "SELECT count(DISTINCT tid), count(*), coalesce(sum(rv != 0), 0) FROM markers WHERE pid = $pid AND event = 3")
	[ "$got" = "$threads	$threads	0" ] || bed_fail "process $pid: disconnect markers (threads, count, failed): $got"
	total=$((total + ok))
done
[ "$(q "SELECT count(DISTINCT pid) FROM processes WHERE exe LIKE '%stress-client'")" = "$procs" ] ||
	bed_fail "the trace does not name $procs processes"
got=$(q "SELECT count(*) FROM calls WHERE fn = 12 AND rv = 0")
[ "$got" = "$total" ] || bed_fail "the clients made $total transmits, the trace holds $got"
drops=$(q "SELECT coalesce(sum(count), 0) FROM drops")
[ "$drops" = 0 ] || bed_fail "the writer dropped $drops events"
integrity=$(q "PRAGMA integrity_check")
[ "$integrity" = ok ] || bed_fail "integrity_check: $integrity"

# pcscd still serves: a fresh client, untraced.
out=$("$STEP_CLIENT" establish connect transmit:00A4040000 disconnect:leave release 2>&1) ||
	bed_fail "pcscd no longer serves: $out"
[ "$(echo "$out" | grep -c 'rv=0x00000000')" = 5 ] || bed_fail "the fresh client got: $out"

calls=$(q "SELECT count(*) FROM calls")
markers=$(q "SELECT count(*) FROM markers")
ms=$(( (t1 - t0) / 1000000 ))
echo "ok: stress: $procs processes x $threads threads x $transmits transmits in $ms ms:" \
	"$total transmits ($(( total * 1000 / (ms ? ms : 1) )) transmits/s), $calls calls and $markers markers in the trace," \
	"per pid counts match, 0 drops, integrity ok, pcscd still serving"
