#!/bin/sh
# abi.sh SHIM REAL_LIBRARY ABI_NAMES MAP
# The shim exports exactly the real libpcsclite's symbols (names and
# kinds), which are exactly those of scard_api.def and of the version
# script: nothing else (no SQLite, no trace store) leaks.
set -eu
shim=$1 real=$2 names=$3 map=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

exports() {
	# T/t: code; R/D/B/V: data.  Undefined and absolute symbols are not exports.
	nm -D --defined-only "$1" | awk '$2 != "A" {
		k = ($2 ~ /^[Tt]$/) ? "func" : "data"; sub(/@.*/, "", $3); print $3, k }' | sort
}

exports "$shim" > "$tmp/shim"
exports "$real" > "$tmp/real"
"$names" | sort > "$tmp/table"
sed -n '/global:/,/local:/p' "$map" | grep -o '^[[:space:]]*[A-Za-z_][A-Za-z0-9_]*;' |
	tr -d ' \t;' | sort > "$tmp/map"
cut -d' ' -f1 "$tmp/table" > "$tmp/table-names"

status=0
diff -u "$tmp/real" "$tmp/shim" || { echo "FAIL: the shim's exports differ from $real" >&2; status=1; }
diff -u "$tmp/real" "$tmp/table" || { echo "FAIL: scard_api.def differs from $real" >&2; status=1; }
diff -u "$tmp/table-names" "$tmp/map" || { echo "FAIL: the version script differs from scard_api.def" >&2; status=1; }
[ $status = 0 ] && echo "ok: $(wc -l < "$tmp/shim") symbols, identical to $real"
exit $status
