#!/bin/bash
# fuzz.sh [SECONDS] — build the libFuzzer targets with clang in build-fuzz/
# and run each for SECONDS (default 60) on a copy of its seed corpus.
# New inputs land in build-fuzz/corpus-NAME; crashes in build-fuzz/crash-*.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
out=$src/build-fuzz
if [ ! -d "$out" ]; then
	CC=clang meson setup "$out" "$src" -Db_lundef=false >/dev/null
fi
ninja -C "$out" tests/proxy/fuzz-frames tests/proxy/fuzz-marker >/dev/null
for t in frames marker; do
	mkdir -p "$out/corpus-$t"
	cp -n "$src/tests/proxy/corpus/$t/"* "$out/corpus-$t/" 2>/dev/null || true
	echo "== fuzz-$t for ${secs}s"
	(cd "$out" && "./tests/proxy/fuzz-$t" -max_total_time="$secs" -max_len=70000 \
		-print_final_stats=1 "corpus-$t" 2>&1 | grep -E '^(stat::|#[0-9]+ +DONE|==|SUMMARY)' || true)
done
