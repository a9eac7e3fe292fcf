#!/bin/bash
# faults.sh CASE — a fault while an application runs under `pcsctap run`.
#
# The application is step-client (one output line per step).  Each case
# runs the same script twice, each time on a fresh stack (pcsctap driver,
# markers on, test card): untraced, then under `pcsctap run` with the fault.
# It asserts that
#   - the untraced run printed exactly the expected lines and exit code
#     (so that the comparison below can fail),
#   - the traced run printed the same stdout and exit code,
#   - the shim said at most one "pcsctap: ..." line per failure kind, and
#     the one the case expects,
#   - the trace is valid (PRAGMA integrity_check = ok) and holds what it
#     should (the case says what).
# CASE: readonly, diskfull, locked, pcscd-restart, card-drop, sigkill.
# Env: PCSCTAP, PCSCTAP_SHIM, STEP_CLIENT, TRACE_SQL, BED_LIB (+ bed).
. "$BED_LIB"
case=${1:-}
bed_require pcscd unshare mount
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"

work=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-faults.XXXXXX")
trap 'bed_stop; rm -rf "$work"' EXIT
card_args=""

fail() {
	bed_fail "$case: $*"
}

# The shim's warnings in an stderr file ("pcsctap run"'s own line aside).
warnings() {
	grep '^pcsctap: ' "$1" | grep -Ev '^pcsctap: (trace in|no trace written to) '
}

q() {
	"$TRACE_SQL" "$trace" "$1"
}

# Starts a fresh stack; sets cue (the file step-client's wait: step waits
# for) and trace.
fresh_stack() {
	bed_stop
	# shellcheck disable=SC2086
	bed_start --driver pcsctap --driver-opts markers=on --card test \
		${card_args:+--card-args "$card_args"}
	cue=$work/cue
	rm -f "$cue" "$cue.ready"
}

# untraced_baseline: the script without the shim on a fresh stack, checked
# against the expected text; then a fresh stack for the traced run.
untraced_baseline() {
	fresh_stack
	run untraced env
	check_outputs untraced
	fresh_stack
}

# traced_run_without_warnings: the script under pcsctap run into $trace;
# same output as untraced, no warning, a valid trace; sets pid (the
# client's, from the trace).
traced_run_without_warnings() {
	trace=$work/trace
	run traced "$PCSCTAP" run -o "$trace" --
	check_outputs traced
	check_warnings ''
	check_integrity
	pid=$(traced_pid)
}

# wait_ready: until step-client is at its wait: step; prints its pid.
wait_ready() {
	local i
	for i in $(seq 300); do
		[ -s "$cue.ready" ] && { cat "$cue.ready"; return 0; }
		sleep 0.1
	done
	fail "step-client never reached its wait: step"
}

# check_outputs MODE: the untraced run against the expected text, the
# traced run against the untraced one.
check_outputs() {
	if [ "$1" = untraced ]; then
		[ "$(cat "$work/untraced.out")" = "$expected" ] ||
			fail "the untraced run printed
$(cat "$work/untraced.out")
expected
$expected"
		[ "$untraced_rc" = "$expected_rc" ] ||
			fail "the untraced run exited $untraced_rc, expected $expected_rc"
		return
	fi
	cmp -s "$work/untraced.out" "$work/traced.out" ||
		fail "stdout differs from the untraced run:
$(diff "$work/untraced.out" "$work/traced.out")"
	[ "$traced_rc" = "$untraced_rc" ] ||
		fail "exit code $traced_rc under pcsctap, $untraced_rc untraced"
	[ -z "$(warnings "$work/untraced.err")" ] || fail "warnings without the shim?"
}

# check_warnings REGEX: at most one line per kind, and the lines match
# REGEX ('' = none expected, '?RE' = at most one line matching RE).
check_warnings() {
	local w=$1 got
	got=$(warnings "$work/traced.err")
	[ -z "$(echo "$got" | sort | uniq -d)" ] || fail "a warning repeated: $got"
	case $w in
	'') [ -z "$got" ] || fail "unexpected warnings: $got" ;;
	\?*)
		[ "$(echo "$got" | grep -c .)" -le 1 ] || fail "more than one warning: $got"
		[ -z "$got" ] || echo "$got" | grep -Eq "${w#?}" || fail "unexpected warning: $got"
		;;
	*)
		[ "$(echo "$got" | grep -c .)" = 1 ] || fail "expected one warning, got: [$got]"
		echo "$got" | grep -Eq "$w" || fail "unexpected warning: $got"
		;;
	esac
	warned=${got:-none}
}

check_integrity() {
	[ -f "$trace" ] || fail "no trace at $trace"
	[ "$(q "PRAGMA integrity_check")" = ok ] || fail "integrity_check: $(q "PRAGMA integrity_check")"
}

