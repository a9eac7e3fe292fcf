#!/bin/bash
# trace_files.sh PCSCTAP PCSC_CALL SHIM — trace files are private (0600, the
# -wal and -shm too, whatever the umask), and a trace path that is a symbolic link is
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
	PCSCTAP_SHIM=$shim LD_PRELOAD=${asan:+$asan${LD_PRELOAD:+:$LD_PRELOAD}} "$pcsctap" run "$@"
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
# private even under umask 000.
(umask 000 && run -o plain.db -- "$call" >/dev/null 2>&1)
for f in plain.db plain.db-wal plain.db-shm; do
	# The -wal and -shm outlive the traced process (no checkpoint at exit).
	check "$f is 0600 under umask 000" test "$(stat -c %a "$f" 2>&1)" = 600
done
# (sqlite3 checkpoints and removes the -wal and -shm when it closes.)
check "a plain path gets a trace" \
	test "$(sqlite3 plain.db 'SELECT count(*) FROM calls WHERE fn = 1')" = 1
done_testing
