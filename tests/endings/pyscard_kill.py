#!/usr/bin/python3
"""pyscard_kill.py READER — pyscard (a dlopen user of libpcsclite) makes the
burst of end-client (establish, list, connect, five transmits), printing
one line per call, then kills itself with SIGKILL."""
import os
import signal
import sys

from smartcard.scard import (SCardEstablishContext, SCardListReaders, SCardConnect,
                             SCardTransmit, SCARD_SCOPE_SYSTEM, SCARD_SHARE_SHARED,
                             SCARD_PROTOCOL_T1)

APDUS = ["00A4040000", "00CA000001", "00CA000002", "00CA000003", "00CA000004"]

rv, ctx = SCardEstablishContext(SCARD_SCOPE_SYSTEM)
print("establish rv=0x%08X" % rv, flush=True)
rv, readers = SCardListReaders(ctx, [])
print("list rv=0x%08X" % rv, flush=True)
rv, card, proto = SCardConnect(ctx, sys.argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)
print("connect rv=0x%08X" % rv, flush=True)
for apdu in APDUS:
    rv, resp = SCardTransmit(card, proto, list(bytes.fromhex(apdu)))
    print("transmit:%s rv=0x%08X resp=%s" % (apdu, rv, bytes(resp).hex().upper()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
