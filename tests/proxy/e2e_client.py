#!/usr/bin/python3
"""PC/SC client for the driver's end-to-end tests (pyscard, Debian's python3).

  e2e_client.py scenario [--vicc]   fixed call sequence; prints, per step, what
                                    the card saw (kinds, repeats collapsed) and
                                    the client's results: compare two drivers
  e2e_client.py features            part 10 feature answer and TLV properties
  e2e_client.py marker HEX          SCardControl(marker code, HEX) -> rv
  e2e_client.py protocol T0|T1      connect with that protocol, disconnect
  e2e_client.py alive SECONDS       pcscd answers and the reader is listed
  e2e_client.py present SECONDS [ATR]  a card (with that ATR) is in the reader
  e2e_client.py nopolls < SCENARIO  the scenario's output without the GET_ATR
                                    of presence polls (those not right after
                                    POWER_ON or RESET): presence=event sends none
Environment: PCSCLITE_CSOCK_NAME, BED_READER, BED_CARD_LOG (tests/bed).
"""
import os
import re
import sys
import time

from smartcard.scard import (
    SCardEstablishContext, SCardConnect, SCardReconnect, SCardTransmit, SCardControl,
    SCardDisconnect, SCardBeginTransaction, SCardEndTransaction, SCardGetAttrib,
    SCardListReaders, SCardGetStatusChange, SCARD_SCOPE_USER, SCARD_SHARE_SHARED,
    SCARD_PROTOCOL_T0, SCARD_PROTOCOL_T1, SCARD_PCI_T1, SCARD_LEAVE_CARD,
    SCARD_RESET_CARD, SCARD_UNPOWER_CARD, SCARD_ATTR_ATR_STRING, SCARD_STATE_UNAWARE,
    SCARD_STATE_PRESENT, SCARD_CTL_CODE)

READER = os.environ.get("BED_READER", "")
LOG = os.environ.get("BED_CARD_LOG", "")
GET_FEATURE_REQUEST = SCARD_CTL_CODE(3400)


def u(rv):
    return "%08X" % (rv & 0xFFFFFFFF)


def log_lines():
    if not LOG or not os.path.exists(LOG):
        return []
    with open(LOG) as f:
        return [l.rstrip("\n").split("\t") for l in f]


def mark():
    return len(log_lines())


def kinds(since):
    out = []
    for l in log_lines()[since:]:
        k = l[1] if len(l) > 1 else "?"
        if k in ("CONNECTED",):
            continue
        if not out or out[-1] != k:
            out.append(k)
    return out


