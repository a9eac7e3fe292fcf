#!/bin/sh
# CLI tests of pcsctap show / sessions / stats / export on generated traces:
# output, filters, JSON, colour, --follow, and the documented exit codes.
# usage: test_cli.sh PCSCTAP GEN_TRACE
set -u
PCSCTAP=$1
GEN=$2
. "$(dirname "$0")/tap.sh"

status_is() {
	# status_is WANT DESCRIPTION COMMAND...
	want=$1
	d=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	lines=$(wc -l <"$T/err")
	if [ "$got" -eq "$want" ] && { [ "$want" -eq 0 ] || [ "$lines" -eq 1 ]; }; then
		ok "$d (exit $got)"
	else
		fail "$d (exit $got, want $want; stderr lines $lines)"
		sed 's/^/# /' "$T/err"
	fi
}
count() {
	# count PATTERN FILE
	grep -c -- "$1" "$2" || true
}

"$GEN" --calls 200 --processes 2 --wire "$T/wire.db" "$T/t.db" || { echo "Bail out! gen_trace failed"; exit 1; }
"$GEN" --empty "$T/empty.db" || { echo "Bail out! gen_trace --empty failed"; exit 1; }

# --help, --version
for c in show sessions stats export; do
	status_is 0 "$c --help" "$PCSCTAP" "$c" --help
	check "$c --help names the command" grep -q "usage: pcsctap $c" "$T/out"
done
status_is 0 "--version" "$PCSCTAP" --version
check "--version prints the version" grep -q '^pcsctap [0-9]' "$T/out"

# show: one line per call and marker
status_is 0 "show" "$PCSCTAP" show "$T/t.db"
calls=$(count ' SCard' "$T/out")
markers=$(count ' marker ' "$T/out")
check "show: 196 calls ($calls)" [ "$calls" -eq 196 ]
check "show: 48 markers ($markers)" [ "$markers" -eq 48 ]
check "show: SELECT decoded" grep -q 'SELECT 00 A4 04 00 Lc=7 Le=256 A0000000030000 < 9000 success' "$T/out"
check "show: GP INS named" grep -q 'INITIALIZE UPDATE 80 50 00 00' "$T/out"
check "show: extended lengths" grep -q 'Lc=3 Le=65536 ext' "$T/out"
check "show: SW meaning" grep -q '63C2 warning: counter 2 (retries left)' "$T/out"
check "show: return code by name and hex" grep -q 'SCARD_E_UNKNOWN_READER (0x80100009)' "$T/out"
check "show: removed card" grep -q 'SCARD_W_REMOVED_CARD (0x80100069)' "$T/out"
check "show: relative time first" grep -q '^ *+0.000000 ' "$T/out"
check "show: no colour when piped" sh -c "! grep -q \"$(printf '\033')\" '$T/out'"
status_is 0 "show --color always" "$PCSCTAP" show --color always "$T/t.db"
check "show --color always colours" grep -q "$(printf '\033')\[" "$T/out"
NO_COLOR=1 "$PCSCTAP" show "$T/t.db" >"$T/out"
check "show honours NO_COLOR" sh -c "! grep -q \"$(printf '\033')\" '$T/out'"
status_is 1 "show --color bad" "$PCSCTAP" show --color sometimes "$T/t.db"
status_is 0 "show --wall" "$PCSCTAP" show --wall "$T/t.db"
check "show --wall prints dates" grep -q '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9] [0-9:]*\.[0-9]\{6\} ' "$T/out"

# merged with the driver's wire view, in time order
status_is 0 "show two traces" "$PCSCTAP" show "$T/t.db" "$T/wire.db"
wire=$(count ' wire apdu ' "$T/out")
check "show: wire APDUs merged ($wire)" [ "$wire" -eq 50 ]
check "show: wire power-on" grep -q 'wire power-on \[Virtual PCD 00 00\] atr=3B80800101' "$T/out"
check "show: merged lines in time order" sh -c "sed 's/^ *+//' '$T/out' | cut -d' ' -f1 | sort -c -g"

