#!/bin/sh
# abi.sh DRIVER MAP IFDHANDLER_H — the reader driver exports exactly the
# IFD handler API that pcsc-lite's ifdhandler.h declares, which is exactly
# its version script: the trace store and SQLite run inside pcscd, so none
# of their symbols (trace_*, sqlite3_*) may be exported, and no trace_*
# reference may stay unresolved (wiretrace.c would then record nothing).
set -eu
driver=$1 map=$2 header=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$driver" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort > "$tmp/exports"
grep -oE '^RESPONSECODE IFDH[A-Za-z]+' "$header" | cut -d' ' -f2 | sort -u > "$tmp/api"
sed -n '/global:/,/local:/p' "$map" | grep -o '^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*;' |
	tr -d ' \t;' | sort > "$tmp/map"

status=0
[ "$(wc -l < "$tmp/api")" -ge 10 ] || { echo "FAIL: $header lists $(wc -l < "$tmp/api") IFDH functions" >&2; exit 1; }
diff -u "$tmp/api" "$tmp/exports" || { echo "FAIL: the driver's exports differ from $header" >&2; status=1; }
diff -u "$tmp/api" "$tmp/map" || { echo "FAIL: the version script differs from $header" >&2; status=1; }
if grep -E '^(sqlite3|trace)_' "$tmp/exports"; then
	echo "FAIL: the driver exports the trace store's or SQLite's symbols" >&2
	status=1
fi
if nm -D --undefined-only "$driver" | grep -E ' trace_'; then
	echo "FAIL: the driver leaves trace_* references unresolved" >&2
	status=1
fi
[ $status = 0 ] && echo "ok: $(wc -l < "$tmp/exports") symbols, the IFD handler API of $header"
exit $status
