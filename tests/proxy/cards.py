#!/usr/bin/python3
"""Cards for the driver's end-to-end tests.

  cards.py relay READER_PORT LISTEN_PORT LOG
      a transparent vpcd relay: waits for a card (e.g. stock vicc) on
      LISTEN_PORT, connects it to the reader on READER_PORT and logs what the
      reader sends, in the test card's format (mono_ns, KIND, hex, answer, text)
  cards.py hostile MODE PORT [LOG]
      a misbehaving card: garbage | zero | oversized | midframe | slow |
      silent | unasked | tiny; logs CONNECTED and each message it gets to
      LOG, in the same format, so that a test can see it was polled
  cards.py flash PORT COUNT
      COUNT connections that close at once, and COUNT that close right
      after answering their ATR
  cards.py silent-flood PORT SECONDS
      for SECONDS (or until killed), a new connection every 0.3 s that
      never answers (each kept 15 s, longer than a reader's default timeout)
  cards.py blink PORT COUNT HOLD GAP LOG
      a good card that connects, serves for HOLD s, closes, waits GAP s,
      COUNT times; logs "connect|close MONO_NS" lines to LOG just before
      each connect() and close()
"""
import os
import socket
import struct
import sys
import threading
import time

KINDS = {0: "POWER_OFF", 1: "POWER_ON", 2: "RESET", 4: "GET_ATR", 5: "MARKER"}


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(s):
    (n,) = struct.unpack(">H", recv_exact(s, 2))
    return recv_exact(s, n)


def nodelay(s):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def log_line(logf, kind, data=b""):
    if logf:
        logf.write("%d\t%s\t%s\t\t\n" % (time.monotonic_ns(), kind, data.hex().upper()))
        logf.flush()


def frame_kind(frame):
    return KINDS.get(frame[0], "CONTROL") if len(frame) == 1 else "APDU"


def relay(reader_port, listen_port, log):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(1)
    logf = open(log, "a")
    while True:
        card, _ = srv.accept()
        reader = socket.create_connection(("127.0.0.1", reader_port))
        nodelay(card)
        nodelay(reader)

        def back():
            try:
                while True:
                    data = card.recv(65536)
                    if not data:
                        break
                    reader.sendall(data)
            except OSError:
                pass
            reader.close()

        threading.Thread(target=back, daemon=True).start()
        try:
            while True:
                frame = read_frame(reader)
                log_line(logf, frame_kind(frame), frame)
                card.sendall(struct.pack(">H", len(frame)) + frame)
        except (EOFError, OSError):
            pass
        card.close()


def hostile(mode, port, log=None):
    logf = open(log, "a") if log else None
    s = socket.create_connection(("127.0.0.1", port))
    nodelay(s)
    log_line(logf, "CONNECTED")
    if mode == "unasked":
        s.sendall(b"\x00\x02\x90\x00" * 4)
    try:
        while True:
            frame = read_frame(s)
            log_line(logf, frame_kind(frame), frame)
            if len(frame) == 1 and frame[0] not in (4,):
                continue            # power, reset, markers: no answer
            if mode == "garbage":
                s.sendall(os.urandom(200))
            elif mode == "zero":
                s.sendall(b"\x00\x00")
            elif mode == "oversized":
                s.sendall(b"\xff\xff" + b"\x3b" * 10)
            elif mode == "midframe":
                s.sendall(b"\x00\x05\x3b")
                s.close()
                return
            elif mode == "slow":
                for b in b"\x00\x05\x3b\x80\x80\x01\x01":
                    s.sendall(bytes([b]))
                    time.sleep(1)
            elif mode == "tiny":
                s.sendall(b"\x00\x01\x3b")      # a 1-byte ATR: odd but legal
            elif mode == "silent":
                pass
            else:
                s.sendall(b"\x00\x05\x3b\x80\x80\x01\x01")
    except (EOFError, OSError):
        pass


ATR = b"\x3b\x80\x80\x01\x01"


def serve(s, until):
    """Answer like a card (ATR, 9000) until the monotonic time @until."""
    s.settimeout(0.05)
    buf = b""
    while time.monotonic() < until:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return
        buf += chunk
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack(">H", buf[:2])[0]:
            n = struct.unpack(">H", buf[:2])[0]
            frame, buf = buf[2:2 + n], buf[2 + n:]
            if len(frame) == 1:
                if frame[0] == 4:
                    s.sendall(struct.pack(">H", len(ATR)) + ATR)
            else:
                s.sendall(b"\x00\x02\x90\x00")


def flash(port, count):
    for _ in range(count):
        socket.create_connection(("127.0.0.1", port)).close()
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        nodelay(s)
        try:
            read_frame(s)
            s.sendall(struct.pack(">H", len(ATR)) + ATR)
        except (EOFError, OSError):
            pass
        s.close()


def silent_flood(port, seconds):
    end = time.monotonic() + seconds
    open_ = []
    while time.monotonic() < end:
        open_.append((time.monotonic() + 15, socket.create_connection(("127.0.0.1", port))))
        time.sleep(0.3)
        while open_ and open_[0][0] < time.monotonic():
            open_.pop(0)[1].close()


def blink(port, count, hold, gap, log):
    with open(log, "a") as logf:
        for _ in range(count):
            logf.write("connect %d\n" % time.monotonic_ns())
            logf.flush()
            s = socket.create_connection(("127.0.0.1", port))
            nodelay(s)
            serve(s, time.monotonic() + hold)
            logf.write("close %d\n" % time.monotonic_ns())
            logf.flush()
            s.close()
            time.sleep(gap)


if sys.argv[1] == "relay":
    relay(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
elif sys.argv[1] == "flash":
    flash(int(sys.argv[2]), int(sys.argv[3]))
elif sys.argv[1] == "silent-flood":
    silent_flood(int(sys.argv[2]), float(sys.argv[3]))
elif sys.argv[1] == "blink":
    blink(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
else:
    hostile(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
