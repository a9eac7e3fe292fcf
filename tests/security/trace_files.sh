#!/bin/bash
# trace_files.sh PCSCTAP PCSC_CALL SHIM — trace files are private (0600
# whatever the umask), end as one self-contained file, are appended to only
# when they are the caller's own private files, and a trace path that is a symbolic link is
# refused, whoever planted it: `pcsctap run -o LINK` must neither write
# through the link nor create its target, and links planted where SQLite
# will put the -wal and -shm files must not be followed either.  No pcscd
# is needed: the failing SCardEstablishContext is traced like any call.
set -u
. "$(dirname "$0")/lib.sh"
pcsctap=$(realpath "$1") call=$(realpath "$2") shim=$3
# The shim of an ASan build must come after libasan in LD_PRELOAD; only
# the traced command gets it (it is ours), not sqlite3 or the shell.
asan=$(ldd "$shim" | awk '/libasan/ { print $3 }')
run() {
	LD_PRELOAD=${asan:+$asan${LD_PRELOAD:+:$LD_PRELOAD}} "$pcsctap" run "$@"
}
dir=$(mktemp -d "${TMPDIR:-/tmp}/pcsctap-symlink.XXXXXX")
trap 'rm -rf "$dir"' EXIT
export PCSCLITE_CSOCK_NAME=$dir/no-pcscd.comm
cd "$dir"

echo precious > victim
ln -s victim link
ln -s "$dir/created-by-attack" dangling
for l in link dangling; do
	out=$(run -o "$l" -- "$call" 2>&1)
	check "run -o $l: the command still ran" grep -q 'SCardEstablishContext: 0x' <<<"$out"
	check "run -o $l: refused with a warning" grep -q 'symbolic link (refused)' <<<"$out"
	check "run -o $l: still a link" test -L "$l"
	check "run -o $l: does not claim a trace" grep -q "no trace written to .*$l" <<<"$out"
done
check "the link's target is unchanged" test "$(cat victim)" = precious
check "the dangling link's target was not created" test ! -e created-by-attack

# Links where SQLite puts the write-ahead log and shared memory.
echo precious > wal-victim
echo precious > shm-victim
ln -s wal-victim t.db-wal
ln -s shm-victim t.db-shm
run -o t.db -- "$call" >/dev/null 2>&1
check "-wal link target unchanged" test "$(cat wal-victim)" = precious
check "-shm link target unchanged" test "$(cat shm-victim)" = precious

# A plain path gets a trace (so the refusals above are not an accident),
# private even under umask 000, and one self-contained file once the
# traced process is done: no -wal, -shm or journal left beside it.
(umask 000 && run -o plain.db -- "$call" >/dev/null 2>&1)
check "plain.db is 0600 under umask 000" test "$(stat -c %a plain.db 2>&1)" = 600
for f in plain.db-wal plain.db-shm plain.db-journal; do
	check "no $f left" test ! -e "$f"
done
check "no journal left" test -z "$(ls | grep -- '-journal-')"
check "a plain path gets a trace" \
	test "$(sqlite3 plain.db 'SELECT count(*) FROM calls WHERE fn = 1')" = 1
# A copy of the one file, in a directory nobody may write, reads.
mkdir ro && cp plain.db ro/copy.db && chmod 0555 ro
check "a copy in a read-only directory reads" \
	test "$(sqlite3 -readonly ro/copy.db 'SELECT count(*) FROM calls WHERE fn = 1')" = 1
chmod 0755 ro

# Another local user must not get a trace into a file of theirs: nobody
# pre-creates an empty mode-0666 pcsctap.trace (and -wal/-shm) in a shared
# directory; root's `pcsctap run` there must refuse, say why, and create
# nothing.
if [ "$(id -u)" = 0 ]; then
	shared=$dir/shared
	chmod 0755 "$dir"
	mkdir "$shared" && chmod 1777 "$shared"
	as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	as_nobody sh -c "umask 0; : > '$shared/pcsctap.trace'"
	check "set-up: nobody's 0666 file is there" \
		test "$(stat -c '%U %a' "$shared/pcsctap.trace" 2>&1)" = "nobody 666"
	out=$(cd "$shared" && run -- "$call" 2>&1)
	check "nobody's trace: the command still ran" grep -q 'SCardEstablishContext: 0x' <<<"$out"
	check "nobody's trace: refused with a warning" grep -q "another user's or open to others" <<<"$out"
	check "nobody's trace: still empty" test ! -s "$shared/pcsctap.trace"
	check "nobody's trace: no -wal/-shm made" test ! -e "$shared/pcsctap.trace-wal" -a ! -e "$shared/pcsctap.trace-shm"
	check "nobody's trace: no journal made" test -z "$(ls "$shared" | grep -- '-journal-')"
	# Our own trace, but nobody planted its -wal.
	run -o "$shared/mine.db" -- "$call" >/dev/null 2>&1
	as_nobody sh -c "umask 0; : > '$shared/mine.db-wal'"
	check "set-up: nobody's -wal is there" test "$(stat -c %U "$shared/mine.db-wal" 2>&1)" = nobody
	out=$(run -o "$shared/mine.db" -- "$call" 2>&1)
	check "a planted -wal: refused" grep -q "another user's or open to others" <<<"$out"
	check "a planted -wal: still empty" test ! -s "$shared/mine.db-wal"
	rm -f "$shared/mine.db-wal"
	# Our own trace, but readable by others.
	chmod 0644 "$shared/mine.db"
	out=$(run -o "$shared/mine.db" -- "$call" 2>&1)
	check "a trace open to others: refused" grep -q "another user's or open to others" <<<"$out"
	check "a trace open to others: not appended to" \
		test "$(sqlite3 "$shared/mine.db" 'SELECT count(*) FROM calls')" = 1
else
	ok "# SKIP the other-user cases need root (setpriv --reuid)"
fi
done_testing
