#!/usr/bin/python3
"""pyscard (a dlopen user of libpcsclite) through the shim: connect T=1,
a SELECT and a VERIFY, disconnect.  Usage: pyscard_client.py READER"""
import sys
from smartcard.scard import (SCardEstablishContext, SCardConnect, SCardTransmit,
                             SCardDisconnect, SCardReleaseContext, SCARD_SCOPE_USER,
                             SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_LEAVE_CARD)

rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
assert rv == 0, hex(rv)
rv, card, proto = SCardConnect(ctx, sys.argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)
assert rv == 0, hex(rv)
for apdu in ([0x00, 0xA4, 0x04, 0x00, 0x00], [0x00, 0x20, 0x00, 0x81, 0x02, 0x31, 0x32]):
    rv, resp = SCardTransmit(card, proto, apdu)
    assert rv == 0 and resp == [0x90, 0x00], (hex(rv), resp)
rv = SCardDisconnect(card, SCARD_LEAVE_CARD)
assert rv == 0, hex(rv)
SCardReleaseContext(ctx)
print("pyscard ok")
