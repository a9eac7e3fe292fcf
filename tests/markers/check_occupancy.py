#!/usr/bin/python3
"""check_occupancy.py — the occupancy markers in the test card's log.

    check_occupancy.py CARD_LOG MARK [--wait-free SECONDS]

Reads the whole log (tab-separated: time, kind, hex, answer, text) and
checks that the occupancy markers are consistent with each other and with
what the card saw: reader-in-use only when free, reader-exclusive only when
in use, reader-shared only when exclusive, reader-free only when not free,
handles as documented (in-use >= 1 or absent, exclusive 1, free 0), and no
APDU and no client marker (connect, disconnect, ...) while the card was
told the reader is free.  A new card connection (CONNECTED) starts free.

Prints the messages after MARK as one line of tokens, repeats collapsed:
use excl shared free (occupancy), connect disconnect begin end protocol
(other markers), apdu:ID (APDUs 80 10|20 ID ..), apdu (others), on off
reset.  With --wait-free, first waits (bounded) until the log ends free.
Exit 1 (with "FAIL: ...") on a violation or if it never ends free.
"""
import sys
import time

TOKENS = {"reader-in-use": "use", "reader-exclusive": "excl", "reader-shared": "shared",
          "reader-free": "free", "connect": "connect", "reconnect": "reconnect",
          "disconnect": "disconnect", "begin-transaction": "begin",
          "end-transaction": "end", "protocol": "protocol"}
KINDS = {"POWER_ON": "on", "POWER_OFF": "off", "RESET": "reset"}
# event: (states it may come from, the state after it)
MOVES = {"use": ({"free"}, "use"), "excl": ({"use"}, "excl"),
         "shared": ({"excl"}, "use"), "free": ({"use", "excl"}, "free")}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def fields(text):
    return dict(w.split("=", 1) for w in text.split()[1:] if "=" in w)


def scan(lines, mark):
    state, tokens = "free", []
    for i, l in enumerate(lines):
        kind, data = l[1], l[2] if len(l) > 2 else ""
        text = l[4] if len(l) > 4 else ""
        tok = None
        if kind == "CONNECTED":
            state = "free"
        elif kind in KINDS:
            tok = KINDS[kind]
        elif kind == "APDU":
            tok = "apdu"
            if len(data) >= 10 and data[:2] == "80" and data[2:4] in ("10", "20"):
                tok = "apdu:%d" % int(data[4:6], 16)
            if state == "free":
                fail("line %d: APDU %s while the reader is announced free" % (i + 1, data))
        elif kind == "MARKER":
            tok = TOKENS.get(text.split()[0] if text else "", "marker?")
            f = fields(text)
            if tok in MOVES:
                src, dst = MOVES[tok]
                if state not in src:
                    fail("line %d: %s after %s" % (i + 1, tok, state))
                h = f.get("handles")
                if (tok == "free" and h != "0") or (tok == "excl" and h != "1") or \
                        (tok in ("use", "shared") and h is not None and int(h) < 1):
                    fail("line %d: %s with handles=%s" % (i + 1, tok, h))
                state = dst
            elif tok not in ("protocol", "marker?") and state == "free":
                fail("line %d: %s marker while the reader is announced free" % (i + 1, tok))
        if tok and i >= mark and (not tokens or tokens[-1] != tok):
            tokens.append(tok)
    return state, tokens


def main():
    log, mark = sys.argv[1], int(sys.argv[2])
    wait = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--wait-free" else 0
    end = time.monotonic() + wait
    while True:
        with open(log) as f:
            lines = [l.rstrip("\n").split("\t") for l in f]
        state, tokens = scan(lines, mark)
        if state == "free" or time.monotonic() >= end:
            break
        time.sleep(0.01)
    print(" ".join(tokens))
    if wait and state != "free":
        fail("the reader is still announced %s after %g s" % (state, wait))


main()
