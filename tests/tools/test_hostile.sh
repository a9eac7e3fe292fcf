#!/bin/sh
# Hostile and odd traces against show, sessions, stats and export: bytes
# that a terminal would obey, drops, oversized records, an output that is
# an input, bad paths.  Traces are written by gen_trace or by a real
# client under `pcsctap run`, then made hostile with sqlite3 where a real
# writer cannot produce the case.
# usage: test_hostile.sh PCSCTAP GEN_TRACE
set -u
PCSCTAP=$1
GEN=$2
. "$(dirname "$0")/tap.sh"
tap_require sqlite3 opensc-tool tshark
ESC=$(printf '\033')
BEL=$(printf '\007')
# no_controls FILE: no byte below 0x20 but newline, no DEL, nothing above 0x7E
no_controls() {
	! LC_ALL=C grep -q "$(printf '[\001-\011\013-\037\177-\377]')" "$1"
}

# --- item: bytes from a trace are escaped in text output -----------------
# A real program with a name that sets the title and clears the screen,
# traced by the real shim (no pcscd: its one call fails, and is recorded).
EVIL="$T/evil${ESC}]0;pwned${BEL}${ESC}[2J"
cp "$(command -v opensc-tool)" "$EVIL"
PCSCLITE_CSOCK_NAME=$T/no-pcscd with_asan "$PCSCTAP" run -o "$T/evil.db" -- "$EVIL" -l >/dev/null 2>&1
check "set-up: the evil program was traced" \
	sh -c "sqlite3 '$T/evil.db' 'select count(*) from calls' | grep -qv '^0$'"
"$PCSCTAP" show "$T/evil.db" >"$T/out" 2>&1
check "show: the process name is escaped" grep -q 'evil\\x1b\]0;pwned\\x07\\x1b\[2J\[' "$T/out"
check "show: no control byte printed" no_controls "$T/out"
"$PCSCTAP" stats "$T/evil.db" >"$T/out" 2>&1
check "stats: the process name is escaped" grep -q 'evil\\x1b' "$T/out"
check "stats: no control byte printed" no_controls "$T/out"

# A crafted trace: a reader name with ESC and a newline that forges a line.
"$GEN" --calls 60 "$T/reader.db" || { echo "Bail out! gen_trace"; exit 1; }
sqlite3 "$T/reader.db" "update calls set reader = 'Evil' || char(27) || '[2J' || char(10) || '+9.000000 forged SCardConnect' where reader is not null;
update reader_states set reader = 'R' || char(27) || ']0;t' || char(7);
update markers set reader = 'M' || char(27) || '[31m' where reader is not null;
update processes set exe = '/bin/p' || char(27) || 'c' || cast(x'9b' as text) || '2J',
	name = 'p' || char(27) || 'c' || cast(x'9b' as text) || '2J';"
lines=$("$PCSCTAP" show --function Connect "$T/reader.db" | wc -l)
"$PCSCTAP" show "$T/reader.db" >"$T/out" 2>&1
check "show: reader name escaped" grep -q 'reader="Evil\\x1b\[2J\\n+9.000000 forged SCardConnect"' "$T/out"
check "show: reader-state name escaped" grep -q '{"R\\x1b\]0;t\\x07"' "$T/out"
check "show: marker reader escaped" grep -q 'reader="M\\x1b\[31m"' "$T/out"
check "show: a byte above 0x7E escaped" grep -q 'p\\x1bc\\x9b2J\[' "$T/out"
check "show: no forged line" sh -c "! grep -q '^+9.000000 forged' '$T/out'"
check "show --function Connect: one line per call ($lines)" [ "$lines" -eq 4 ]
check "show: no control byte printed" no_controls "$T/out"
"$PCSCTAP" sessions "$T/reader.db" >"$T/out" 2>&1
check "sessions: names escaped" grep -q 'p\\x1bc\\x9b2J .*Evil\\x1b\[2J\\n+9.00' "$T/out"
check "sessions: no control byte printed" no_controls "$T/out"
"$PCSCTAP" stats "$T/reader.db" >"$T/out" 2>&1
check "stats: no control byte printed" no_controls "$T/out"
"$PCSCTAP" show --json "$T/reader.db" >"$T/out" 2>&1
check "show --json: still valid JSON with the raw name" python3 -c '
import json, sys
names = {json.loads(l).get("reader") for l in open(sys.argv[1], errors="surrogateescape")}
assert "Evil\x1b[2J\n+9.000000 forged SCardConnect" in names, names
' "$T/out"

