#!/usr/bin/env python3
"""Benchmark of pcsctap show / sessions / stats / export on a generated trace.

Generates a trace of 1,080,000 calls (10,000 sessions of 100 APDUs: about
1,000,000 APDUs) with the trace writer, then measures and prints: sessions,
the first line of show --session N, export of all APDUs, stats, a full show,
and each command's peak RSS next to its peak on a 2,000-call trace (memory
must not grow with the trace).  It prints; it never fails on time.

usage: bench_tools.py PCSCTAP GEN_TRACE [CALLS]
"""
import json
import os
import subprocess
import sys
import tempfile
import time


def measure(argv, first_line=False):
    """seconds (to the first output line when asked), max RSS in MiB"""
    if first_line:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        p.stdout.readline()
        secs = time.monotonic() - t0
        p.stdout.read()
        p.wait()
        rss = None
    else:
        # GNU time reports the command's own peak RSS (a fork from Python
        # would count the interpreter's pages too).
        with tempfile.NamedTemporaryFile("r") as tf:
            t0 = time.monotonic()
            status = subprocess.call(["/usr/bin/time", "-q", "-f", "%M", "-o", tf.name] + argv,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            secs = time.monotonic() - t0
            try:
                rss = int(tf.read().split()[-1]) / 1024.0
            except (ValueError, IndexError):
                rss = float("nan")
        if status:
            print(f"  warning: {' '.join(argv)} exited with {status}")
    return secs, rss


def main():
    pcsctap, gen = sys.argv[1], sys.argv[2]
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 1080000
    with tempfile.TemporaryDirectory() as d:
        big = os.path.join(d, "big.db")
        small = os.path.join(d, "small.db")
        out = os.path.join(d, "out.pcapng")
        t0 = time.monotonic()
        subprocess.run([gen, "--calls", str(calls), "--apdus-per-session", "100", big], check=True)
        print(f"generated {calls} calls in {time.monotonic() - t0:.2f} s "
              f"({os.path.getsize(big) / 2**20:.0f} MiB)")
        subprocess.run([gen, "--calls", "2000", "--apdus-per-session", "100", small], check=True)

        sessions = subprocess.run([pcsctap, "sessions", "--json", big], capture_output=True,
                                  text=True, check=True).stdout.splitlines()
        mid = json.loads(sessions[len(sessions) // 2])["id"]
        last = json.loads(sessions[-1])["id"]

        cases = [
            ("sessions", ["sessions"], "< 1 s"),
            ("stats", ["stats"], ""),
            ("export pcapng", ["export", "-o", out], "< 5 s"),
            ("export pcap", ["export", "--format", "pcap", "-o", out], ""),
            ("show (all)", ["show"], ""),
            ("show --json (all)", ["show", "--json"], ""),
        ]
        print(f"{'command':<28} {'seconds':>8}  {'target':<7} {'RSS MiB':>8} {'RSS small':>10}")
        for name, args, target in cases:
            secs, rss = measure([pcsctap] + args + [big])
            _, rss_small = measure([pcsctap] + args + [small])
            print(f"{name:<28} {secs:8.3f}  {target:<7} {rss:8.1f} {rss_small:10.1f}")
            if name == "export pcapng":
                n = subprocess.run([pcsctap, "export", "-o", out, big], capture_output=True,
                                   text=True).stderr.strip()
                print(f"  {n}")
        for sid in (mid, last):
            secs, _ = measure([pcsctap, "show", "--session", str(sid), big], first_line=True)
            print(f"{'show --session ' + str(sid) + ' (1st line)':<28} {secs:8.3f}  {'< 0.2 s':<7}")
        print(f"{len(sessions)} sessions")


if __name__ == "__main__":
    main()
