#!/bin/bash
# bench.sh — SCardTransmit loop against the test card with TCP_QUICKACK:
# untraced vs pcsctap vs pcsc-lite's libpcscspy (pcsc-spy reading its
# FIFO), alternating in one run.  Prints the figures; never fails on them.
# Env: BENCH_TRANSMIT, PCSCTAP_SHIM, BED_LIB (+ bed).  ROUNDS, BATCH optional.
. "$BED_LIB"
bed_require pcscd
spy_lib=/usr/lib/x86_64-linux-gnu/libpcscspy.so.0
bed_start --card test --card-args --quickack
bench() {
	# The shim binds by path (delegate mode) so that it never wraps the spy.
	PCSCTAP_TRACE=$BED_TMP/trace LIBPCSCLITE_DELEGATE=pcsctap PCSCTAP_REAL_LIBRARY="$PCSCTAP_REAL_LIBRARY" \
		"$@" "$BENCH_TRANSMIT" "$BED_READER" "$PCSCTAP_SHIM" "${ROUNDS:-301}" "${BATCH:-20}" ${spy:+spy}
}
spy=
echo "== untraced vs pcsctap (target: <= 3 %)"
bench env
status=$?
if [ -f "$spy_lib" ] && command -v pcsc-spy >/dev/null; then
	# pcsc-spy makes and reads $HOME/pcsc-spy; the library writes to it.
	# It reads until the end of file: until the spy run below ends.
	export HOME=$BED_TMP
	pcsc-spy -n > "$BED_TMP/spy.out" 2>&1 &
	spy_pid=$!
	for i in $(seq 50); do [ -p "$HOME/pcsc-spy" ] && break; sleep 0.1; done
	spy=spy
	# The spy loads the real library as libpcsclite_nospy.so.1.
	mkdir -p "$BED_TMP/nospy"
	ln -sf "${PCSCTAP_REAL_LIBRARY:-/usr/lib/x86_64-linux-gnu/libpcsclite.so.1}" \
		"$BED_TMP/nospy/libpcsclite_nospy.so.1"
	spy_env="LD_LIBRARY_PATH=$BED_TMP/nospy${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	echo "== untraced vs pcsctap vs pcsc-spy, pcsc-spy reading its FIFO (target: <= 1/10)"
	bench env "$spy_env" LD_PRELOAD="$spy_lib" || status=1
else
	echo "pcsc-spy not installed: no comparison with it"
fi
# CPU, not time: what tracing adds per transmit, all threads of the
# process (the writer thread too; for pcsc-spy also the pcsc-spy process
# reading its FIFO: bench_cpu.c starts one per child) — target <= 2.0 us for
# pcsctap, and pcsc-spy's addition >= 35 times it.  pcscd's CPU is shown
# apart.
if [ -n "${spy_pid:-}" ]; then
	export BENCH_SPY_LIB=$spy_lib BENCH_SPY_LIBDIR=$BED_TMP/nospy BENCH_SPY_HOME=$BED_TMP/spy-cpu
	mkdir -p "$BENCH_SPY_HOME"
fi
# Where the scheduler puts the client, pcscd and the card from one process
# to the next moves the untraced slope alone by far more than what tracing
# adds (cross-CPU wake-ups of an idle virtual CPU; figures in docs/shim.md).
# So the stack's processes (all their threads, and the threads pcscd starts
# later) run on the last CPU and the measured children on CPU 0, the same
# placement for every mode.  PIN=0 measures unpinned.
pin=()
cpus=$(nproc)
if [ "${PIN:-1}" != 0 ] && [ "$cpus" -ge 2 ] && command -v taskset >/dev/null; then
	for f in "$BED_DIR"/*.bedpid; do
		taskset -a -p -c $((cpus - 1)) "$(cat "$f")" >/dev/null || status=1
	done
	pin=(taskset -c 0)
	echo "== CPU placement: the measured processes on CPU 0, pcscd and the card on CPU $((cpus - 1))"
fi
echo "== CPU per transmit (uptime: $(uptime))"
PCSCTAP_TRACE=$BED_TMP/trace-cpu LIBPCSCLITE_DELEGATE=pcsctap PCSCTAP_REAL_LIBRARY="$PCSCTAP_REAL_LIBRARY" \
	BENCH_PCSCD_PID=$(cat "$BED_DIR/pcscd.bedpid") \
	"${pin[@]}" "$BENCH_CPU" "$BED_READER" "$PCSCTAP_SHIM" "${CPU_N:-10000}" "${CPU_ROUNDS:-15}" || status=1
echo "(uptime: $(uptime))"
# Instructions instead of CPU time: deterministic where the CPU figures
# are noisy (other work on the machine), user space only (what the kernel
# does for a system call is not counted), per thread.  Callgrind runs the
# child of bench-cpu, untraced and pcsctap, at N and 2N.
if command -v valgrind >/dev/null; then
	echo "== user-space instructions per transmit (callgrind, slope between ${INSN_N:-2000} and $((2 * ${INSN_N:-2000})); deterministic)"
	mkdir -p "$BED_TMP/cg"
	# insns MODE N: "main-thread other-threads" instructions of one child.
	insns() {
		rm -f "$BED_TMP/cg/"*
		PCSCTAP_TRACE=$BED_TMP/cg-trace-$1-$2 LIBPCSCLITE_DELEGATE=pcsctap PCSCTAP_REAL_LIBRARY="$PCSCTAP_REAL_LIBRARY" \
			valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$BED_TMP/cg/out" \
			"$BENCH_CPU" "$BED_READER" "$PCSCTAP_SHIM" --child "$1" "$2" 9 9>/dev/null 2>/dev/null || return 1
		rm -f "$BED_TMP/cg-trace-$1-$2"*
		# One file per thread, out-01 the main thread; "totals: N" in each.
		for f in "$BED_TMP/cg/"out*; do
			printf '%s %s\n' "${f##*-}" "$(sed -n 's/^totals: *//p' "$f")"
		done | awk '$1 == "01" { m += $2 } $1 != "01" { o += $2 } END { print m + 0, o + 0 }'
	}
	n=${INSN_N:-2000}
	for mode in 0 1; do
		if ! r1=$(insns $mode $n) || ! r2=$(insns $mode $((2 * n))); then
			echo "callgrind run failed"; status=1; break
		fi
		read -r m1 o1 <<< "$r1"
		read -r m2 o2 <<< "$r2"
		main[$mode]=$(( (m2 - m1) / n )) other[$mode]=$(( (o2 - o1) / n ))
	done
	if [ -n "${other[1]:-}" ]; then
		echo "  untraced  $(( main[0] + other[0] )) (the application's thread ${main[0]})"
		echo "  pcsctap   $(( main[1] + other[1] )), adds $(( main[1] + other[1] - main[0] - other[0] ))" \
			"(the application's thread +$(( main[1] - main[0] )), writer thread ${other[1]}, its exit work included)"
	fi
fi
[ -n "${spy_pid:-}" ] && kill "$spy_pid" 2>/dev/null
echo "trace rows: $("${TRACE_SQL}" "$BED_TMP/trace" "SELECT count(*) FROM calls WHERE fn = 12") transmits"
exit $status