# filters
status_is 0 "show --function" "$PCSCTAP" show --function Transmit "$T/t.db"
check "show --function: only Transmit" [ "$(count SCardTransmit "$T/out")" -eq "$(wc -l <"$T/out")" ]
check "show --function: 102 Transmits" [ "$(wc -l <"$T/out")" -eq 102 ]
status_is 1 "show --function unknown" "$PCSCTAP" show --function SCardFoo "$T/t.db"
status_is 0 "show --grep" "$PCSCTAP" show --grep 'A0 00 00 00 03' "$T/t.db"
check "show --grep: only SELECT AID" [ "$(count 'A0000000030000' "$T/out")" -eq "$(wc -l <"$T/out")" ]
check "show --grep: 12 hits" [ "$(wc -l <"$T/out")" -eq 12 ]
status_is 1 "show --grep not hex" "$PCSCTAP" show --grep 'XYZ' "$T/t.db"
status_is 0 "show --reader" "$PCSCTAP" show --reader 'Virtual PCD 00 01' "$T/t.db"
check "show --reader: none of the other reader" sh -c "! grep -q 'PCD 00 00' '$T/out'"
check "show --reader: has APDUs" grep -q 'SCardTransmit' "$T/out"
pid=$("$PCSCTAP" sessions --json "$T/t.db" | sed -n '1s/.*"pid":\([0-9]*\).*/\1/p')
status_is 0 "show --pid" "$PCSCTAP" show --pid "$pid" "$T/t.db"
check "show --pid: only that pid" [ "$(count "gen_trace\[$pid\]" "$T/out")" -eq "$(wc -l <"$T/out")" ]
check "show --pid: half the calls" [ "$(count ' SCard' "$T/out")" -eq 98 ]
sid=$("$PCSCTAP" sessions --json "$T/t.db" | sed -n '2s/.*"id":\([0-9]*\),.*/\1/p')
status_is 0 "show --session" "$PCSCTAP" show --session "$sid" "$T/t.db"
check "show --session: Connect to Disconnect" sh -c "head -1 '$T/out' | grep -q SCardConnect && tail -1 '$T/out' | grep -q SCardDisconnect"
check "show --session: 9 APDUs" [ "$(count SCardTransmit "$T/out")" -eq 9 ]
check "show --session: 4 markers" [ "$(count ' marker ' "$T/out")" -eq 4 ]
status_is 2 "show --session missing" "$PCSCTAP" show --session 999999 "$T/t.db"
status_is 0 "show --since/--until" "$PCSCTAP" show --since 0.001 --until 0.002 "$T/t.db"
check "show --since/--until: within the span" sh -c "[ -s '$T/out' ] && sed 's/^ *+//' '$T/out' | cut -d' ' -f1 | awk '\$1 < 0.001 || \$1 > 0.002 { bad = 1 } END { exit bad }'"

# JSON
status_is 0 "show --json" "$PCSCTAP" show --json "$T/t.db" "$T/wire.db"
check "show --json: every line parses" python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert o["type"] in ("call", "marker", "wire")
    if o["type"] == "call" and o["fn"] == "SCardTransmit" and o.get("apdu", {}).get("ins") == 0xA4:
        n += 1
assert n == 22, n
' "$T/out"

# sessions
status_is 0 "sessions" "$PCSCTAP" sessions "$T/t.db"
check "sessions: 12 sessions" grep -q '^12 sessions$' "$T/out"
check "sessions: columns" grep -q 'Virtual PCD 00 00 *SHARED *T1 .* LEAVE *4$' "$T/out"
status_is 0 "sessions --json" "$PCSCTAP" sessions --json "$T/t.db"
check "sessions --json parses" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 12
assert all(r["markers"] == 4 and r["transactions"] == 1 for r in rows)
assert sum(r["apdus"] for r in rows) == 100
' "$T/out"
status_is 0 "sessions --reader" "$PCSCTAP" sessions --reader 'Virtual PCD 00 01' "$T/t.db"
check "sessions --reader: 6" grep -q '^6 sessions$' "$T/out"

# stats
status_is 0 "stats" "$PCSCTAP" stats "$T/t.db"
check "stats: Transmit count" grep -q '^SCardTransmit  *102  *2 ' "$T/out"
check "stats: INS" grep -q 'ISO  A4 SELECT  *22$' "$T/out"
check "stats: SW" grep -q '^6A82 error: file or application not found  *10$' "$T/out"
check "stats: processes" [ "$(count '^gen_trace\[' "$T/out")" -eq 2 ]
status_is 0 "stats --json" "$PCSCTAP" stats --json "$T/t.db"
check "stats --json parses" python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
f = {x["fn"]: x for x in o["functions"]}
assert f["SCardTransmit"]["count"] == 102
assert 0 < f["SCardTransmit"]["p50_ns"] <= f["SCardTransmit"]["p99_ns"] <= f["SCardTransmit"]["max_ns"]
assert o["apdus"] == 102
assert f["SCardTransmit"]["shim_ns"] >= 0
' "$T/out"

