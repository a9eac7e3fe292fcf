#!/bin/bash
# conform.sh — the differential conformance suite: the same client
# (conform.c, > 100 scenarios) on a fresh isolated stack without the shim,
# under `pcsctap run`, and with the shim only as a replacement
# libpcsclite.so.1 on LD_LIBRARY_PATH; every output must be identical.
# Env: CONFORM (the client), PCSCTAP, BED_LIB, BED_STACK, BED_WAIT.
. "$BED_LIB"
bed_require pcscd
work=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-conform.XXXXXX")
trap 'bed_stop; rm -rf "$work"' EXIT

# run_on_fresh_stack NAME [launcher...]: one full pass of the client.
run_on_fresh_stack() {
	local name=$1
	shift
	bed_start --card test --name Conform
	"$@" "$CONFORM" "$BED_READER" "$BED_READER2" "$(cat "$BED_DIR/card.bedpid")" \
		> "$work/$name.out" 2> "$work/$name.err"
	echo "$name: exit $? ($(wc -l < "$work/$name.out") scenarios)"
	bed_stop
}

run_on_fresh_stack plain
run_on_fresh_stack run "$PCSCTAP" run -o "$work/trace" --
mkdir "$work/lib"
ln -s "$PCSCTAP_SHIM" "$work/lib/libpcsclite.so.1"
# The shim as the only libpcsclite.so.1: loads the real one by its path.
run_on_fresh_stack replaced env LD_LIBRARY_PATH="$work/lib" PCSCTAP_TRACE="$work/trace2"

n=$(wc -l < "$work/plain.out")
[ "$n" -ge 60 ] || bed_fail "only $n scenarios ran without the shim: $(tail -3 "$work/plain.err")"
status=0
for v in run replaced; do
	if ! diff -u "$work/plain.out" "$work/$v.out"; then
		echo "FAIL: the application noticed the shim ($v)" >&2
		status=1
	fi
	# Nothing on stdout but the client's lines; stderr only our one note.
	if grep -Ev '^pcsctap: (trace in|no trace written to) ' "$work/$v.err" | grep -q .; then
		echo "FAIL: unexpected stderr ($v):" >&2
		cat "$work/$v.err" >&2
		status=1
	fi
done
[ -s "$work/trace" ] || { echo "FAIL: no trace written under pcsctap run" >&2; status=1; }

# What the traces hold where the library leaves the application's memory
# alone: no ATR for the PnP and the ignored entry (the client filled them
# with A5), mszGroups never read.  The reader's own ATR proves that the
# call and its states were recorded.
for t in "$work/trace" "$work/trace2"; do
	got=$("$TRACE_SQL" "$t" "SELECT s.idx, s.reader, coalesce(hex(s.atr), '') FROM reader_states s
		JOIN calls c ON c.id = s.call_id WHERE c.extra LIKE '%cReaders=3%' ORDER BY s.idx" | tr '\t\n' ',;')
	want="0,Conform 00 00,3B80800101;1,\\\\?PnP?\\Notification,;2,Conform 00 01,;"
	[ "$got" = "$want" ] || { echo "FAIL: $t: reader states [$got], expected [$want]" >&2; status=1; }
	got=$("$TRACE_SQL" "$t" "SELECT count(*), count(data_in) FROM calls WHERE fn = (SELECT id FROM functions WHERE name = 'SCardListReaders')")
	[ "${got#*	}" = 0 ] && [ "${got%	*}" -ge 7 ] ||
		{ echo "FAIL: $t: SCardListReaders calls, with data_in: [$got]" >&2; status=1; }
done
[ $status = 0 ] && echo "ok: $n scenarios identical without and with the shim"
exit $status
