# lib.sh — helpers for the tests of tests/security (TAP on stdout).
n=0
failed=0
ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}
not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $*"
}
check() {	# DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
# Exit 77 (skip), or fail under CI=true where nothing may be skipped.
skip_all() {
	if [ "${CI:-}" = true ]; then
		echo "1..1"
		echo "not ok 1 - $* (missing dependencies fail under CI=true)"
		exit 1
	fi
	echo "1..0 # SKIP $*"
	exit 77
}
done_testing() {
	echo "1..$n"
	exit $failed
}