# --- item: reader attribution does not depend on the window --------------
"$GEN" --calls 200 --processes 2 "$T/a.db" || { echo "Bail out! gen_trace"; exit 1; }
R='Virtual PCD 00 01'
"$PCSCTAP" show --reader "$R" "$T/a.db" >"$T/full" 2>&1
"$PCSCTAP" show --json --reader "$R" "$T/a.db" >"$T/full.json" 2>&1
# a time inside a session, after its Connect: the 6th event of the reader
cut_rel=$(sed -n 6p "$T/full" | awk '{ print $1 }' | tr -d +)
cut_ns=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[5])["t_ns"])' "$T/full.json")
check "set-up: the cut ($cut_rel s) is inside a session" sh -c "sed -n 6p '$T/full' | grep -q SCardTransmit"
awk -v t="$cut_rel" '{ v = $1; sub(/^\+/, "", v); if (v + 0 >= t + 0) print }' "$T/full" >"$T/want"
"$PCSCTAP" show --reader "$R" --since "$cut_rel" "$T/a.db" >"$T/out" 2>&1
check "show --reader --since: every call of the session kept ($(wc -l <"$T/out") of $(wc -l <"$T/want"))" \
	cmp -s "$T/want" "$T/out"
"$PCSCTAP" show --json "$T/a.db" >"$T/all.json" 2>&1
"$PCSCTAP" show --json --since "$cut_rel" "$T/a.db" >"$T/out" 2>&1
check "show --json --since: each call has the reader it has without --since" python3 -c '
import json, sys
full = {r["id"]: r["reader"] for r in map(json.loads, open(sys.argv[1])) if r["type"] == "call"}
rows = [r for r in map(json.loads, open(sys.argv[2])) if r["type"] == "call"]
assert len(rows) > 100 and sum(r["reader"] is not None for r in rows) > 90, len(rows)
bad = [r for r in rows if r["reader"] != full[r["id"]]]
assert not bad, bad[0]
' "$T/all.json" "$T/out"
"$PCSCTAP" show --reader "$R" --function Transmit "$T/a.db" >"$T/out" 2>&1
check "show --reader --function Transmit: all of them" \
	[ "$(wc -l <"$T/out")" -eq "$(grep -c SCardTransmit "$T/full")" ]