def wait_kind(kind, since, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if kind in kinds(since):
            return True
        time.sleep(0.02)
    return False


def step(name, m, extra=""):
    # Polls can end a step with GET_ATR; only what the call caused counts.
    k = kinds(m)
    # pcscd never asks for the ATR right after powering down: that is a poll.
    if k[-2:] == ["POWER_OFF", "GET_ATR"]:
        k.pop()
    print("%-28s %-40s %s" % (name, " ".join(k) or "-", extra))


def features(card):
    rv, resp = SCardControl(card, GET_FEATURE_REQUEST, [])
    feats = {}
    if rv == 0:
        for i in range(0, len(resp) - 5, 6):
            feats[resp[i]] = int.from_bytes(bytes(resp[i + 2:i + 6]), "big")
    return rv, resp, feats


def connect(ctx, protocols=SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1):
    rv, card, proto = SCardConnect(ctx, READER, SCARD_SHARE_SHARED, protocols)
    if rv:
        sys.exit("SCardConnect: %s" % u(rv))
    return card, proto


def scenario(vicc):
    rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
    # The idle card is powered down after it is first seen.
    print("idle power-down:", wait_kind("POWER_OFF", 0, 10) if LOG else "n/a")
    m = mark()
    card, proto = connect(ctx)
    step("Connect(SHARED,T0|T1)", m, "proto=%d" % proto)
    apdus = [[0x00, 0x84, 0x00, 0x00, 0x08]] if vicc else [
        [0x00, 0xA4, 0x04, 0x00, 0x00],
        [0x00, 0xDA, 0x01, 0x00, 0x00, 0x03, 0xE8] + [0x5A] * 1000,
        [0x80, 0xCA, 0x00, 0x00, 0x00, 0xFF, 0xF8] + [0x11] * 0xFFF8]
    for a in apdus:
        m = mark()
        rv, resp = SCardTransmit(card, SCARD_PCI_T1, a)
        step("Transmit(%d bytes)" % len(a), m, "rv=%s sw=%s" % (u(rv), bytes(resp[-2:]).hex()))
    m = mark()
    rv1 = SCardBeginTransaction(card)
    rv2 = SCardEndTransaction(card, SCARD_LEAVE_CARD)
    step("Begin/EndTransaction", m, "rv=%s,%s" % (u(rv1), u(rv2)))
    m = mark()
    rv, resp, feats = features(card)
    step("Control(GET_FEATURE)", m, "rv=%s" % u(rv))
    m = mark()
    rv, attr = SCardGetAttrib(card, SCARD_ATTR_ATR_STRING)
    step("GetAttrib(ATR)", m, "rv=%s atr=%s" % (u(rv), bytes(attr).hex()))
    m = mark()
    rv = SCardDisconnect(card, SCARD_LEAVE_CARD)
    step("Disconnect(LEAVE)", m, "rv=%s" % u(rv))
    print("%-28s %s" % ("  then POWER_OFF", wait_kind("POWER_OFF", m, 5)))
    card, proto = connect(ctx, SCARD_PROTOCOL_T1)
    m = mark()
    rv = SCardDisconnect(card, SCARD_RESET_CARD)
    step("Disconnect(RESET)", m, "rv=%s" % u(rv))
    card, proto = connect(ctx, SCARD_PROTOCOL_T1)
    m = mark()
    rv, proto = SCardReconnect(card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_RESET_CARD)
    step("Reconnect(RESET)", m, "rv=%s" % u(rv))
    m = mark()
    rv = SCardDisconnect(card, SCARD_UNPOWER_CARD)
    wait_kind("POWER_OFF", m, 2)
    step("Disconnect(UNPOWER)", m, "rv=%s" % u(rv))


def nopolls():
    for line in sys.stdin:
        line = line.rstrip("\n")
        m = re.match(r"(.{28} )(\S+(?: \S+)*)(\s+)(.*)$", line)
        if not m or m.group(2) == "-":
            print(line)
            continue
        ks = m.group(2).split(" ")
        kept = [k for i, k in enumerate(ks)
                if k != "GET_ATR" or (i > 0 and ks[i - 1] in ("POWER_ON", "RESET"))]
        print("%s%-40s %s" % (m.group(1), " ".join(kept) or "-", m.group(4)))


def main():
    cmd = sys.argv[1]
    if cmd == "nopolls":
        nopolls()
        return
    if cmd == "scenario":
        scenario("--vicc" in sys.argv)
        return
    rv, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
    if cmd == "alive":
        end = time.monotonic() + float(sys.argv[2])
        while time.monotonic() < end:
            rv, readers = SCardListReaders(ctx, [])
            if rv == 0 and READER in readers:
                print("alive")
                return
            time.sleep(0.1)
        sys.exit("pcscd does not list %s (rv %s)" % (READER, u(rv)))
    if cmd == "present":
        # Wait (bounded) until a card is present in the reader; with an ATR
        # given, until pcscd shows that card's ATR: right after a card swap
        # pcscd may still report the previous card until its next poll.
        end = time.monotonic() + float(sys.argv[2])
        atr = bytes.fromhex(sys.argv[3]) if len(sys.argv) > 3 else None
        while time.monotonic() < end:
            rv, states = SCardGetStatusChange(ctx, 500, [(READER, SCARD_STATE_UNAWARE)])
            if (rv == 0 and states[0][1] & SCARD_STATE_PRESENT and
                    (atr is None or bytes(states[0][2]) == atr)):
                print("present")
                return
        sys.exit("no card in %s" % READER)
    card, proto = connect(ctx)
    if cmd == "features":
        rv, resp, feats = features(card)
        print("rv=%s answer=%s" % (u(rv), bytes(resp).hex()))
        for tag, code in sorted(feats.items()):
            print("feature %02X %08X" % (tag, code))
        if 0x12 in feats:
            rv, props = SCardControl(card, feats[0x12], [])
            print("tlv rv=%s props=%s" % (u(rv), bytes(props).hex()))
    elif cmd == "marker":
        rv, resp, feats = features(card)
        code = feats.get(0xA5, 0x423300A5)
        rv, out = SCardControl(card, code, list(bytes.fromhex(sys.argv[2])))
        print("rv=%s out=%d" % (u(rv), len(out)))
    elif cmd == "protocol":
        p = SCARD_PROTOCOL_T0 if sys.argv[2] == "T0" else SCARD_PROTOCOL_T1
        SCardDisconnect(card, SCARD_UNPOWER_CARD)
        card, proto = connect(ctx, p)
        print("proto=%d" % proto)
    SCardDisconnect(card, SCARD_LEAVE_CARD)


main()
