#!/bin/bash
# endings.sh CASE — issue 10's acceptance test: every SCard* call that
# returned to the application is in the trace after its process ends in
# CASE's way (tests/endings/end_client.c says what each does; pyscard and
# GnuPG's scdaemon are the dlopen clients).
#
# On one isolated stack (pcsctap driver, markers on, test card) the
# application runs three times:
#   untraced  the reference: its stdout, its exit status or signal, the
#             APDUs the card logged (the set-up: the calls really happened)
#   run       under `pcsctap run -o TRACE`
#   manual    with the shim set up by hand: LD_PRELOAD=libpcsctap.so and
#             PCSCTAP_TRACE (linked clients), or a directory with
#             libpcsclite.so.1 -> the shim first on LD_LIBRARY_PATH
#             (dlopen clients), as docs/shim.md describes
# and each traced run must show the same stdout and ending, no shim
# warning, the same APDUs at the card, and the EXACT number of calls per
# function in the trace, counted
#   - right after `pcsctap run` returns (plain SQLite, before any pcsctap
#     reader has opened the trace; run only; not for the daemon, which
#     makes its calls after run has returned), and
#   - after the process is gone and `pcsctap show --json` has read the
#     trace, both in the database and in show's output.
# Env: PCSCTAP, PCSCTAP_SHIM, END_CLIENT, ENDINGS_DIR, TRACE_SQL, BED_LIB (+ bed).
. "$BED_LIB"
case=${1:-}
bed_require pcscd unshare mount
[ -f "${PCSCTAP_DRIVER:-}" ] || bed_skip "the pcsctap driver is not built"

work=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-endings.XXXXXX")
trap 'bed_stop; rm -rf "$work"' EXIT
# abort and the fatal signals must not leave cores behind.
ulimit -c 0
# With libasan preloaded (setup asane2e) a SIGBUS would be ASan's report
# and exit 1 instead of the signal's default action.
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:handle_sigbus=0"

fail() {
	bed_fail "$case ($mode): $*"
}

# The burst of end-client and pyscard_kill.py, per function.
BURST="SCardConnect=1 SCardEstablishContext=1 SCardListReaders=1 SCardTransmit=5"
burst_apdus="00A4040000 00CA000001 00CA000002 00CA000003 00CA000004"

# Per case: the command, its exit status untraced (128+N: signal N), the
# calls per function, the processes that make them, the APDUs the card
# gets, and whether the client links libpcsclite or dlopens it.
kind=linked
counts=$BURST pids=1 apdus=$burst_apdus
app=("$END_CLIENT" "$case")
case $case in
return) status=0 ;;
exit-thread) status=5 ;;
_exit) status=3 ;;
abort) status=134 ;;
segv) status=139 ;;
sigterm) status=143 ;;
sigbus) status=135 ;;
sigkill) status=137 ;;
exec-true) status=0 ;;
exec-self)
	status=0
	counts="SCardConnect=2 SCardEstablishContext=2 SCardListReaders=2 SCardTransmit=10"
	apdus="$burst_apdus $burst_apdus"
	;;
fork)
	status=0 pids=2
	counts="SCardConnect=2 SCardEstablishContext=2 SCardListReaders=2 SCardTransmit=10"
	apdus="$burst_apdus $burst_apdus"
	;;
daemon) status=0 ;;
closeall)
	status=0
	counts="SCardConnect=2 SCardEstablishContext=2 SCardListReaders=2 SCardTransmit=10"
	apdus="$burst_apdus $burst_apdus"
	;;
pyscard-sigkill)
	/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
	kind=dlopen status=137
	# pyscard asks for the size of the reader list first.
	counts="SCardConnect=1 SCardEstablishContext=1 SCardListReaders=2 SCardTransmit=5"
	app=(/usr/bin/python3 "$ENDINGS_DIR/pyscard_kill.py")
	;;
scdaemon)
	scdaemon=/usr/lib/gnupg/scdaemon
	[ -x "$scdaemon" ] || bed_skip "scdaemon is not installed"
	# Not a missing dependency (so not a failure under CI): like procps
	# (tests/sanitizers/bin), scdaemon hangs at start-up with gcc 12's
	# libasan preloaded, which the ASan shim needs (setup asane2e, which
	# tools/test.sh runs without suite noasan, so without this case).
	case ${LD_PRELOAD:-} in
	*libasan*) echo "SKIP: scdaemon hangs with libasan preloaded" >&2; exit 77 ;;
	esac
	kind=dlopen
	# Its calls depend on what it makes of the card: the untraced run's
	# APDUs say how many transmits; status and counts are set then.
	# scdaemon 2.2.40 aborts by itself ("double free") after reading the
	# test card's empty files: a smart-card daemon that dies of abort, the
	# case of the issue; it is killed instead if it survives.
	;;
