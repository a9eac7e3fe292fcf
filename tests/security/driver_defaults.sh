#!/bin/bash
# driver_defaults.sh — the pcsctap driver's hardened defaults: it listens
# on loopback only unless listen= says otherwise (read from the kernel's
# socket table, /proc/net/tcp), and its trace= path is refused when it is
# a symbolic link (the reader keeps working, the link's target is left
# alone).
. "$BED_LIB"
bed_require pcscd opensc-tool
work=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-drv.XXXXXX")
trap 'bed_stop; rm -rf "$work"' EXIT

# The local address of the TCP socket listening on PORT (hex, as the
# kernel prints it: 0100007F is 127.0.0.1, 00000000 is 0.0.0.0).
listen_addr() {
	local port
	port=$(printf '%04X' "$1")
	awk -v p="$port" '$4 == "0A" { split($2, a, ":"); if (a[2] == p) print a[1] }' \
		/proc/net/tcp /proc/net/tcp6
}

echo precious > "$work/victim"
ln -s "$work/victim" "$work/link"
ln -s "$work/created-by-attack" "$work/dangling"
bed_start --driver pcsctap --driver-opts "trace=$work/link"
got=$(listen_addr "$BED_PORT")
[ "$got" = 0100007F ] || bed_fail "default: listening on [$got] for port $BED_PORT, not 127.0.0.1 only"
echo "ok - listens on 127.0.0.1 by default"
opensc-tool -r "$BED_READER" -s 00A4040000 >/dev/null 2>&1 || bed_fail "the reader does not work with a refused trace"
bed_stop
[ "$(cat "$work/victim")" = precious ] || bed_fail "the driver wrote through trace=LINK"
[ -L "$work/link" ] || bed_fail "the link was replaced"
echo "ok - trace=LINK refused, the reader still works"

bed_start --driver pcsctap --driver-opts "listen=0.0.0.0:trace=$work/dangling"
got=$(listen_addr "$BED_PORT")
[ "$got" = 00000000 ] || bed_fail "listen=0.0.0.0: listening on [$got] for port $BED_PORT"
echo "ok - listen=0.0.0.0 listens on every interface"
bed_stop
[ ! -e "$work/created-by-attack" ] || bed_fail "the driver created the target of a dangling trace= link"
echo "ok - trace=DANGLING-LINK refused"
