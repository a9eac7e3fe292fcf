#!/bin/sh
# pcsctap run refuses, before the command starts, a trace path that the
# shim would refuse: a text file, another program's database, a directory,
# a trace that this user may not read (a second user: nobody).  A good trace, an empty file and a new path still work, with
# a real client (opensc-tool, no pcscd: its calls fail and are recorded).
# usage: test_run.sh PCSCTAP SHIM
set -u
# Absolute: pcsctap finds itself and its shim by absolute path, which a
# relative one from the build directory would not show to be reachable.
PCSCTAP=$(readlink -f "$1")
SHIM=$(readlink -f "$2")
. "$(dirname "$0")/tap.sh"
tap_require sqlite3 opensc-tool setpriv
chmod 755 "$T"
mkdir -m 1777 "$T/w"
export PCSCLITE_CSOCK_NAME="$T/no-pcscd"
# refused PATH WHY [RUNNER...]: exit 1, one line naming PATH and WHY, the
# command never ran, the file unchanged
refused() {
	path=$1
	why=$2
	shift 2
	rm -f "$T/w/ran"
	before=$(cat "$path" 2>/dev/null | sha256sum)
	with_asan "$@" "$PCSCTAP" run -o "$path" -- sh -c ": >'$T/w/ran'" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq 1 ] && [ ! -e "$T/w/ran" ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
	    grep -q "^pcsctap run: $path: .*$why" "$T/err" &&
	    [ "$(cat "$path" 2>/dev/null | sha256sum)" = "$before" ]; then
		ok "run -o $(basename "$path"): refused before the command ($why)"
	else
		fail "run -o $(basename "$path"): rc $rc, ran: $([ -e "$T/w/ran" ] && echo yes || echo no)"
		sed 's/^/# /' "$T/err"
	fi
}

echo "some notes" >"$T/notes.txt"
refused "$T/notes.txt" "not an SQLite database"
sqlite3 "$T/foreign.db" "create table x(a); insert into x values(1);"
refused "$T/foreign.db" "not a pcsctap trace"
mkdir "$T/dir"
refused "$T/dir" "is a directory"
# A missing directory only fails when the trace is written: the shim's to
# warn about, the command runs (as faults-readonly wants for a read-only one).
with_asan "$PCSCTAP" run -o "$T/no/such/dir/t.db" -- sh -c ": >'$T/w/ran'" >/dev/null 2>"$T/err"
check "run -o MISSING-DIR/t.db: the command runs, no trace" sh -c "[ -e '$T/w/ran' ] && grep -q 'no trace written to' '$T/err'"

# A trace of root's, 0600, that nobody may not read: refused for nobody.
with_asan "$PCSCTAP" run -o "$T/root.db" -- opensc-tool -l >/dev/null 2>&1
check "set-up: root's trace written, mode 600" \
	sh -c "[ \$(stat -c %a '$T/root.db') = 600 ] && sqlite3 '$T/root.db' 'select count(*) from calls' | grep -qv '^0$'"
if [ "$(id -u)" = 0 ]; then
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	nobody_reaches_pcsctap() {
		as_nobody sh -c '[ -x "$1" ] && "$1" --version >/dev/null && [ -r "$2" ]' - \
			"$PCSCTAP" "${PCSCTAP_SHIM:-$SHIM}"
	}
	# A build tree under a private (0700) directory is out of nobody's
	# reach: nobody then runs copies of pcsctap and the shim from $T.
	own_pcsctap=$PCSCTAP
	if ! nobody_reaches_pcsctap; then
		mkdir -m 755 "$T/bin"
		cp "$PCSCTAP" "$SHIM" "$T/bin/"
		PCSCTAP=$T/bin/$(basename "$PCSCTAP")
		export PCSCTAP_SHIM="$T/bin/$(basename "$SHIM")"
	fi
	check "set-up: nobody may run pcsctap and read the shim" nobody_reaches_pcsctap
	refused "$T/root.db" "Permission denied" as_nobody
	chmod 777 "$T"
	check "set-up: nobody may write in the directory" as_nobody touch "$T/nobody-probe"
	rm -f "$T/nobody-probe"
	# nobody's own new trace in the same directory works
	with_asan as_nobody "$PCSCTAP" run -o "$T/nobody.db" -- opensc-tool -l >/dev/null 2>"$T/err"
	check "nobody: a new trace of its own is written" grep -q "trace in $T/nobody.db" "$T/err"
	chmod 755 "$T"
	PCSCTAP=$own_pcsctap
	unset PCSCTAP_SHIM
else
	# the unit suite needs no root; the second user does
	for what in "nobody may run pcsctap" "another user's trace refused" "nobody may write" "nobody's own trace"; do
		n=$((n + 1))
		echo "ok $n - $what # SKIP not root"
	done
fi

# Still accepted: an existing trace (appended to), an empty file, a new path.
calls=$(sqlite3 "$T/root.db" 'select count(*) from calls')
with_asan "$PCSCTAP" run -o "$T/root.db" -- opensc-tool -l >/dev/null 2>"$T/err"
check "run -o TRACE: appended ($calls -> $(sqlite3 "$T/root.db" 'select count(*) from calls') calls)" \
	[ "$(sqlite3 "$T/root.db" 'select count(*) from calls')" -gt "$calls" ]
: >"$T/empty.db"
with_asan "$PCSCTAP" run -o "$T/empty.db" -- opensc-tool -l >/dev/null 2>"$T/err"
check "run -o EMPTY-FILE: a trace is written" grep -q "trace in $T/empty.db" "$T/err"
with_asan "$PCSCTAP" run -o "$T/new.db" -- opensc-tool -l >/dev/null 2>"$T/err"
check "run -o NEW: a trace is written" grep -q "trace in $T/new.db" "$T/err"

# A trace that group or others may read is not appended to (the trace
# layer's ownership rule), refused before the command like the rest.
cp "$T/root.db" "$T/shared.db"
chmod 644 "$T/shared.db"
refused "$T/shared.db" "open to others"

# The check neither races with processes creating the same new trace at
# the same moment (a database being created is no foreign one) ...
bad=0
for round in $(seq 10); do
	rm -f "$T/race.db"*
	for j in 1 2 3 4; do
		with_asan "$PCSCTAP" run -o "$T/race.db" -- opensc-tool -l >/dev/null 2>"$T/race-$j.err" &
	done
	wait
	for j in 1 2 3 4; do
		grep -q "trace in $T/race.db" "$T/race-$j.err" || { bad=$((bad + 1)); sed 's/^/# /' "$T/race-$j.err"; }
	done
done
check "run -o NEW by 4 processes at once, 10 times: every command started and traced" [ "$bad" = 0 ]
# ... nor waits for a trace that another process holds locked: the command
# starts while the lock is held (its calls wait in its journal).
rm -f "$T/w/locked" "$T/w/ran"
/usr/bin/python3 -c '
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(3)
db.execute("COMMIT")' "$T/root.db" "$T/w/locked" &
locker=$!
for i in $(seq 100); do [ -e "$T/w/locked" ] && break; sleep 0.05; done
with_asan "$PCSCTAP" run -o "$T/root.db" -- sh -c ": >'$T/w/ran'" >/dev/null 2>&1 &
runner=$!
for i in $(seq 40); do [ -e "$T/w/ran" ] && break; sleep 0.05; done
check "run -o LOCKED-TRACE: the command started while the lock was still held" \
	sh -c "[ -e '$T/w/locked' ] && [ -e '$T/w/ran' ] && kill -0 $locker"
wait "$runner" "$locker"

tap_end
