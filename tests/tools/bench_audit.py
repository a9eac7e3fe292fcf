#!/usr/bin/env python3
"""What LD_AUDIT=libpcsctap-audit.so costs a process: start-up of a small
program that links libc only (/bin/true) and of one that loads libpcsclite
(opensc-tool -i, which dlopens it), each run N times in turn with the
environment `pcsctap run` sets without the audit module and with it.
Prints mean times and the ratio with/without; it never fails on time.

usage: bench_audit.py SHIM AUDIT [N]
"""
import os
import subprocess
import sys
import tempfile
import time


def run(argv, env, n):
    t0 = time.monotonic()
    for _ in range(n):
        subprocess.call(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.monotonic() - t0) / n


def main():
    shim, audit = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    with tempfile.TemporaryDirectory() as d:
        os.symlink(shim, os.path.join(d, "libpcsclite.so.1"))
        base = dict(os.environ, LD_PRELOAD=shim, LD_LIBRARY_PATH=d,
                    PCSCTAP_TRACE=os.path.join(d, "t.trace"),
                    PCSCLITE_CSOCK_NAME=os.path.join(d, "no-pcscd"))
        with_audit = dict(base, LD_AUDIT=audit)
        print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        for argv in (["/bin/true"], ["opensc-tool", "-i"]):
            # interleaved rounds, so that load changes hit both alike
            a = b = 0.0
            for _ in range(4):
                a += run(argv, base, n // 4)
                b += run(argv, with_audit, n // 4)
            print(f"{' '.join(argv):16s} without {a / 4 * 1e3:7.3f} ms  with LD_AUDIT {b / 4 * 1e3:7.3f} ms"
                  f"  ratio {b / a:5.2f}")


main()
