#!/bin/bash
# Stock Python vicc sees the same message sequences through the pcsctap
# driver (markers off) as through stock vpcd.  A transparent relay between
# reader and vicc (cards.py relay) logs what the reader sends.  As in
# e2e_same_as_vpcd.sh: identical with presence=poll, identical less vpcd's
# presence polls with presence=event.
. "$BED_LIB"
bed_require pcscd vicc
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || bed_skip "vpcd is not installed"
out=$(mktemp -d /tmp/pcsctap-vicc.XXXXXX)
relay_pid= vicc_pid=
cleanup() {
	[ -n "$vicc_pid" ] && kill "$vicc_pid" 2>/dev/null
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null
	wait 2>/dev/null
	bed_stop
}
for driver in vpcd poll event; do
	case $driver in
	vpcd) bed_start --driver vpcd --card none ;;
	*) bed_start --driver pcsctap --driver-opts "presence=$driver" --card none ;;
	esac
	trap 'cleanup; rm -rf "$out"' EXIT
	relay_port=$((BED_PORT + 2))
	: > "$out/$driver.log"
	/usr/bin/python3 "$PROXY_TESTS/cards.py" relay "$BED_PORT" "$relay_port" "$out/$driver.log" &
	relay_pid=$!
	mkdir -p "$out/pylib"
	ln -sfn /usr/lib/python3/dist-packages/Cryptodome "$out/pylib/Crypto"
	for i in $(seq 50); do
		PYTHONPATH=/usr/lib/python3/site-packages/virtualsmartcard:$out/pylib \
			/usr/bin/python3 /usr/bin/vicc -t iso7816 -H 127.0.0.1 -P "$relay_port" \
			> "$out/vicc-$driver.out" 2>&1 < /dev/null &
		vicc_pid=$!
		sleep 0.2
		kill -0 "$vicc_pid" 2>/dev/null && break
	done
	"$PROXY_TESTS/e2e_client.py" present 15 >/dev/null || bed_fail "vicc never showed up under $driver"
	BED_CARD_LOG=$out/$driver.log "$PROXY_TESTS/e2e_client.py" scenario --vicc > "$out/$driver.txt" ||
		bed_fail "scenario under $driver"
	cleanup
	relay_pid= vicc_pid=
done
cat "$out/event.txt"
norm() { sed -E '/^(Control\(GET_FEATURE\)|GetAttrib\(ATR\))/s/ rv=.*$//' "$1"; }
nopolls() { norm "$1" | "$PROXY_TESTS/e2e_client.py" nopolls; }
diff <(norm "$out/vpcd.txt") <(norm "$out/poll.txt") ||
	bed_fail "presence=poll: vicc saw different sequences (< vpcd, > pcsctap)"
echo "ok - presence=poll: stock vicc sees identical message sequences"
diff <(nopolls "$out/vpcd.txt") <(norm "$out/event.txt") ||
	bed_fail "presence=event: vicc saw different sequences (< vpcd without polls, > pcsctap)"
echo "ok - presence=event: stock vicc sees identical message sequences, less vpcd's presence polls"
