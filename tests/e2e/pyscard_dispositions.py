#!/usr/bin/python3
"""pyscard against the test card: the message sequences of NOTES-pcsc.md.

Connect on an unpowered card powers it before the call returns; Transmit
reaches the card; Disconnect(LEAVE) sends nothing at once and powers down
later; Disconnect(RESET) resets; Disconnect(UNPOWER) powers off.
Run by tests/e2e/pyscard.sh on a started test bed.
"""
import os
import sys
import time

from smartcard.scard import (SCardEstablishContext, SCardConnect, SCardTransmit,
                             SCardDisconnect, SCardReleaseContext,
                             SCARD_SCOPE_USER, SCARD_SHARE_SHARED,
                             SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1,
                             SCARD_PCI_T1, SCARD_LEAVE_CARD, SCARD_RESET_CARD,
                             SCARD_UNPOWER_CARD, SCARD_S_SUCCESS)

LOG = os.environ["BED_CARD_LOG"]
READER = os.environ["BED_READER"]


def lines(mark):
    with open(LOG) as f:
        return [l.rstrip("\n").split("\t") for l in f][mark:]


def kinds(mark, polls=False):
    return [l[1] for l in lines(mark) if polls or l[1] != "GET_ATR"]


def mark():
    with open(LOG) as f:
        return sum(1 for _ in f)


def wait_kind(kind, since, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if kind in kinds(since, polls=True):
            return True
        time.sleep(0.02)
    return False


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)
    print("ok -", what)


def ok(rv, what):
    check(rv == SCARD_S_SUCCESS, "%s (rv 0x%08X)" % (what, rv & 0xFFFFFFFF))


rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
ok(rv, "SCardEstablishContext")

# pcscd powers an idle card down 0.4-0.9 s after the card connects.
check(wait_kind("POWER_OFF", 0, 5), "the idle card was powered down")

m = mark()
rv, card, proto = SCardConnect(ctx, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1)
ok(rv, "SCardConnect on the unpowered card")
check("POWER_ON" in kinds(m), "POWER_ON reached the card before SCardConnect returned: %s" % kinds(m, True))
after_on = kinds(m, True)[kinds(m, True).index("POWER_ON"):]
check("GET_ATR" in after_on, "GET_ATR followed POWER_ON")

m = mark()
rv, resp = SCardTransmit(card, SCARD_PCI_T1, [0x00, 0xA4, 0x04, 0x00, 0x00])
ok(rv, "SCardTransmit")
check(resp == [0x90, 0x00], "response 9000")
apdus = [l for l in lines(m) if l[1] == "APDU"]
check(len(apdus) == 1 and apdus[0][2] == "00A4040000", "exactly the APDU reached the card")

m = mark()
ok(SCardDisconnect(card, SCARD_LEAVE_CARD), "SCardDisconnect(LEAVE)")
check(kinds(m) == [], "LEAVE sent nothing to the card at once: %s" % kinds(m))
check(wait_kind("POWER_OFF", m, 5), "the card was powered down after LEAVE")
check("RESET" not in kinds(m), "no RESET after LEAVE")

rv, card, proto = SCardConnect(ctx, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)
ok(rv, "SCardConnect again")
m = mark()
ok(SCardDisconnect(card, SCARD_RESET_CARD), "SCardDisconnect(RESET)")
check("RESET" in kinds(m), "RESET reached the card: %s" % kinds(m, True))

rv, card, proto = SCardConnect(ctx, READER, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1)
ok(rv, "SCardConnect once more")
m = mark()
ok(SCardDisconnect(card, SCARD_UNPOWER_CARD), "SCardDisconnect(UNPOWER)")
# vpcd does not wait for an answer to POWER_OFF: the call may return first.
check(wait_kind("POWER_OFF", m, 2), "POWER_OFF reached the card: %s" % kinds(m, True))
check(kinds(m)[0] == "POWER_OFF", "POWER_OFF was the first message: %s" % kinds(m))
check("RESET" not in kinds(m), "no RESET on UNPOWER")

ok(SCardReleaseContext(ctx), "SCardReleaseContext")
