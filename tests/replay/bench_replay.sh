#!/bin/sh
# bench_replay.sh GEN_TRACE BENCH_REPLAY — bench_replay on synthetic traces
# of 10k, 100k and 1M calls (one reader of gen_trace's two), with the load.
set -eu
gen=$1
bench=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/pcsctap-replay-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
uptime
for calls in 10000 100000 1000000; do
	"$gen" --calls "$calls" "$dir/$calls.trace" > /dev/null
	echo "--- $calls calls"
	"$bench" "$dir/$calls.trace" "Virtual PCD 00 00" 20000
	rm -f "$dir/$calls.trace"*
done
uptime
