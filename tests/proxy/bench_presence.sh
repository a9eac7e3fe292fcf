#!/bin/bash
# Presence through stock vpcd, the pcsctap driver (presence=event, the
# default) and pcsctap presence=poll, in one run:
#  - messages per second at an idle connected card (after its power-down);
#  - arrival and departure latency: a card on slot 1 that connects and
#    closes again and again (bench_presence.py), to SCardGetStatusChange;
#  - pcscd's orderly shutdown with a card connected: SIGINT to exit.  It
#    removes every reader (EHDestroyEventHandler: the driver's stop
#    function, then a join of the reader thread), the only reader removal
#    that Debian's pcscd does for reader.conf readers (SIGTERM exits at once).
# Prints figures and the load; asserts nothing about time.
. "$BED_LIB"
bed_require pcscd
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || bed_skip "vpcd is not installed"
count=${BENCH_PRESENCE_COUNT:-15}
idle_s=5

echo "load: $(uptime)"
for run in vpcd event poll; do
	case $run in
	vpcd) bed_start --driver vpcd ;;
	*) bed_start --driver pcsctap --driver-opts "presence=$run" ;;
	esac
	bed_wait_kind POWER_OFF 50 || bed_fail "$run: the idle card was never powered down"
	m=$(bed_mark)
	sleep "$idle_s"
	n=$(bed_kinds "$m" | wc -l)
	echo "$run: idle card: $(awk -v n="$n" -v s="$idle_s" 'BEGIN { printf "%.1f", n / s }') messages/s ($n in $idle_s s)"
	/usr/bin/python3 "$PROXY_TESTS/bench_presence.py" "$((BED_PORT + 1))" "$BED_READER2" "$count" |
		sed "s/^/$run: /" || bed_fail "$run: the latency run failed"
	pid=$(cat "$BED_DIR/pcscd.bedpid")
	t0=$(date +%s%N)
	kill -INT "$pid"
	for i in $(seq 1000); do
		[ -d "/proc/$pid" ] && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] || break
		sleep 0.005
	done
	grep -q 'Preparing for suicide' "$BED_DIR/pcscd.log" || bed_fail "$run: pcscd did not take SIGINT"
	echo "$run: pcscd shutdown, 2 readers removed (SIGINT to exit, card connected): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	bed_stop
done
echo "load: $(uptime)"