# The traced run's calls as "function rv" lines, in order.
calls_of() {
	q "SELECT f.name || ' ' || printf('0x%08X', c.rv) FROM calls c JOIN functions f ON f.id = c.fn
	   WHERE c.pid = $1 ORDER BY c.id"
}

# The pid of the traced step-client: the processes row with its argv.
traced_pid() {
	q "SELECT pid FROM processes WHERE exe LIKE '%step-client' ORDER BY rowid DESC LIMIT 1"
}

# run MODE CMD...: runs the script (its steps are in $steps) in the
# background and lets the case's act() hook do its part, then collects
# stdout, stderr and the exit code.
run() {
	local mode=$1 pid
	shift
	"$@" "$STEP_CLIENT" $steps > "$work/$mode.out" 2> "$work/$mode.err" &
	pid=$!
	act "$mode" "$pid"
	wait "$pid"
	eval "${mode}_rc=$?"
}

act() { :; }

# With the trace directory in a private mount namespace (the fault lives
# only as long as the run): in_ns SETUP CMD... runs SETUP (sh) then CMD.
in_ns() {
	local setup=$1
	shift
	unshare -m --propagation private sh -c "$setup"' && exec "$@"' sh "$@"
}

# ---------------------------------------------------------------------

S_OK="establish rv=0x00000000
connect rv=0x00000000
transmit:00A4040000 rv=0x00000000 resp=9000
status rv=0x00000000 resp=3B80800101
disconnect:leave rv=0x00000000
release rv=0x00000000"

case $case in
readonly)
	# The trace directory is a read-only mount: (a) no trace yet, (b) an
	# existing trace.  The app must not notice; (b) stays intact.
	steps="establish connect transmit:00A4040000 status disconnect:leave release"
	expected=$S_OK expected_rc=0
	untraced_baseline
	mkdir "$work/ro"
	trace=$work/ro/trace
	run traced in_ns "mount --bind $work/ro $work/ro && mount -o remount,bind,ro $work/ro" \
		"$PCSCTAP" run -o "$trace" --
	check_outputs traced
	check_warnings 'cannot write the trace .*Read-only file system'
	[ ! -e "$trace" ] || fail "a trace was created on a read-only mount"
	warned_a=$warned
	# (b): a trace with one run in it, then the directory goes read-only.
	"$PCSCTAP" run -o "$trace" -- "$STEP_CLIENT" $steps > /dev/null 2>&1 || fail "the first traced run failed"
	before=$(q "SELECT count(*) FROM calls")
	[ "$before" = 6 ] || fail "the first run left $before calls"
	run traced in_ns "mount --bind $work/ro $work/ro && mount -o remount,bind,ro $work/ro" \
		"$PCSCTAP" run -o "$trace" --
	check_outputs traced
	check_warnings 'cannot write'
	check_integrity
	[ "$(q "SELECT count(*) FROM calls")" = "$before" ] || fail "the read-only trace changed"
	echo "ok: readonly: same output and exit code; new trace: warned [$warned_a], no file;" \
		"existing trace: warned [$warned], unchanged ($before calls), integrity ok"
	;;
diskfull)
	# The trace lives on a 512 KiB tmpfs that 5000 transmits overflow (the
	# whole trace takes 768 KiB: in 1 MiB it sometimes fit).  The
	# trace (copied out before the namespace goes) must stay consistent.
	steps="establish connect loop:5000:00CA000000 disconnect:leave release"
	card_args="--quickack --quiet"
	expected="establish rv=0x00000000
connect rv=0x00000000
$(for i in $(seq 0 100 4900); do echo "loop i=$i"; done)
loop rv=0x00000000
disconnect:leave rv=0x00000000
release rv=0x00000000"
	expected_rc=0
	untraced_baseline
	mkdir "$work/full" "$work/copy"
	trace=$work/copy/trace
	run traced in_ns "mount -t tmpfs -o size=512k tmpfs $work/full" sh -c \
		'"$@"; rc=$?; cp '"$work/full"'/trace* '"$work/copy"'/ || exit 99; exit $rc' sh \
		"$PCSCTAP" run -o "$work/full/trace" --
	check_outputs traced
	check_warnings 'disk full'
	check_integrity
	pid=$(traced_pid)
	[ -n "$pid" ] || fail "no process row"
	n=$(q "SELECT count(*) FROM calls WHERE pid = $pid")
	# The disk must really have filled (else the case tested nothing).
	[ "$n" -lt 5004 ] || fail "all $n calls fit: the disk never filled"
	[ "$(calls_of "$pid" | head -2 | tr '\n' ' ')" = "SCardEstablishContext 0x00000000 SCardConnect 0x00000000 " ] ||
		fail "the first calls are not in the trace: $(calls_of "$pid" | head -2)"
	echo "ok: diskfull: same output and exit code; warned [$warned];" \
		"trace integrity ok, $n of 5004 calls kept, $(q "SELECT coalesce(sum(count), 0) FROM drops") drops recorded"
	;;
