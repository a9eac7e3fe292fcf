#!/bin/sh
# lookup.sh PCSCTAP SHIM — without PCSCTAP_SHIM, `pcsctap run` of a debug
# build run from its build tree injects that tree's shim (cmd_run.c's
# lookup; an installed pcsctap is tests/install/install.sh's business).
set -eu
pcsctap=$1 shim=$(realpath "$2")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
got=$(env -u PCSCTAP_SHIM "$pcsctap" run -o "$dir/t.trace" -- /bin/sh -c 'printf "%s" "$LD_PRELOAD"' 2>/dev/null)
[ "$got" = "$shim" ] || { echo "FAIL: injected '$got', not $shim" >&2; exit 1; }
echo "ok: $shim"
