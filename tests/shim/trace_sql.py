#!/usr/bin/python3
"""trace_sql.py TRACE SQL — print the rows of a query on a pcsctap trace,
tab-separated, blobs in hex (tests only: the trace is plain SQLite)."""
import sqlite3
import sys

db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for row in db.execute(sys.argv[2]):
    print("\t".join(v.hex().upper() if isinstance(v, bytes) else str(v) for v in row))