# errors: one line on stderr, distinct exit codes
status_is 1 "unknown option" "$PCSCTAP" show --no-such-option "$T/t.db"
status_is 2 "missing file" "$PCSCTAP" show "$T/nope.db"
echo "not a database at all, but long enough to have a header of sorts" >"$T/text.db"
status_is 5 "not SQLite" "$PCSCTAP" sessions "$T/text.db"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("create table x(a)"); c.commit()' "$T/foreign.db"
status_is 5 "foreign SQLite" "$PCSCTAP" stats "$T/foreign.db"
cp "$T/t.db" "$T/newer.db"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("pragma user_version = 99"); c.commit()' "$T/newer.db"
status_is 6 "newer schema" "$PCSCTAP" show "$T/newer.db"
for c in show sessions stats; do
	status_is 7 "$c: empty trace" "$PCSCTAP" $c "$T/empty.db"
done
status_is 7 "export: empty trace" "$PCSCTAP" export -o "$T/e.pcapng" "$T/empty.db"
check "export: no file left for an empty trace" [ ! -e "$T/e.pcapng" ]
status_is 3 "unwritable output" "$PCSCTAP" export -o "$T/no/such/dir/x.pcapng" "$T/t.db"
status_is 1 "export without -o" "$PCSCTAP" export "$T/t.db"
status_is 1 "export bad format" "$PCSCTAP" export -o "$T/x" --format tar "$T/t.db"
if [ -w /dev/full ]; then
	"$PCSCTAP" show "$T/t.db" >/dev/full 2>"$T/err"
	st=$?
	check "show >/dev/full: exit 3 ($st)" [ "$st" -eq 3 ]
fi
PCSCTAP_TRACE="$T/t.db" "$PCSCTAP" sessions >"$T/out" 2>&1
check "PCSCTAP_TRACE is the default trace" grep -q '^12 sessions$' "$T/out"
env -u PCSCTAP_TRACE "$PCSCTAP" sessions >/dev/null 2>&1
st=$?
check "no trace at all: usage ($st)" [ "$st" -eq 1 ]

# card: an address that cannot work is a usage error at once, not a retry
# loop (timeout: a hang would otherwise be the failure)
for a in bogus :80 127.0.0.1:99999 127.0.0.1:0 127.0.0.1: 127.0.0.1:-1 127.0.0.1:+80 127.0.0.1:8x no-such-host.invalid:80; do
	status_is 1 "card --connect $a" timeout 10 "$PCSCTAP" card --quiet --once --connect "$a"
done
for a in 127.0.0.1:99999 127.0.0.1:0 bogus; do
	status_is 1 "card --listen $a" timeout 10 "$PCSCTAP" card --quiet --once --listen "$a"
done
check "card: the error names the option and the address" grep -q "^pcsctap card: --listen 'bogus': not HOST:PORT" "$T/err"

# small ones: the path said once, what a directory or a FIFO is, NaN times,
# option errors named after the full command
"$PCSCTAP" show "$T/nope.db" 2>"$T/err"
check "an error names the path once" [ "$(cat "$T/err")" = "pcsctap show: $T/nope.db: No such file or directory" ]
"$PCSCTAP" sessions "$T/text.db" 2>"$T/err"
check "not SQLite: the path once" [ "$(cat "$T/err")" = "pcsctap sessions: $T/text.db: not an SQLite database" ]
mkdir "$T/dir.db"
status_is 2 "a directory as the trace" "$PCSCTAP" show "$T/dir.db"
check "a directory is called one" grep -q "dir.db: is a directory, not a trace" "$T/err"
mkfifo "$T/fifo.db"
status_is 2 "a FIFO as the trace" timeout 10 "$PCSCTAP" stats "$T/fifo.db"
check "a FIFO is called one" grep -q "fifo.db: is a FIFO, not a trace" "$T/err"
for v in nan NaN -nan inf -1; do
	status_is 1 "show --since $v" "$PCSCTAP" show --since "$v" "$T/t.db"
	status_is 1 "show --until $v" "$PCSCTAP" show --until "$v" "$T/t.db"
done
for c in run card; do
	status_is 1 "$c --no-such-option" "$PCSCTAP" $c --no-such-option
	check "$c: the option error says 'pcsctap $c:'" grep -q "^pcsctap $c: unknown option" "$T/err"
done

# --follow: lines appear as another process appends to the trace
"$GEN" --calls 40 "$T/f.db"
: >"$T/follow"	# there before the loop below reads it
"$PCSCTAP" show --follow "$T/f.db" >>"$T/follow" 2>&1 &
fpid=$!
i=0
while [ "$(count ' SCard' "$T/follow")" -lt 38 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
"$GEN" --calls 40 "$T/f.db"
i=0
while [ "$(count ' SCard' "$T/follow")" -lt 76 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
got=$(count ' SCard' "$T/follow")
kill "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null
check "show --follow prints appended calls ($got)" [ "$got" -eq 76 ]

tap_end
