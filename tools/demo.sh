#!/bin/bash
# demo.sh — the built-in demo: an isolated pcscd with a virtual reader and
# the reference virtual card, an unmodified client (opensc-tool) talking to
# it, and what the card saw.  Installs and builds first (tools/setup.sh).
# Touches no system pcscd; leaves no process, mount or socket behind.
set -eu

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PCSCTAP_BUILD:-$top/build}
bash "$top/tools/setup.sh"

export PCSCTAP=$build/tools/pcsctap BED_WAIT=$build/tests/bed/bedwait
work=$(mktemp -d /tmp/pcsctap-demo.XXXXXX)
trap '"$top/tests/bed/stack.sh" stop "$work/stack"; rm -rf "$work"' EXIT

echo "== starting an isolated pcscd, a virtual reader and the pcsctap card"
"$top/tests/bed/stack.sh" start "$work/stack" --owner $$ --name "pcsctap demo"
set -a
. "$work/stack/env"
set +a

echo "== opensc-tool -a; opensc-tool -s 00A4040000 (unmodified client)"
opensc-tool -r "$BED_READER" -a
opensc-tool -r "$BED_READER" -s 00A4040000

echo "== what the virtual card received"
sleep 1	# let pcscd's idle power-down reach the card, to show it too
cat "$BED_DIR/card.out"
