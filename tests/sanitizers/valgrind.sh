#!/bin/bash
# valgrind.sh PROGRAM [ARG...] — the 'valgrind' test setup's wrapper.
# Criterion runs each test in a re-executed worker and ignores the
# worker's exit status, so valgrind's --error-exitcode alone let a bad read
# or a leak inside a test pass.  Here every process of ours writes its own
# log, the first error stops a test program (its test then fails), and a
# log with an error or a definite leak fails the run.  System programs
# (the shells, python3, sqlite3, mktemp, ...) are not ours: not traced.
# Children that fork without exec (a test's helper processes) are silent:
# they leave through _exit/exit with their parent's heap still allocated.
set -u
logs=$(mktemp -d "${TMPDIR:-/tmp}/pcsctap-valgrind.XXXXXX")
opts=(--log-file="$logs/%p.log" --leak-check=full --errors-for-leak-kinds=definite
	--trace-children=yes --trace-children-skip='/usr/*,/bin/*,/sbin/*,/lib/*'
	--child-silent-after-fork=yes)
# A script test runs its interpreter under valgrind: its own log (and
# exit status) say nothing about our programs, whose logs still count.
script=0
[ "$(head -c 2 "$1" 2>/dev/null)" = '#!' ] && script=1
[ $script = 1 ] || opts+=(--error-exitcode=1 --exit-on-first-error=yes)
valgrind "${opts[@]}" "$@" &
top=$!
wait $top
rc=$?
for f in "$logs"/*.log; do
	[ $script = 1 ] && [ "$f" = "$logs/$top.log" ] && continue
	# --exit-on-first-error stops before the summary: look for the errors.
	if grep -qE 'ERROR SUMMARY: [1-9]|definitely lost in loss record|Exit program on first error' "$f"; then
		cat "$f" >&2
		rc=1
	fi
done
rm -rf "$logs"
exit $rc
