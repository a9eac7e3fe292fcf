#!/usr/bin/python3
"""check_markers.py — every traced client's markers at the card, per client.

    check_markers.py CARD_LOG MARK OUTPUT...

CARD_LOG is the test card's log (tab-separated: time, kind, hex, answer,
text), MARK the number of its lines before the run.  Each OUTPUT is one
contend client's stdout ("pid N", then "call 0xRV" lines); its APDUs carry
its id in P1 (80 10 ID k / 80 20 ID k), read from the file name's
"-ID.out" ending.  For each client the card must have seen exactly its
markers: one connect per successful connect, before the first APDU of
that session; begin/end per successful begin / per end; one disconnect
per disconnect call, after the session's last APDU; seq 1, 2, 3... per
handle without gaps or repeats.  The driver's occupancy markers (no pid)
must agree: none of a client's markers or APDUs may come while the card
was last told reader-free (from the first occupancy marker after MARK on;
before it, the state is not known here).  Prints one line per client; exit
1 on the first violation.  With HOLDER_OUT=FILE (the holder's "held B E" lines,
CLOCK_MONOTONIC ns like the card log), the time from each client's first
to its last marker must have overlapped one of the holder's transactions:
the set-up proves itself.
"""
import os
import re
import sys


# The driver's occupancy events (docs/markers.md section 5) and what they say.
OCCUPANCY = {"reader-in-use": "used", "reader-exclusive": "used", "reader-shared": "used",
             "reader-free": "free"}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def main():
    log, mark, outputs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    with open(log) as f:
        events = [l.rstrip("\n").split("\t") for l in f.readlines()[mark:]]
    total = 0
    holder = []
    if os.environ.get("HOLDER_OUT"):
        holder = [tuple(int(float(x)) for x in l.split()[1:3])
                  for l in open(os.environ["HOLDER_OUT"]) if l.startswith("held ")]
    for out in outputs:
        cid = int(re.search(r"-([0-9a-fA-F]+)\.out$", out).group(1), 16)
        lines = open(out).read().split("\n")
        pid = int(lines[0].split()[1])
        calls = [l.split() for l in lines[1:] if l]
        want = {
            "connect": sum(1 for c in calls if c[0] == "connect" and int(c[1], 16) == 0),
            "begin-transaction": sum(1 for c in calls if c[0] == "begin" and int(c[1], 16) == 0),
            "end-transaction": sum(1 for c in calls if c[0] == "end"),
            "disconnect": sum(1 for c in calls if c[0] == "disconnect"),
        }
        apdus_want = sum(1 for c in calls if c[0] == "transmit" and int(c[1], 16) == 0)
        got = dict.fromkeys(want, 0)
        seq, current, apdus = {}, None, 0
        first = last = None
        occupancy = None
        for i, ev in enumerate(events):
            kind, data, text = ev[1], ev[2], ev[4] if len(ev) > 4 else ""
            if kind == "MARKER" and text.split()[:1] and text.split()[0] in OCCUPANCY:
                occupancy = OCCUPANCY[text.split()[0]]
                continue
            if kind == "MARKER":
                m = dict(w.split("=", 1) for w in text.split()[1:] if "=" in w)
                if int(m.get("pid", -1)) != pid:
                    continue
                if occupancy == "free":
                    fail("client %x: %s while the reader was announced free" % (cid, text.split()[0]))
                name, handle, s = text.split()[0], m["handle"], int(m["seq"])
                if s != seq.get(handle, 0) + 1:
                    fail("client %x: %s seq %d after %d (handle %s)" % (cid, name, s, seq.get(handle, 0), handle))
                seq[handle] = s
                first = i if first is None else first
                last = i
                got[name] = got.get(name, 0) + 1
                if name == "connect":
                    if current is not None:
                        fail("client %x: connect while connected" % cid)
                    current = handle
                elif handle != current:
                    fail("client %x: %s for handle %s outside its session" % (cid, name, handle))
                if name == "disconnect":
                    current = None
            elif kind == "APDU" and len(data) >= 10 and data[:2] == "80" \
                    and data[2:4] in ("10", "20") and int(data[4:6], 16) == cid:
                if current is None:
                    fail("client %x: APDU %s outside a connect..disconnect pair of markers" % (cid, data))
                if occupancy == "free":
                    fail("client %x: APDU %s while the reader was announced free" % (cid, data))
                apdus += 1
        if got != want:
            fail("client %x: markers %s, expected %s" % (cid, got, want))
        if apdus != apdus_want:
            fail("client %x: %d APDUs at the card, %d transmitted" % (cid, apdus, apdus_want))
        n = sum(got.values())
        total += n
        held = 0
        if holder and first is not None:
            t0, t1 = int(events[first][0]), int(events[last][0])
            held = sum(1 for b, e in holder if b < t1 and e > t0)
            if not held:
                fail("client %x: no holder transaction during its session (set-up)" % cid)
        print("client %x: %d markers, %d APDUs, in order; %d holder transactions meanwhile" % (cid, n, apdus, held))
    n_occ = sum(1 for ev in events if ev[1] == "MARKER" and len(ev) > 4
                and ev[4].split()[:1] and ev[4].split()[0] in OCCUPANCY)
    print("markers checked: %d, lost or misordered: 0; occupancy markers: %d" % (total, n_occ))


main()