*) bed_fail "usage: endings.sh CASE (see tests/endings/meson.build)" ;;
esac

bed_start --driver pcsctap --driver-opts markers=on --card test
if [ "$case" = pyscard-sigkill ]; then
	app+=("$BED_READER")
fi

mkdir "$work/lib"
ln -s "$PCSCTAP_SHIM" "$work/lib/libpcsclite.so.1"

q() {
	"$TRACE_SQL" "$trace" "$1"
}

# The shim's warnings in an stderr file ("pcsctap run"'s own line aside).
warnings() {
	grep '^pcsctap: ' "$1" | grep -Ev '^pcsctap: (trace in|no trace written to) '
}

# The trace's calls as "FUNCTION=COUNT ...", by name.
trace_counts() {
	q "SELECT f.name || '=' || count(*) FROM calls c JOIN functions f ON f.id = c.fn
	   GROUP BY f.name ORDER BY f.name" | tr '\n' ' ' | sed 's/ $//'
}

# The same from `pcsctap show --json` (a reader opening the trace).
show_counts() {
	"$PCSCTAP" show --json "$trace" > "$work/show.json" 2> "$work/show.err" ||
		fail "pcsctap show failed: $(cat "$work/show.err")"
	/usr/bin/python3 -c '
import collections, json, sys
n = collections.Counter(e["fn"] for e in map(json.loads, open(sys.argv[1])) if e["type"] == "call")
print(" ".join("%s=%d" % kv for kv in sorted(n.items())))' "$work/show.json"
}

# The APDUs the card logged after MARK, space-separated.
card_apdus() {
	bed_lines APDU "$1" | cut -f1 | tr '\n' ' ' | sed 's/ $//'
}

# wait_gone PIDFILE: until the process it names has ended (a daemon; a
# zombie that its new parent has not reaped yet counts as ended).
wait_gone() {
	local i pid
	for i in $(seq 300); do
		[ -s "$1" ] && break
		sleep 0.1
	done
	pid=$(cat "$1" 2>/dev/null) || fail "no $1"
	for i in $(seq 300); do
		[ "$(sed 's/^.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null || echo Z)" = Z ] && return 0
		sleep 0.1
	done
	fail "process $pid is still running"
}

# scd_session LAUNCHER...: scdaemon in server mode asked for the card's
# serial number; once it has answered (or died), SIGKILL.  Its Assuan
# lines are the output; stderr has its log.
scd_session() {
	local pid child _
	mkdir -p "$work/gnupg.$mode"
	chmod 700 "$work/gnupg.$mode"
	mkfifo "$work/scd.in.$mode"
	GNUPGHOME=$work/gnupg.$mode "$@" "$scdaemon" --server --disable-ccid \
		--reader-port "$BED_READER" < "$work/scd.in.$mode" > "$work/$mode.out" 2> "$work/$mode.err" &
	pid=$!
	exec 7> "$work/scd.in.$mode"
	echo SERIALNO >&7
	for _ in $(seq 200); do
		grep -Eq '^(OK|ERR)' <(tail -n +2 "$work/$mode.out") && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	# Under pcsctap run, scdaemon is run's child.
	child=$pid
	if [ "$mode" = run ]; then
		child=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null)
		child=${child%% *}
	fi
	[ -n "$child" ] && kill -KILL "$child" 2>/dev/null
	exec 7>&-
	wait "$pid"
	rc=$?
}

# run_app MODE: one run; sets rc, mark (the card log before it).
run_app() {
	mode=$1
	local launcher=()
	trace=$work/$mode.trace
	case $mode in
	run) launcher=("$PCSCTAP" run -o "$trace" --) ;;
	manual)
		if [ "$kind" = linked ]; then
			# Appended: under ASan (setup asane2e) libasan must stay first.
			launcher=(env LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$PCSCTAP_SHIM" PCSCTAP_TRACE="$trace")
		else
			launcher=(env LD_LIBRARY_PATH="$work/lib" PCSCTAP_TRACE="$trace")
		fi
		;;
	*) launcher=(env) ;;
	esac
	dir=$work/dir.$mode
	mkdir "$dir"
	mark=$(bed_mark)
	if [ "$case" = scdaemon ]; then
		scd_session "${launcher[@]}"
		return
	fi
	case $case in
	daemon|closeall) "${launcher[@]}" "${app[@]}" "$dir" > "$work/$mode.out" 2> "$work/$mode.err" ;;
	*) "${launcher[@]}" "${app[@]}" > "$work/$mode.out" 2> "$work/$mode.err" ;;
	esac
	rc=$?
	if [ "$case" = daemon ]; then
		wait_gone "$dir/daemon.pid"
		[ "$(cat "$dir/daemon.done" 2>/dev/null)" = ok ] || fail "the daemon's calls did not all succeed"
	fi
}

