#!/usr/bin/python3
"""bench_occupancy.py — how soon the card learns of a client, untraced.

    bench_occupancy.py SESSIONS COLD_SESSIONS
    bench_occupancy.py apdus N       (prints "shared US" and "exclusive US")

Each session: SCardConnect (shared, no APDU: the watcher alone must see
it), 20 ms, SCardDisconnect(LEAVE).  Latency of reader-in-use = the card's
log time of the marker minus the client's CLOCK_MONOTONIC right after
SCardConnect returned; of reader-free = the marker's time minus the
client's time just before SCardDisconnect was called.  Baseline, in the
run: the POWER_OFF that pcscd sends 0.4 s after the last disconnect, the
end of a session as a card saw it without occupancy markers.  "warm": the
next session starts 50 ms after the previous one, the card still powered;
"cold": each session waits for that POWER_OFF, so its connect powers the
card up.  Prints median and p99 in ms (a marker may reach the card before
the client has its answer: negative figures are real); never fails on
time.  "apdus": the median APDU round trip in microseconds of N APDUs in
a shared and in an exclusive session (the shell compares markers on and
off).  Environment: BED_READER, BED_CARD_LOG, PCSCLITE_CSOCK_NAME.
"""
import os
import random
import sys
import time

from smartcard.scard import (
    SCardEstablishContext, SCardConnect, SCardDisconnect, SCardTransmit, SCARD_SCOPE_USER,
    SCARD_SHARE_SHARED, SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T1, SCARD_PROTOCOL_T0,
    SCARD_PCI_T1, SCARD_LEAVE_CARD, SCARD_S_SUCCESS)

READER = os.environ["BED_READER"]
LOG = os.environ["BED_CARD_LOG"]


class Log:
    def __init__(self):
        self.f = open(LOG)
        self.f.seek(0, 2)

    def wait(self, kind, name="", seconds=3):
        """The card's log time of the next KIND message (a marker NAME)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            line = self.f.readline()
            if not line:
                time.sleep(0.0005)
                continue
            f = line.rstrip("\n").split("\t")
            if f[1] == kind and (not name or (len(f) > 4 and f[4].startswith(name + " "))):
                return int(f[0])
        return None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def show(label, xs, base=None):
    if not xs:
        print("%-36s no samples" % label)
        return
    line = "%-36s median %7.2f ms  p99 %7.2f ms  (n=%d)" % (
        label, pct(xs, 50) / 1e6, pct(xs, 99) / 1e6, len(xs))
    if base:
        line += "  baseline/this: %.0fx" % (pct(base, 50) / max(pct(xs, 50), 1))
    print(line)


def apdus(n):
    _, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
    for label, share in (("shared", SCARD_SHARE_SHARED), ("exclusive", SCARD_SHARE_EXCLUSIVE)):
        rv, card, _ = SCardConnect(ctx, READER, share, SCARD_PROTOCOL_T1)
        if rv != SCARD_S_SUCCESS:
            sys.exit("connect: 0x%08X" % (rv & 0xFFFFFFFF))
        times = []
        for i in range(n):
            t0 = time.monotonic_ns()
            SCardTransmit(card, SCARD_PCI_T1, [0x80, 0x10, 0x01, i & 0xFF, 0x00])
            times.append(time.monotonic_ns() - t0)
        SCardDisconnect(card, SCARD_LEAVE_CARD)
        print("%s %.1f" % (label, pct(times, 50) / 1e3))


def main():
    if sys.argv[1] == "apdus":
        apdus(int(sys.argv[2]))
        return
    warm, cold = int(sys.argv[1]), int(sys.argv[2])
    _, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
    log = Log()
    res = {"warm": [], "cold": []}
    for kind, n in (("warm", warm), ("cold", cold)):
        for i in range(n):
            # A random phase: the watcher's period must not lock onto ours.
            time.sleep(0.05 + random.uniform(0, 0.01))
            rv, card, _ = SCardConnect(ctx, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1)
            t_conn = time.monotonic_ns()
            if rv != SCARD_S_SUCCESS:
                print("connect failed: 0x%08X" % (rv & 0xFFFFFFFF))
                continue
            t_use = log.wait("MARKER", "reader-in-use")
            time.sleep(0.02 + random.uniform(0, 0.01))
            t_disc = time.monotonic_ns()
            SCardDisconnect(card, SCARD_LEAVE_CARD)
            t_free = log.wait("MARKER", "reader-free")
            # Cold: pcscd powers the card down 0.4 s later, what a card saw before.
            t_off = log.wait("POWER_OFF", seconds=2) if kind == "cold" else None
            res[kind].append((t_conn, t_use, t_disc, t_free, t_off))
    print("sessions: %d warm, %d cold; load: %s" % (warm, cold, os.popen("uptime").read().strip()))
    base = [r[4] - r[2] for r in res["cold"] if r[4]]
    for kind in ("warm", "cold"):
        s = res[kind]
        show("%s connect -> reader-in-use" % kind, [r[1] - r[0] for r in s if r[1]])
        show("%s disconnect -> reader-free" % kind, [r[3] - r[2] for r in s if r[3]], base)
        print("%s: %d sessions without a marker within 3 s" % (kind, sum(1 for r in s if not (r[1] and r[3]))))
    show("baseline: disconnect -> POWER_OFF", base)


main()
