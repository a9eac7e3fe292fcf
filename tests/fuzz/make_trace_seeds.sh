#!/bin/bash
# make_trace_seeds.sh GEN_TRACE OUTDIR — how tests/fuzz/corpus/trace was
# made: small traces written by the trace writer (tests/tools/gen_trace),
# with 512-byte pages so each is a few KiB and a mutation hits structure
# rather than free space.  Run again only to change the seeds.
set -eu
gen=$1 out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

shrink() {	# FILE JOURNAL_MODE
	sqlite3 "$1" "PRAGMA journal_mode=DELETE; PRAGMA page_size=512; VACUUM; PRAGMA journal_mode=$2;" >/dev/null
}

# Two processes with sessions, transactions, APDUs, markers, reader states,
# and the driver's wire view of the same APDUs merged in; one drops row.
"$gen" --calls 40 --processes 2 --apdus-per-session 1 --wire "$tmp/w.db" "$tmp/a.db"
sqlite3 "$tmp/a.db" "ATTACH '$tmp/w.db' AS w;
	INSERT INTO wire(pid, t_ns, t_end_ns, wall_ns, reader, kind, sent, received, detail)
		SELECT pid, t_ns, t_end_ns, wall_ns, reader, kind, sent, received, detail FROM w.wire;
	INSERT INTO processes SELECT * FROM w.processes;
	INSERT INTO drops SELECT pid, start_wall_ns, 3 FROM w.processes;"
shrink "$tmp/a.db" DELETE
cp "$tmp/a.db" "$out/sessions-wire.db"

# The wire view alone, left in WAL mode (the writer's journal mode).
shrink "$tmp/w.db" WAL
cp "$tmp/w.db" "$out/wire-wal.db"

# One process, one session: the smallest trace with every call kind.
"$gen" --calls 20 --processes 1 --apdus-per-session 1 "$tmp/s.db"
shrink "$tmp/s.db" DELETE
cp "$tmp/s.db" "$out/one-session.db"
ls -l "$out"
