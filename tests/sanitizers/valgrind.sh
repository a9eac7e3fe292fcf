#!/bin/bash
# valgrind.sh PROGRAM [ARG...] — the 'valgrind' test setup's wrapper.
# Criterion runs each test in a re-executed worker whose exit status it
# ignores, so valgrind's --error-exitcode alone lets a bad read or a leak
# inside a test pass.  Here: every process writes its own log, the first
# memory error ends the worker (the test then fails on its own), and any
# log with errors (definite leaks at exit too) fails the run.
set -u
logs=$(mktemp -d "${TMPDIR:-/tmp}/pcsctap-valgrind.XXXXXX")
valgrind --log-file="$logs/%p.log" --error-exitcode=1 --exit-on-first-error=yes \
	--leak-check=full --errors-for-leak-kinds=definite \
	--trace-children=yes \
	--trace-children-skip='*/bash,*/sh,*/python3*,*/java,*/pcscd,*/sqlite3,*/tshark,*/valgrind' \
	"$@"
rc=$?
for f in "$logs"/*.log; do
	# --exit-on-first-error stops before the summary: look for the errors.
	if grep -qE 'ERROR SUMMARY: [1-9]|definitely lost in loss record|Exit program on first error' "$f"; then
		cat "$f" >&2
		rc=1
	fi
done
rm -rf "$logs"
exit $rc
