# tap.sh — TAP helpers for the tools' shell tests (sourced):
#   tap_require TOOL...   skip (77) without them, fail under CI=true
#   ok / fail DESCRIPTION, check DESCRIPTION COMMAND..., tap_end
# and $T, a temporary directory removed at exit (kept with KEEP=1).
n=0
fails=0

tap_require() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 && continue
		if [ "${CI:-}" = true ]; then
			echo "Bail out! $tool is missing (CI=true)"
			exit 1
		fi
		echo "1..0 # SKIP $tool not installed"
		exit 77
	done
}

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

fail() {
	n=$((n + 1))
	fails=$((fails + 1))
	echo "not ok $n - $1"
}

# check DESCRIPTION COMMAND...: passes when the command succeeds
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else fail "$d"; fi
}

tap_end() {
	echo "1..$n"
	[ "$fails" -eq 0 ]
}

T=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT

# with_asan COMMAND...: run COMMAND with libasan first in LD_PRELOAD when
# $PCSCTAP is an ASan build, as its shim needs in programs that are not
# ours (opensc-tool; docs/testing.md, Sanitizers)
TAP_ASAN=$(ldd "${PCSCTAP:-/bin/true}" 2>/dev/null | awk '/libasan/ { print $3 }')
with_asan() {
	LD_PRELOAD=${TAP_ASAN:+$TAP_ASAN${LD_PRELOAD:+:$LD_PRELOAD}} "$@"
}