locked)
	# Another process holds an exclusive lock on the trace for 5 s while
	# the application makes its calls: (a) it goes on after the lock is
	# gone — every call must then be in the trace; (b) it exits while the
	# lock is still held — its calls stay in its journal (one warning), and
	# pcsctap run imports them once the lock is gone.
	steps="establish connect transmit:00A4040000 wait:$work/cue transmit:00A4040000 disconnect:leave release"
	expected="establish rv=0x00000000
connect rv=0x00000000
transmit:00A4040000 rv=0x00000000 resp=9000
wait:$work/cue
transmit:00A4040000 rv=0x00000000 resp=9000
disconnect:leave rv=0x00000000
release rv=0x00000000"
	expected_rc=0
	act() {
		wait_ready > /dev/null
		[ "$1" = untraced ] || wait "$locker" || fail "the locker failed"
		touch "$cue"
	}
	# lock SECONDS: holds BEGIN EXCLUSIVE on $trace; returns once it is held.
	lock() {
		rm -f "$work/locked"
		/usr/bin/python3 -c '
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(float(sys.argv[3]))
db.execute("COMMIT")' "$trace" "$work/locked" "$1" &
		locker=$!
		for i in $(seq 100); do [ -f "$work/locked" ] && return 0; sleep 0.1; done
		fail "the locker never took the lock"
	}
	untraced_baseline
	trace=$work/trace
	"$PCSCTAP" run -o "$trace" -- "$STEP_CLIENT" establish release > /dev/null 2>&1 || fail "the first traced run failed"
	lock 5
	run traced "$PCSCTAP" run -o "$trace" --
	check_outputs traced
	check_warnings '?locked by another process'
	warned_a=$warned
	check_integrity
	pid=$(traced_pid)
	got=$(calls_of "$pid" | tr '\n' ' ')
	[ "$got" = "SCardEstablishContext 0x00000000 SCardConnect 0x00000000 SCardTransmit 0x00000000 SCardTransmit 0x00000000 SCardDisconnect 0x00000000 SCardReleaseContext 0x00000000 " ] ||
		fail "the trace holds [$got]"
	[ "$(q "SELECT coalesce(sum(count), 0) FROM drops")" = 0 ] || fail "events were dropped"
	# (b) the application exits under the lock.
	steps="establish connect transmit:00A4040000 disconnect:leave release"
	expected_b=$(echo "$expected" | grep -v -e '^wait:' | sed '4d')
	act() { :; }
	lock 5
	t0=$(date +%s%N)
	run traced "$PCSCTAP" run -o "$trace" --
	t_b=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$(cat "$work/traced.out")" = "$expected_b" ] || fail "(b) printed $(cat "$work/traced.out")"
	[ "$traced_rc" = 0 ] || fail "(b) exited $traced_rc"
	check_warnings 'events not written .*stay in the journal'
	wait "$locker" || fail "the locker failed"
	check_integrity
	pid=$(traced_pid)
	got=$(calls_of "$pid" | tr '\n' ' ')
	[ "$got" = "SCardEstablishContext 0x00000000 SCardConnect 0x00000000 SCardTransmit 0x00000000 SCardDisconnect 0x00000000 SCardReleaseContext 0x00000000 " ] ||
		fail "(b) the trace holds [$got]"
	ls "$trace"-journal-* > /dev/null 2>&1 && fail "(b) a journal was left"
	echo "ok: locked: (a) same output and exit code, warned [$warned_a], all 6 calls written after the lock," \
		"integrity ok; (b) exit under the lock (and pcsctap run's import after it) took ${t_b} ms," \
		"warned [$warned], all 5 calls imported"
	;;
pcscd-restart)
	# pcscd is killed (SIGKILL) and restarted while the application is
	# connected; its old context fails, a new one works.
	steps="establish connect transmit:00A4040000 wait:$work/cue transmit:00A4040000 disconnect:leave release establish connect transmit:00A4040000 disconnect:leave release"
	expected="establish rv=0x00000000
