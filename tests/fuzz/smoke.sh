#!/bin/bash
# smoke.sh NAME FUZZER SECONDS CORPUS... -- [LIBFUZZER FLAGS]
# One time-bounded libFuzzer run on a scratch copy of the corpora (the
# committed seeds are only read).  Prints the executions; fails on any
# crash, leak, timeout or sanitizer report, whose input is kept in
# $FUZZ_ARTIFACTS for a regression test (docs/testing.md).
set -u
name=$1 fuzzer=$2 secs=$3
shift 3
corpora=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	corpora+=("$1")
	shift
done
[ $# -gt 0 ] && shift
artifacts=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/pcsctap-fuzz-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/new"

# New inputs go to the first directory, the scratch one.  -timeout: one
# input may take at most 10 s; -rss_limit_mb: a memory blow-up is a finding.
"$fuzzer" -max_total_time="$secs" -print_final_stats=1 -timeout=10 \
	-rss_limit_mb=2048 -artifact_prefix="$artifacts/$name-" "$@" \
	"$work/new" "${corpora[@]}" >"$work/log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
echo "fuzz-$name: ${execs:-?} executions in ${secs}s, $(ls "$work/new" | wc -l) new inputs, exit $rc"
if [ $rc -ne 0 ] || [ -z "$execs" ]; then
	tail -n 60 "$work/log"
	ls "$artifacts"/"$name"-* 2>/dev/null
	exit 1
fi