# check_card: the card got exactly the APDUs expected (after a bounded
# wait: it logs as it answers).
check_card() {
	local got _
	for _ in $(seq 50); do
		got=$(card_apdus "$mark")
		[ "$got" = "$apdus" ] && return 0
		sleep 0.1
	done
	fail "the card logged the APDUs [$got], expected [$apdus]"
}

# wrong MESSAGE: a failed check of a traced run; the others still run,
# so that one test says everything that is wrong.
failed=0
wrong() {
	echo "FAIL: $case ($mode): $*" >&2
	failed=1
	mode_failed=1
}

# check_trace WHEN: the trace's calls per function are exactly $counts
# (scdaemon: a successful SCardTransmit per APDU the card got, and a
# context and a connection).
check_trace() {
	local got
	if [ "$case" = scdaemon ]; then
		got=$(q "SELECT count(*) FROM calls WHERE rv = 0 AND fn = (SELECT id FROM functions WHERE name = 'SCardTransmit')")
		[ "$got" = "$n" ] || wrong "$1: $got successful SCardTransmit calls in the trace, the card got $n APDUs"
		counts=$(trace_counts)
		echo "$counts" | grep -q 'SCardEstablishContext=.*SCardConnect=\|SCardConnect=.*SCardEstablishContext=' ||
			wrong "$1: no SCardEstablishContext or no SCardConnect in the trace: [$counts]"
		return
	fi
	got=$(trace_counts)
	[ "$got" = "$counts" ] || wrong "$1: the trace holds [$got], expected [$counts]"
}

# --- the reference run --------------------------------------------------
run_app untraced
if [ "$case" = scdaemon ]; then
	status=$rc
	apdus=$(card_apdus "$mark")
	n=$(echo "$apdus" | wc -w)
	[ "$n" -gt 0 ] || fail "scdaemon sent the card nothing: $(cat "$work/untraced.err")"
	grep -q '^OK GNU Privacy Guard' "$work/untraced.out" || fail "scdaemon did not start: $(cat "$work/untraced.out" "$work/untraced.err")"
fi
[ "$rc" = "$status" ] || fail "exit status $rc, expected $status: $(tail -3 "$work/untraced.err")"
[ -z "$(warnings "$work/untraced.err")" ] || fail "shim warnings without the shim?"
check_card
untraced_out=$work/untraced.out
if [ "$case" = closeall ]; then
	[ "$(cat "$work/dir.untraced/file0")" = "file 0 of end-client, line 1
file 0 of end-client, line 2" ] || fail "the untraced run wrote [$(cat "$work/dir.untraced/file0")] to file0"
fi

# --- the traced runs -----------------------------------------------------
for mode in run manual; do
	mode_failed=0
	run_app "$mode"
	[ "$rc" = "$status" ] || wrong "exit status $rc, untraced $status"
	if [ "$case" = scdaemon ]; then
		# Only the lines that do not name a pid.
		cmp -s <(grep -v '^scdaemon\[' "$untraced_out") <(grep -v '^scdaemon\[' "$work/$mode.out") ||
			wrong "stdout differs: $(diff "$untraced_out" "$work/$mode.out")"
	else
		cmp -s "$untraced_out" "$work/$mode.out" ||
			wrong "stdout differs from the untraced run: $(diff "$untraced_out" "$work/$mode.out")"
	fi
	[ -z "$(warnings "$work/$mode.err")" ] || wrong "shim warnings: $(warnings "$work/$mode.err")"
	check_card
	if [ "$case" = closeall ]; then
		for f in 0 1 2 3; do
			cmp -s "$work/dir.untraced/file$f" "$work/dir.$mode/file$f" ||
				wrong "file$f differs from the untraced run's: [$(od -c "$work/dir.$mode/file$f" | head -5)]"
		done
	fi
	[ -f "$trace" ] || fail "no trace"
	[ "$mode" = run ] && [ "$case" != daemon ] && check_trace "right after pcsctap run returned"
	shown=$(show_counts)
	check_trace "after pcsctap show read it"
	[ "$shown" = "$(trace_counts)" ] || wrong "pcsctap show printed [$shown], the trace holds [$(trace_counts)]"
	got=$(q "SELECT count(DISTINCT pid) FROM calls")
	[ "$got" = "$pids" ] || wrong "calls from $got processes, expected $pids"
	[ "$(q "PRAGMA integrity_check")" = ok ] || wrong "integrity_check: $(q "PRAGMA integrity_check")"
	[ "$(q "SELECT coalesce(sum(count), 0) FROM drops")" = 0 ] || wrong "the trace counts dropped events"
	[ $mode_failed = 0 ] &&
		echo "ok: $case ($mode): exit status $rc as untraced, same output, APDUs at the card [$apdus], trace [$counts]"
done
exit $failed
