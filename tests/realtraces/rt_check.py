#!/usr/bin/python3
"""rt_check.py — assertions on real traces that shell does badly.

  rt_check.py markers CARDLOG MARK TRACE [UNDELIVERED]
      The shim markers the test card logged after line MARK (the driver's
      own protocol and occupancy markers left out), checked against the
      trace: every client (pid + handle) numbers its markers 1, 2, 3...; each carries
      the pid of a traced process and that process's name (the base name
      of its argv[0], what the shim sends); the trace's markers table holds
      exactly the bodies the card got, byte for byte, with rv 0, plus
      UNDELIVERED (default 0) rows with rv != 0.  Prints the sequence
      normalised as tests/shim/markers.sh does (no pid, handle, time).
  rt_check.py json FILE EXPR
      Loads FILE (one JSON object per line, or one object) as `rows`
      (`obj` = the first) and prints the Python expression EXPR.
Exits 1 with a message on stderr when a check fails."""
import json
import os
import re
import sqlite3
import sys


def fail(msg):
    sys.stderr.write("FAIL: %s\n" % msg)
    sys.exit(1)


# The driver's own markers: protocol and occupancy (docs/markers.md section 5).
DRIVER_EVENTS = ("protocol", "reader-in-use", "reader-exclusive", "reader-shared", "reader-free")


def markers(cardlog, mark, trace, undelivered=0):
    with open(cardlog) as f:
        lines = f.read().splitlines()[int(mark):]
    card = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) < 5 or fields[1] != "MARKER" or fields[4].split(" ")[0] in DRIVER_EVENTS:
            continue
        text = fields[4]
        kv = dict(w.split("=", 1) for w in text.split()[1:] if "=" in w)
        card.append((fields[2].upper(), text, kv))
    db = sqlite3.connect("file:%s?mode=ro" % trace, uri=True)
    procs = {pid: os.path.basename((argv or "").split(" ")[0])
             for pid, argv in db.execute("SELECT pid, argv FROM processes")}
    seqs = {}
    for body, text, kv in card:
        client = (kv.get("pid"), kv.get("handle"))
        want = seqs.get(client, 0) + 1
        if int(kv.get("seq", -1)) != want:
            fail("client %s: seq %s where %d was due: %s" % (client, kv.get("seq"), want, text))
        seqs[client] = want
        pid = int(kv.get("pid", -1))
        if pid not in procs:
            fail("marker of pid %d, which is not a traced process %s" % (pid, sorted(procs)))
        if kv.get("process") != procs[pid]:
            fail("marker process=%s, the traced process %d runs %s" % (kv.get("process"), pid, procs[pid]))
    rows = db.execute("SELECT hex(body), rv, pid, card, seq FROM markers ORDER BY t_ns, id").fetchall()
    good = sorted(r[0] for r in rows if r[1] == 0)
    bad = [r for r in rows if r[1] != 0]
    if good != sorted(b for b, _, _ in card):
        fail("the trace's delivered markers (%d) are not the bodies the card got (%d)" % (len(good), len(card)))
    if len(bad) != int(undelivered):
        fail("%d markers with rv != 0 in the trace (want %s): %s" % (len(bad), undelivered, bad))
    for _, text, _ in card:
        print(re.sub(r" t=[0-9]+$", "", re.sub(r"(pid|handle)=[0-9a-fx]+ ", "", text)))


def jsonexpr(path, expr):
    with open(path) as f:
        text = f.read()
    rows = [json.loads(l) for l in text.splitlines() if l.strip()]
    obj = rows[0] if rows else None
    print(eval(expr, {"rows": rows, "obj": obj, "len": len, "sorted": sorted, "set": set}))


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "markers":
        markers(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "json":
        jsonexpr(sys.argv[2], sys.argv[3])
    else:
        fail("usage: rt_check.py markers CARDLOG MARK TRACE [UNDELIVERED] | json FILE EXPR")
