#!/usr/bin/python3
"""Arrival and departure latency of a reader (bench_presence.sh).

  bench_presence.py PORT READER COUNT

Runs cards.py blink on PORT (a card that connects, serves 0.6 s, closes,
waits 0.6 s, COUNT times) while waiting in SCardGetStatusChange on READER,
and prints the time from each connect() to PRESENT and from each close()
to EMPTY (both clocks CLOCK_MONOTONIC): median, 90th percentile, max, in ms.
"""
import os
import subprocess
import sys
import tempfile
import time

from smartcard.scard import (
    SCardEstablishContext, SCardGetStatusChange, SCARD_SCOPE_USER, SCARD_STATE_UNAWARE,
    SCARD_STATE_PRESENT, SCARD_STATE_EMPTY, SCARD_STATE_CHANGED)

SCARD_E_TIMEOUT = 0x8010000A


def figures(name, values):
    if not values:
        return "%s: no samples" % name
    v = sorted(values)
    return "%s (n=%d): median %.1f ms, p90 %.1f ms, max %.1f ms" % (
        name, len(v), v[len(v) // 2], v[min(len(v) - 1, (len(v) * 9) // 10)], v[-1])


def main():
    port, reader, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
    if rv:
        sys.exit("SCardEstablishContext: %08X" % (rv & 0xFFFFFFFF))
    rv, states = SCardGetStatusChange(ctx, 0, [(reader, SCARD_STATE_UNAWARE)])
    state = states[0][1] & ~SCARD_STATE_CHANGED
    if state & SCARD_STATE_PRESENT:
        sys.exit("%s is not empty at the start" % reader)
    log = tempfile.NamedTemporaryFile(prefix="pcsctap-blink.", delete=False).name
    card = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "cards.py"),
                             "blink", str(port), str(count), "0.6", "0.6", log])
    events = []
    while True:
        rv, states = SCardGetStatusChange(ctx, 500, [(reader, state)])
        now = time.monotonic_ns()
        if rv == 0:
            new = states[0][1] & ~SCARD_STATE_CHANGED
            if (new ^ state) & SCARD_STATE_PRESENT or (new ^ state) & SCARD_STATE_EMPTY:
                events.append((now, "present" if new & SCARD_STATE_PRESENT else "empty"))
            state = new
        elif (rv & 0xFFFFFFFF) != SCARD_E_TIMEOUT:
            sys.exit("SCardGetStatusChange: %08X" % (rv & 0xFFFFFFFF))
        if card.poll() is not None and rv != 0:
            break
    with open(log) as f:
        card_events = [(int(t), k) for k, t in (l.split() for l in f)]
    os.unlink(log)
    arrive, leave = [], []
    for t, k in card_events:
        want = "present" if k == "connect" else "empty"
        later = [e for e, s in events if e >= t and s == want]
        if later:
            (arrive if k == "connect" else leave).append((later[0] - t) / 1e6)
    print(figures("arrival (connect -> PRESENT)", arrive))
    print(figures("departure (close -> EMPTY)", leave))
    if len(arrive) != count or len(leave) != count:
        sys.exit("only %d arrivals and %d departures of %d seen" % (len(arrive), len(leave), count))


main()
