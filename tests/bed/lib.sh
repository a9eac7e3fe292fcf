# lib.sh — shell helpers for end-to-end tests on the test bed.
#
#   . "$BED_LIB"
#   bed_require pcscd opensc-tool     # skip (77), or fail when CI=true
#   bed_start [stack.sh options]      # isolated stack; stopped on exit
#   mark=$(bed_mark)                  # a position in the card log
#   bed_wait_kind POWER_OFF 30 "$mark" # poll (tenths of s) for a message
#   bed_kinds "$mark"                 # kinds since the mark, one per line
#   bed_fail "message"                # fail the test

bed_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# TAP lines of a script that checks one $scenario: bed_ok TEXT, and
# bed_expect WHAT GOT WANT (fails the script unless GOT is WANT); bed_n
# counts them.
bed_n=0
bed_ok() {
	bed_n=$((bed_n + 1))
	echo "ok $bed_n - $scenario: $*"
}
bed_expect() {
	[ "$2" = "$3" ] || bed_fail "$scenario: $1: got [$2], want [$3]"
	bed_ok "$1 = $3"
}

bed_skip() {
	if [ "${CI:-}" = true ]; then
		bed_fail "$* (missing dependencies fail under CI=true)"
	fi
	echo "SKIP: $*" >&2
	exit 77
}

bed_require() {
	local c
	[ "$(id -u)" = 0 ] || bed_skip "end-to-end tests need root (private mount namespace)"
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || bed_skip "$c is not installed"
	done
}

bed_start() {
	BED_TMP=$(mktemp -d "${BED_ROOT:-/tmp}/pcsctap-bed.XXXXXX")
	# A test's own EXIT trap (which must call bed_stop) is kept.
	[ -n "$(trap -p EXIT)" ] || trap 'bed_stop' EXIT
	trap 'exit 130' INT TERM
	"$BED_STACK" start "$BED_TMP/stack" --owner $$ "$@" || bed_fail "could not start the test stack"
	set -a
	. "$BED_TMP/stack/env"
	set +a
}

bed_stop() {
	[ -n "${BED_TMP:-}" ] || return 0
	"$BED_STACK" stop "$BED_TMP/stack"
	if [ -n "${BED_KEEP:-}" ]; then
		echo "kept $BED_TMP" >&2
	else
		rm -rf "$BED_TMP"
	fi
	BED_TMP=
}

# The number of lines in the card log: messages after it are "new".
bed_mark() {
	wc -l < "$BED_CARD_LOG"
}

bed_kinds() {
	tail -n +$(( ${1:-0} + 1 )) "$BED_CARD_LOG" | cut -f2
}

# bed_wait_kind KIND TENTHS [MARK]: true once KIND is logged after MARK.
bed_wait_kind() {
	local kind=$1 tenths=$2 mark=${3:-0} i
	for i in $(seq "$tenths"); do
		bed_kinds "$mark" | grep -qx "$kind" && return 0
		sleep 0.1
	done
	return 1
}

# The card log lines after MARK whose kind is KIND, as "hex<TAB>answer".
bed_lines() {
	tail -n +$(( ${2:-0} + 1 )) "$BED_CARD_LOG" | awk -F'\t' -v k="$1" '$2 == k { print $3 "\t" $4 "\t" $5 }'
}
