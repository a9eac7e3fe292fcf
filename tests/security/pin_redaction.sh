#!/bin/bash
# pin_redaction.sh — PINs stay out of traces by default.  opensc-tool sends
# VERIFY, CHANGE REFERENCE DATA and RESET RETRY COUNTER under pcsctap run,
# through the pcsctap driver with a wire trace: in both traces the data
# bytes are FF (header and Lc kept, redacted = 1 in calls) and the PIN
# bytes appear nowhere in the files; `pcsctap run --no-redact` keeps them
# in the shim's trace (the wire view has no opt-out).
. "$BED_LIB"
bed_require pcscd sqlite3 opensc-tool
work=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-pin.XXXXXX")
trap 'bed_stop; rm -rf "$work"' EXIT
bed_start --driver pcsctap --driver-opts "trace=$work/wire.db"

# PINs chosen to be easy to find in the raw files: ASCII "PIN!" + digits.
verify=002000810850494E2131323334
change=002400811050494E213131313150494E2132323232
reset=002C00811050494E213333333350494E2134343434
"$PCSCTAP" run -o "$work/calls.db" -- opensc-tool -r "$BED_READER" \
	-s "$verify" -s "$change" -s "$reset" >"$work/out" 2>&1 ||
	bed_fail "opensc-tool failed: $(cat "$work/out")"
"$PCSCTAP" run --no-redact -o "$work/kept.db" -- opensc-tool -r "$BED_READER" \
	-s "$verify" >/dev/null 2>&1 || bed_fail "opensc-tool --no-redact failed"
bed_stop

q() { sqlite3 -separator ' ' "$1" "$2" 2>&1; }
expect() {	# DESCRIPTION GOT EXPECTED
	[ "$2" = "$3" ] || bed_fail "$1: expected [$3], got [$2]"
	echo "ok - $1"
}
ff() { printf 'FF%.0s' $(seq "$1"); }
expect "calls: redacted" "$(q "$work/calls.db" "SELECT hex(data_in), redacted FROM calls WHERE fn = 12 AND substr(hex(data_in), 3, 2) IN ('20', '24', '2C') ORDER BY id")" \
"0020008108$(ff 8) 1
0024008110$(ff 16) 1
002C008110$(ff 16) 1"
expect "wire: redacted" "$(q "$work/wire.db" "SELECT hex(sent) FROM wire WHERE kind = 256 AND substr(hex(sent), 3, 2) IN ('20', '24', '2C') ORDER BY id")" \
"0020008108$(ff 8)
0024008110$(ff 16)
002C008110$(ff 16)
0020008108$(ff 8)"	# the last one is the --no-redact run's
expect "--no-redact keeps the PIN in calls" "$(q "$work/kept.db" "SELECT hex(data_in), redacted FROM calls WHERE fn = 12 AND substr(hex(data_in), 3, 2) = '20'")" \
	"$verify 0"
# Not in any page, free list, -wal or journal of the redacted traces.
for f in "$work"/calls.db* "$work"/wire.db*; do
	! grep -q -a 'PIN!' "$f" || bed_fail "a PIN is in $f"
done
echo "ok - no PIN bytes in the files"
grep -q -a 'PIN!' "$work"/kept.db* || bed_fail "the --no-redact trace lost its PIN (grep does not work?)"
echo "ok - the PIN is in the --no-redact trace"
