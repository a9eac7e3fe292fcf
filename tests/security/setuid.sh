#!/bin/bash
# setuid.sh SHIM PCSC_CALL — a setuid-root program that loads the shim
# must not be steered by its caller's environment (the shim reads
# PCSCTAP_* with secure_getenv): run as user nobody with PCSCTAP_TRACE
# set, it writes no trace, although as root it could write one anywhere.
# Control: the same binary run by root (not in secure mode) writes one.
set -u
. "$(dirname "$0")/lib.sh"
shim=$1 call=$2
[ "$(id -u)" = 0 ] || skip_all "needs root (chown root + chmod u+s)"
command -v setpriv >/dev/null || skip_all "setpriv (util-linux) is not installed"
id nobody >/dev/null 2>&1 || skip_all "no user nobody"

# Everything nobody must reach lives in one directory that only root can
# write to: the trace could only appear there through root's privileges.
dir=$(mktemp -d "${TMPDIR:-/tmp}/pcsctap-setuid.XXXXXX")
trap 'rm -rf "$dir"' EXIT
chmod 0755 "$dir"
install -m 0755 "$shim" "$dir/libpcsctap.so"
install -m 4755 -o root "$call" "$dir/pcsc_call"
export PCSCLITE_CSOCK_NAME=$dir/no-pcscd.comm
case $(findmnt -n -o OPTIONS -T "$dir") in
*nosuid*) skip_all "$dir is on a nosuid mount" ;;
esac

run_as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env PCSCTAP_TRACE="$1" "$dir/pcsc_call" "$dir/libpcsctap.so"
}

out=$(run_as_nobody "$dir/nobody.trace" 2>&1)
check "the setuid program ran as nobody and made its call" \
	grep -q 'SCardEstablishContext: 0x' <<<"$out"
check "... with root's effective uid (else the test proves nothing)" \
	grep -q "uid=$(id -u nobody) euid=0" <<<"$out"
check "no trace from the setuid program" test ! -e "$dir/nobody.trace"
check "no -wal or -shm either" test -z "$(ls "$dir" | grep nobody)"

# The control: the same binary and shim, not in secure mode, do trace.
PCSCTAP_TRACE=$dir/root.trace "$dir/pcsc_call" "$dir/libpcsctap.so" >/dev/null 2>&1
check "control: run by root, the same program writes a trace" \
	test "$(sqlite3 "$dir/root.trace" 'SELECT count(*) FROM calls WHERE fn = 1' 2>&1)" = 1
# Not setuid, run by nobody into a directory nobody may write: the shim
# reaches the trace code and fails (so the secure-mode test above is not
# passing for want of a PC/SC call being traced at all).
cp "$dir/pcsc_call" "$dir/plain_call" && chmod 0755 "$dir/plain_call"
mkdir -m 0777 "$dir/open"
setpriv --reuid=nobody --regid=nogroup --clear-groups \
	env PCSCTAP_TRACE="$dir/open/nobody.trace" "$dir/plain_call" "$dir/libpcsctap.so" >/dev/null 2>&1
check "control: not setuid, nobody's own trace is written" test -s "$dir/open/nobody.trace"
done_testing
