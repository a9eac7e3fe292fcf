#!/usr/bin/python3
"""Benchmark worker: one pcscd (PCSCLITE_CSOCK_NAME is read once per
process by libpcsclite, so each stack gets a worker).  Reads commands on
stdin, answers one line of seconds on stdout:
  apdu N            N SCardTransmit of a 5-byte APDU on one T=1 connection
  cd N              N SCardConnect + SCardDisconnect(LEAVE)
  cdm N             the same, plus the two markers the shim would send
"""
import os
import sys
import time

from smartcard.scard import (SCardEstablishContext, SCardConnect, SCardDisconnect,
                             SCardTransmit, SCardControl, SCARD_SCOPE_USER,
                             SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_PCI_T1,
                             SCARD_LEAVE_CARD)

READER = os.environ["BED_READER"]
MARKER_CODE = 0x423300A5
CONNECT = list(bytes.fromhex("0101010400001092030464656d6f040400000001"))
DISCONNECT = list(bytes.fromhex("0103010400001092030464656d6f040400000002090400000000"))
rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
rv, card, proto = SCardConnect(ctx, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)
assert rv == 0, hex(rv)
apdu = [0x00, 0xA4, 0x04, 0x00, 0x00]
for line in sys.stdin:
    cmd, n = line.split()
    n = int(n)
    t0 = time.perf_counter()
    if cmd == "apdu":
        for _ in range(n):
            rv, resp = SCardTransmit(card, SCARD_PCI_T1, apdu)
            assert rv == 0, hex(rv)
    else:
        for _ in range(n):
            rv, c, p = SCardConnect(ctx, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)
            assert rv == 0, hex(rv)
            if cmd == "cdm":
                rv, out = SCardControl(c, MARKER_CODE, CONNECT)
                assert rv == 0, hex(rv)
                rv, out = SCardControl(c, MARKER_CODE, DISCONNECT)
                assert rv == 0, hex(rv)
            SCardDisconnect(c, SCARD_LEAVE_CARD)
    print("%.9f" % (time.perf_counter() - t0), flush=True)
