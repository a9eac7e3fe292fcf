#!/usr/bin/python3
"""occupancy_client.py — an untraced pyscard client for the occupancy tests.

  occupancy_client.py session ID [--exclusive] [--apdus N] [--after FILE]
                      [--ready FILE] [--wait FILE] [--hold SECONDS]
                      [--reconnect-shared] [--disposition leave|reset|unpower]

One session on BED_READER: (wait for --after FILE), connect (shared, or
exclusive), N APDUs 80 10 ID k 00, (create --ready FILE), (wait for --wait
FILE), (sleep --hold), (SCardReconnect to shared, LEAVE, with
--reconnect-shared), one last APDU 80 10 ID FF 00, disconnect.  Its APDUs
carry ID in P1, so check_occupancy.py tells the clients apart.  Waits for
files are bounded (10 s); prints "connected" once connected, then "done".
Environment: PCSCLITE_CSOCK_NAME, BED_READER (tests/bed).
"""
import argparse
import os
import sys
import time

from smartcard.scard import (
    SCardEstablishContext, SCardConnect, SCardReconnect, SCardTransmit, SCardDisconnect,
    SCardReleaseContext, SCARD_SCOPE_USER, SCARD_SHARE_SHARED, SCARD_SHARE_EXCLUSIVE,
    SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1, SCARD_PCI_T0, SCARD_PCI_T1, SCARD_LEAVE_CARD,
    SCARD_RESET_CARD, SCARD_UNPOWER_CARD, SCARD_S_SUCCESS)

DISPOSITIONS = {"leave": SCARD_LEAVE_CARD, "reset": SCARD_RESET_CARD,
                "unpower": SCARD_UNPOWER_CARD}


def wait_file(path):
    end = time.monotonic() + 10
    while not os.path.exists(path):
        if time.monotonic() > end:
            sys.exit("timed out waiting for %s" % path)
        time.sleep(0.005)


def check(what, rv):
    if rv != SCARD_S_SUCCESS:
        sys.exit("%s: 0x%08X" % (what, rv & 0xFFFFFFFF))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["session"])
    p.add_argument("id", type=lambda s: int(s, 0))
    p.add_argument("--exclusive", action="store_true")
    p.add_argument("--apdus", type=int, default=2)
    p.add_argument("--after")
    p.add_argument("--ready")
    p.add_argument("--wait")
    p.add_argument("--hold", type=float, default=0)
    p.add_argument("--reconnect-shared", action="store_true")
    p.add_argument("--disposition", choices=DISPOSITIONS, default="leave")
    a = p.parse_args()
    reader = os.environ["BED_READER"]
    rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
    check("establish", rv)
    if a.after:
        wait_file(a.after)
    share = SCARD_SHARE_EXCLUSIVE if a.exclusive else SCARD_SHARE_SHARED
    rv, card, proto = SCardConnect(ctx, reader, share, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1)
    check("connect", rv)
    print("connected", flush=True)
    pci = SCARD_PCI_T1 if proto == SCARD_PROTOCOL_T1 else SCARD_PCI_T0

    def apdu(k):
        rv, _ = SCardTransmit(card, pci, [0x80, 0x10, a.id, k, 0x00])
        check("transmit", rv)

    for k in range(a.apdus):
        apdu(k)
    if a.ready:
        open(a.ready, "w").close()
    if a.wait:
        wait_file(a.wait)
    if a.hold:
        time.sleep(a.hold)
    if a.reconnect_shared:
        rv, proto = SCardReconnect(card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                                   SCARD_LEAVE_CARD)
        check("reconnect", rv)
        pci = SCARD_PCI_T1 if proto == SCARD_PROTOCOL_T1 else SCARD_PCI_T0
    apdu(0xFF)
    check("disconnect", SCardDisconnect(card, DISPOSITIONS[a.disposition]))
    SCardReleaseContext(ctx)
    print("done", flush=True)


main()