connect rv=0x00000000
transmit:00A4040000 rv=0x00000000 resp=9000
wait:$work/cue
transmit:00A4040000 rv=0x8010001D
disconnect:leave rv=0x8010001D
release rv=0x8010001D
establish rv=0x00000000
connect rv=0x00000000
transmit:00A4040000 rv=0x00000000 resp=9000
disconnect:leave rv=0x00000000
release rv=0x00000000"
	expected_rc=1
	act() {
		wait_ready > /dev/null
		"$BED_STACK" pcscd-stop "$BED_DIR" || fail "pcscd-stop"
		"$BED_STACK" pcscd-start "$BED_DIR" || fail "pcscd-start"
		touch "$cue"
	}
	untraced_baseline
	traced_run_without_warnings
	got=$(calls_of "$pid" | awk '{ print $2 }' | tr '\n' ' ')
	[ "$got" = "0x00000000 0x00000000 0x00000000 0x8010001D 0x8010001D 0x8010001D 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000 " ] ||
		fail "the trace holds the results [$got]"
	echo "ok: pcscd-restart: same output and exit code (old context: SCARD_E_NO_SERVICE, new one works);" \
		"no warning; trace integrity ok, all 11 calls with the app's results," \
		"markers $(q "SELECT group_concat(event || ':' || printf('0x%X', rv), ' ') FROM markers WHERE pid = $pid")"
	;;
card-drop)
	# The card closes its connection instead of answering 00B0...; it
	# connects again, pcscd sees it removed and inserted.  The dropped APDU
	# gets SCARD_E_NO_SMARTCARD, as a card pulled out of a real reader (the
	# driver answers IFD_ICC_NOT_PRESENT; it used to be SCARD_E_NOT_TRANSACTED,
	# and stock vpcd's), the next call on the handle SCARD_W_REMOVED_CARD.
	card_args="--drop-on 00B0"
	steps="establish connect transmit:00A4040000 transmit:00B0000000 wait:$work/cue transmit:00A4040000 disconnect:leave connect transmit:00A4040000 disconnect:leave release"
	expected="establish rv=0x00000000
connect rv=0x00000000
transmit:00A4040000 rv=0x00000000 resp=9000
transmit:00B0000000 rv=0x8010000C
wait:$work/cue
transmit:00A4040000 rv=0x80100069
disconnect:leave rv=0x00000000
connect rv=0x00000000
transmit:00A4040000 rv=0x00000000 resp=9000
disconnect:leave rv=0x00000000
release rv=0x00000000"
	expected_rc=1
	act() {
		local i n0
		n0=$(grep -c 'Card inserted' "$BED_DIR/pcscd.log")
		wait_ready > /dev/null
		# Until pcscd has seen the card go and come back.
		for i in $(seq 300); do
			[ "$(grep -c 'Card inserted' "$BED_DIR/pcscd.log")" -gt "$n0" ] && break
			sleep 0.1
		done
		grep -q "$(printf '\tDROP\t')" "$BED_CARD_LOG" || fail "the card never dropped"
		touch "$cue"
	}
	untraced_baseline
	traced_run_without_warnings
	got=$(calls_of "$pid" | awk '{ print $2 }' | tr '\n' ' ')
	[ "$got" = "0x00000000 0x00000000 0x00000000 0x8010000C 0x80100069 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000 " ] ||
		fail "the trace holds the results [$got]"
	echo "ok: card-drop: same output and exit code (dropped APDU: SCARD_E_NO_SMARTCARD, then SCARD_W_REMOVED_CARD," \
		"a new connection works); no warning; trace integrity ok, all 10 calls"
	;;
sigkill)
	# The application is killed with SIGKILL 200 ms after its last call:
	# the trace keeps every call made before.
	steps="establish connect transmit:00A4040000 transmit:00CA000000 wait:$work/cue transmit:00A4040000"
	expected="establish rv=0x00000000
connect rv=0x00000000
transmit:00A4040000 rv=0x00000000 resp=9000
transmit:00CA000000 rv=0x00000000 resp=9000"
	expected_rc=137
	act() {
		local victim
		victim=$(wait_ready) || exit 1
		# The delay is the point: calls older than 200 ms must be kept.
		sleep 0.2
		kill -KILL "$victim"
	}
	untraced_baseline
	traced_run_without_warnings
	[ "$pid" = "$(cat "$cue.ready")" ] || fail "the trace names pid $pid, the killed client was $(cat "$cue.ready")"
	got=$(calls_of "$pid" | tr '\n' ' ')
	[ "$got" = "SCardEstablishContext 0x00000000 SCardConnect 0x00000000 SCardTransmit 0x00000000 SCardTransmit 0x00000000 " ] ||
		fail "the trace holds [$got]"
	[ "$(q "SELECT group_concat(event) FROM markers WHERE pid = $pid")" = 1 ] ||
		fail "markers: $(q "SELECT group_concat(event) FROM markers WHERE pid = $pid")"
	echo "ok: sigkill: both runs exit 137 with the same output; no warning;" \
		"trace integrity ok, all 4 calls made before the kill and the connect marker"
	;;
*)
	bed_fail "usage: faults.sh readonly|diskfull|locked|pcscd-restart|card-drop|sigkill"
	;;
esac