# --follow: the trace first ends inside a session, the rest arrives later.
sqlite3 "$T/a.db" ".backup '$T/f.db'"
sqlite3 "$T/f.db" "delete from reader_states where call_id in (select id from calls where t_enter_ns >= $cut_ns);
delete from calls where t_enter_ns >= $cut_ns; delete from markers where t_ns >= $cut_ns;"
: >"$T/follow"
"$PCSCTAP" show --follow --reader "$R" "$T/f.db" >>"$T/follow" 2>&1 &
follow_pid=$!
i=0
while [ "$(wc -l <"$T/follow")" -lt 5 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "set-up: --follow printed the first part ($(wc -l <"$T/follow") lines)" [ "$(wc -l <"$T/follow")" -eq 5 ]
sqlite3 "$T/f.db" "attach '$T/a.db' as o;
insert into calls select * from o.calls where t_enter_ns >= $cut_ns;
insert into reader_states select * from o.reader_states where call_id in (select id from o.calls where t_enter_ns >= $cut_ns);
insert into markers select * from o.markers where t_ns >= $cut_ns;"
want=$(wc -l <"$T/full")
i=0
while [ "$(wc -l <"$T/follow")" -lt "$want" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5	# one more poll: nothing beyond
kill "$follow_pid"
wait "$follow_pid" 2>/dev/null
check "show --follow --reader: the same lines as without --follow ($(wc -l <"$T/follow") of $want)" \
	cmp -s "$T/full" "$T/follow"

# --- item: dropped events are shown by every reader ----------------------
"$GEN" --calls 60 "$T/d.db" || { echo "Bail out! gen_trace"; exit 1; }
dpid=$(sqlite3 "$T/d.db" "select pid from processes limit 1")
sqlite3 "$T/d.db" "insert into drops values($dpid, 1796180000000000000, 7); insert into drops values($dpid, 1796180001000000000, 1);"
for c in show sessions stats; do
	"$PCSCTAP" $c "$T/d.db" >"$T/out" 2>&1
	check "$c: the drops are said" sh -c "grep -q '^dropped: 7 events of gen_trace\[$dpid\] are not in the trace (' '$T/out' &&
		grep -q '^dropped: 1 event of gen_trace\[$dpid\] is not in the trace (' '$T/out'"
done
"$PCSCTAP" show --json "$T/d.db" >"$T/out" 2>&1
check "show --json: a drops object per row" python3 -c '
import json, sys
d = [o for o in map(json.loads, open(sys.argv[1])) if o["type"] == "drops"]
assert [(o["pid"], o["count"]) for o in d] == [(int(sys.argv[2]), 7), (int(sys.argv[2]), 1)], d
' "$T/out" "$dpid"
"$PCSCTAP" sessions --json "$T/d.db" >"$T/out" 2>&1
check "sessions --json: a drops object per row" python3 -c '
import json, sys
d = [o for o in map(json.loads, open(sys.argv[1])) if o.get("type") == "drops"]
assert sum(o["count"] for o in d) == 8, d
' "$T/out"
"$PCSCTAP" stats --json "$T/d.db" >"$T/out" 2>&1
check "stats --json: dropped and drops" python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["dropped"] == 8 and len(o["drops"]) == 2 and o["calls"] > 0, o
' "$T/out"
"$PCSCTAP" export -o "$T/d.pcapng" "$T/d.db" 2>/dev/null
got=$(tshark -r "$T/d.pcapng" -Y 'syslog.msg contains "dropped: "' -T fields -e frame.comment 2>/dev/null | tr '\n' '|')
check "export: a syslog record per drops row ($got)" [ "$got" = "drops pid=$dpid count=7|drops pid=$dpid count=1|" ]
"$PCSCTAP" stats --json "$T/a.db" >"$T/out" 2>&1
check "stats --json: dropped 0 without drops" python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["dropped"] == 0 and o["drops"] == [], o
' "$T/out"

# --- item: export never destroys an input, writes whole files only --------
"$GEN" --calls 60 "$T/in.db" || { echo "Bail out! gen_trace"; exit 1; }
sqlite3 "$T/in.db" ".backup '$T/del.db'"
sqlite3 "$T/del.db" "pragma journal_mode=delete" >/dev/null
for db in in.db del.db; do
	mode=$(sqlite3 "$T/$db" "pragma journal_mode")
	before=$(sha256sum <"$T/$db")
	"$PCSCTAP" export -o "$T/$db" "$T/$db" >"$T/out" 2>"$T/err"
	rc=$?
	check "export -o INPUT INPUT ($mode journal) is a usage error (rc $rc)" [ "$rc" -eq 1 ]
	check "export -o INPUT INPUT ($mode journal): says why" grep -q "in\.db: is one of the inputs\|del\.db: is one of the inputs" "$T/err"
	check "export -o INPUT INPUT ($mode journal): the input is intact" [ "$(sha256sum <"$T/$db")" = "$before" ]
	check "export -o INPUT INPUT ($mode journal): still a trace" sh -c "'$PCSCTAP' stats '$T/$db' >/dev/null 2>&1"
done
"$PCSCTAP" export -o "$T/in.db" "$T/a.db" "$T/in.db" >/dev/null 2>"$T/err"
check "export: the second input as output is refused too (rc $?)" grep -q 'is one of the inputs' "$T/err"
ln "$T/in.db" "$T/hard.db"
"$PCSCTAP" export -o "$T/hard.db" "$T/in.db" >/dev/null 2>"$T/err"
check "export: a hard link to an input is refused" grep -q 'is one of the inputs' "$T/err"
echo old >"$T/cap.pcapng"
ino=$(stat -c %i "$T/cap.pcapng")
(umask 000; "$PCSCTAP" export -o "$T/cap.pcapng" "$T/in.db" 2>"$T/err")
check "export over an old file: rc 0, replaced by a new file" sh -c "[ \$(stat -c %i '$T/cap.pcapng') != $ino ] && ! grep -q old '$T/cap.pcapng'"
check "export: the capture is 0600 whatever the umask" [ "$(stat -c %a "$T/cap.pcapng")" = 600 ]
check "export: no temporary file left" sh -c "! ls '$T' | grep -q 'tmp-'"
check "export: the capture opens in tshark" sh -c "tshark -r '$T/cap.pcapng' >/dev/null 2>&1"
"$PCSCTAP" export -o /dev/null "$T/in.db" 2>"$T/err"
rc=$?
check "export -o /dev/null: rc $rc, /dev/null still a device" sh -c "[ $rc -eq 0 ] && [ -c /dev/null ]"
echo keep >"$T/target"
ln -s "$T/target" "$T/link.pcapng"
"$PCSCTAP" export -o "$T/link.pcapng" "$T/in.db" 2>"$T/err"
rc=$?
check "export -o SYMLINK: rc $rc, says why" sh -c "[ $rc -eq 3 ] && grep -q 'link.pcapng: is a symbolic link: refused' '$T/err'"
check "export -o SYMLINK: target and link untouched" sh -c "[ \"\$(cat '$T/target')\" = keep ] && [ -L '$T/link.pcapng' ]"
mkdir "$T/sub"
"$PCSCTAP" export -o "$T/sub/" "$T/in.db" 2>"$T/err"
rc=$?
check "export -o DIR/: rc $rc, one line 'is a directory'" sh -c "[ $rc -eq 1 ] && grep -q 'sub/: is a directory' '$T/err' && [ \$(wc -l <'$T/err') -eq 1 ]"
"$PCSCTAP" export -o "$T/nosub/" "$T/in.db" 2>"$T/err"
check "export -o MISSING-DIR/: rc $?, one line" sh -c "grep -q 'nosub/: names a directory' '$T/err'"

# --- item: oversized records still give a capture Wireshark opens ----------
"$GEN" --calls 60 "$T/big.db" || { echo "Bail out! gen_trace"; exit 1; }
sqlite3 "$T/big.db" "update calls set reader = 'R' || hex(zeroblob(500000)) where id = (select min(id) from calls where fn = 4 and rv = 0);
update calls set data_in = randomblob(20000000) where id = (select min(id) from calls where fn = 12);
update calls set data_out = randomblob(300000) where id = (select max(id) from calls where fn = 12 and rv = 0);"
for fmt in pcapng pcap; do
	"$PCSCTAP" export --format $fmt -o "$T/big.$fmt" "$T/big.db" >"$T/out" 2>"$T/err"
	rc=$?
	check "export --format $fmt of oversized records: rc $rc" [ "$rc" -eq 0 ]
	tshark -r "$T/big.$fmt" -T fields -e frame.number >"$T/out" 2>"$T/err"
	rc=$?
	check "tshark reads all of big.$fmt (rc $rc, $(wc -l <"$T/out") frames)" \
		sh -c "[ $rc -eq 0 ] && ! grep -v 'Running as user' '$T/err' && [ \$(wc -l <'$T/out') -gt 60 ]"
	max=$(tshark -r "$T/big.$fmt" -T fields -e frame.cap_len 2>/dev/null | sort -n | tail -1)
	check "big.$fmt: no record beyond 262144 bytes ($max)" [ "$max" -le 262144 ]
	cut=$(tshark -r "$T/big.$fmt" -Y 'frame.len > frame.cap_len' -T fields -e frame.number 2>/dev/null | wc -l)
	# the two Transmits, and the 6 syslog lines of the session that name its reader
	check "big.$fmt: the 8 oversized records are cut, their length kept ($cut)" [ "$cut" -eq 8 ]
done
n_cut=$(tshark -r "$T/big.pcapng" -Y 'frame.comment contains "cut: "' -T fields -e frame.number 2>/dev/null | wc -l)
check "big.pcapng: each cut record's comment says so ($n_cut)" [ "$n_cut" -eq 8 ]

tap_end
