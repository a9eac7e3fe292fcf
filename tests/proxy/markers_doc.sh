#!/bin/bash
# markers_doc.sh DOC VECTORS: the Python reference parser printed in
# docs/markers.md (the ```python block after "## Python reference parser")
# must decode the bodies that marker_encode produces (VECTORS prints them).
set -eu
doc=$1 vectors=$2
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk '/^## Python reference parser/ { on = 1 } on && /^```python$/ { grab = 1; next } grab && /^```$/ { exit } grab { print }' \
	"$doc" > "$tmp/pcsctap_marker.py"
[ -s "$tmp/pcsctap_marker.py" ] || { echo "FAIL: no python block in $doc" >&2; exit 1; }
"$vectors" > "$tmp/vectors.jsonl"
cd "$tmp"
"$py" - <<'PY'
import json, sys
import pcsctap_marker as pm

n = 0
for line in open("vectors.jsonl"):
    v = json.loads(line)
    got = pm.parse_marker(bytes.fromhex(v["hex"]))
    want = v["expect"]
    if got != want:
        print("FAIL: %s\n  got  %r\n  want %r" % (v["hex"], got, want), file=sys.stderr)
        sys.exit(1)
    n += 1
# Malformed bodies raise ValueError.
for bad in ["", "01", "0201", "010101", "0101010201", "01010102aabb"]:
    try:
        pm.parse_marker(bytes.fromhex(bad))
    except ValueError:
        continue
    print("FAIL: %r accepted" % bad, file=sys.stderr)
    sys.exit(1)
# The frame reader: control byte 05 then the body frame.
import io
body = bytes.fromhex(json.loads(open("vectors.jsonl").readline())["hex"])
stream = io.BytesIO(b"\x00\x01\x05" + len(body).to_bytes(2, "big") + body)
kind, payload = pm.read_message(stream)
assert kind == "marker" and payload["event_name"] == "connect", (kind, payload)
print("ok - %d vectors parsed, malformed bodies refused, framing read" % n)
PY
