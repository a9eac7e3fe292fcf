#!/usr/bin/python3
"""rt_pyscard.py READER STEP... — a pyscard client (it dlopens libpcsclite,
so the shim reaches it only as the replacement library) that runs a script
of steps and prints one line per step, handles left out.  Steps:
  connect:SHARE:PROTO   SHARE shared|exclusive, PROTO t0|t1|t01
  transmit:HEX          one APDU (prints the response)
  begin | end:DISP      SCardBeginTransaction / SCardEndTransaction
  disconnect:DISP       DISP leave|reset|unpower
  wait:FILE             create FILE.ready, then wait (bounded) for FILE:
                        the test's cue, to interleave two processes
Exit status 0 when every step succeeded."""
import os
import sys
import time
from smartcard.scard import (SCardEstablishContext, SCardReleaseContext, SCardConnect,
                             SCardDisconnect, SCardTransmit, SCardBeginTransaction,
                             SCardEndTransaction, SCARD_SCOPE_USER, SCARD_SHARE_SHARED,
                             SCARD_SHARE_EXCLUSIVE, SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1,
                             SCARD_LEAVE_CARD, SCARD_RESET_CARD, SCARD_UNPOWER_CARD)

SHARE = {"shared": SCARD_SHARE_SHARED, "exclusive": SCARD_SHARE_EXCLUSIVE}
PROTO = {"t0": SCARD_PROTOCOL_T0, "t1": SCARD_PROTOCOL_T1,
         "t01": SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1}
DISP = {"leave": SCARD_LEAVE_CARD, "reset": SCARD_RESET_CARD, "unpower": SCARD_UNPOWER_CARD}


def check(step, rv, extra=""):
    print("%s rv=0x%08X%s" % (step, rv & 0xFFFFFFFF, extra), flush=True)
    if rv != 0:
        sys.exit(1)


reader = sys.argv[1]
rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
check("establish", rv)
card = proto = None
for step in sys.argv[2:]:
    word, _, arg = step.partition(":")
    if word == "connect":
        share, _, prot = arg.partition(":")
        rv, card, proto = SCardConnect(ctx, reader, SHARE[share], PROTO[prot])
        check(step, rv)
    elif word == "transmit":
        rv, resp = SCardTransmit(card, proto, list(bytes.fromhex(arg)))
        check(step, rv, " resp=" + bytes(resp).hex().upper() if rv == 0 else "")
    elif word == "begin":
        check(step, SCardBeginTransaction(card))
    elif word == "end":
        check(step, SCardEndTransaction(card, DISP[arg]))
    elif word == "disconnect":
        check(step, SCardDisconnect(card, DISP[arg]))
    elif word == "wait":
        open(arg + ".ready", "w").close()
        # Bounded: a test that never gives the cue must not hang the run.
        deadline = time.monotonic() + 60
        while not os.path.exists(arg):
            if time.monotonic() > deadline:
                print("wait: no cue %s" % arg, flush=True)
                sys.exit(1)
            time.sleep(0.02)
        print(step, flush=True)
    else:
        print("unknown step %s" % step, flush=True)
        sys.exit(2)
check("release", SCardReleaseContext(ctx))
