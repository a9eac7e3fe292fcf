#!/bin/sh
# pcsctap export checked with tshark, by counting matches (tshark exits 0
# even when nothing decodes).  Skips (77) without tshark unless CI=true.
# usage: test_export.sh PCSCTAP GEN_TRACE
set -u
PCSCTAP=$1
GEN=$2
if ! command -v tshark >/dev/null 2>&1; then
	if [ "${CI:-}" = true ]; then
		echo "Bail out! tshark is missing (CI=true)"
		exit 1
	fi
	echo "1..0 # SKIP tshark not installed"
	exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
expect() {
	# expect WANT FILE FILTER: count the frames that match a display filter
	want=$1
	file=$2
	filter=$3
	got=$(tshark -r "$file" -2 -Y "$filter" -T fields -e frame.number 2>/dev/null | wc -l)
	n=$((n + 1))
	if [ "$got" -eq "$want" ]; then
		echo "ok $n - $(basename "$file"): $filter = $got"
	else
		fails=$((fails + 1))
		echo "not ok $n - $(basename "$file"): $filter = $got, want $want"
	fi
}

"$GEN" --calls 200 --processes 2 --wire "$T/wire.db" "$T/t.db" || { echo "Bail out! gen_trace"; exit 1; }
"$PCSCTAP" export -o "$T/t.pcapng" "$T/t.db" "$T/wire.db" 2>"$T/err" || { echo "Bail out! export: $(cat "$T/err")"; exit 1; }
"$PCSCTAP" export --format pcap -o "$T/t.pcap" "$T/t.db" 2>"$T/err" || { echo "Bail out! export pcap: $(cat "$T/err")"; exit 1; }

F=$T/t.pcapng
# The shim trace: 2 processes x 51 Transmits (the last fails: no response),
# 12 of them per process in a proprietary class, for which Wireshark
# decodes the CLA only.  The wire trace repeats process 1's 50 good APDUs.
expect 0 "$F" '_ws.malformed || _ws.expert.severity >= warning'
expect 152 "$F" 'iso7816.apdu.cla && exported_pdu.p2p_dir == 0'
expect 116 "$F" 'iso7816.apdu.ins && exported_pdu.p2p_dir == 0'
expect 33 "$F" 'iso7816.apdu.ins == 0xa4'
expect 18 "$F" 'iso7816.apdu.ins == 0x20'
expect 15 "$F" 'iso7816.apdu.ins == 0x84'
expect 150 "$F" 'iso7816.resp_to'
expect 150 "$F" 'iso7816.resp_in'
expect 15 "$F" 'iso7816.apdu.sw1 == 0x6a && iso7816.apdu.sw2 == 0x82'
expect 6 "$F" 'iso7816.atr.init_char == 0x3b && frame.interface_name == "Virtual PCD 00 00"'
expect 6 "$F" 'iso7816.atr.init_char == 0x3b && frame.interface_name == "Virtual PCD 00 01"'
expect 1 "$F" 'iso7816.atr && frame.interface_name == "Virtual PCD 00 00 [driver]"'
expect 14 "$F" 'syslog.msg contains "SCardConnect"'
expect 2 "$F" 'syslog.msg contains "SCARD_E_UNKNOWN_READER" && frame.interface_name == "No Such Reader"'
expect 48 "$F" 'syslog.msg contains "marker connect" || syslog.msg contains "marker disconnect" || syslog.msg contains "marker begin" || syslog.msg contains "marker end"'
expect 24 "$F" 'syslog.msg contains "wire marker"'
expect 2 "$F" 'frame.comment contains "rv=SCARD_W_REMOVED_CARD (0x80100069)"'
expect 200 "$F" 'frame.comment contains "SCardTransmit pid=" && frame.comment contains "rv=SCARD_S_SUCCESS"'
expect 20 "$F" 'iso7816 && frame.comment contains "handle=0x10000 "'
expect 150 "$F" 'exported_pdu.p2p_dir == 1 && iso7816 && !iso7816.atr'
expect 150 "$F" 'frame.p2p_dir == 1 && iso7816 && !iso7816.atr'
expect 8 "$F" 'syslog.msg contains "GetStatusChange" || syslog.msg contains "ListReaders" || syslog.msg contains "Context"'

# One interface per reader, named after it (a failed Connect's too), the
# driver's view of each, and "PC/SC" for calls without a reader.
ifaces=$(tshark -r "$F" -T fields -e frame.interface_name 2>/dev/null | sort -u | tr '\n' '|')
n=$((n + 1))
if [ "$ifaces" = "No Such Reader|PC/SC|Virtual PCD 00 00|Virtual PCD 00 00 [driver]|Virtual PCD 00 01|Virtual PCD 00 01 [driver]|" ]; then
	echo "ok $n - interfaces: $ifaces"
else
	fails=$((fails + 1))
	echo "not ok $n - interfaces: $ifaces"
fi

# Classic pcap through libpcap: same records, no names or comments.
P=$T/t.pcap
expect 0 "$P" '_ws.malformed || _ws.expert.severity >= warning'
expect 102 "$P" 'iso7816.apdu.cla && exported_pdu.p2p_dir == 0'
expect 22 "$P" 'iso7816.apdu.ins == 0xa4'
expect 100 "$P" 'iso7816.resp_to'
expect 14 "$P" 'syslog.msg contains "SCardConnect"'

# A session alone.
"$PCSCTAP" export --session 5 -o "$T/s.pcapng" "$T/t.db" 2>/dev/null
expect 9 "$T/s.pcapng" 'iso7816.apdu.cla && exported_pdu.p2p_dir == 0'
expect 0 "$T/s.pcapng" '_ws.malformed || _ws.expert.severity >= warning'

echo "1..$n"
[ "$fails" -eq 0 ]
