#!/bin/bash
# occupancy.sh — occupancy markers (issue 16) with real untraced clients:
# the card is told reader-in-use before each client's first APDU and
# reader-free after its last one, from pcscd's published reader state.
# opensc-tool, pcsc_scan (no handle: nothing), pyscard shared and
# exclusive, Java smartcardio, two sessions back to back, two clients
# overlapping, a client killed while connected, pcscd killed and
# restarted, a traced client (in-use < connect < APDUs < disconnect <
# free), presence=poll, and markers off (no watcher, nothing sent).  check_occupancy.py
# checks every transition and that no APDU met a reader announced free.
# Env: OCC_CLIENT, CHECK_OCCUPANCY, CONTEND, PCSCTAP, BED_LIB (+ bed).
. "$BED_LIB"
bed_require pcscd opensc-tool pcsc_scan java
/usr/bin/python3 -c 'import smartcard' 2>/dev/null || bed_skip "pyscard is not installed"
java_src=$(dirname "$0")/../e2e/SmartcardIo.java
[ -f "$java_src" ] || bed_fail "no $java_src"

# seq_after MARK: the tokens since MARK once the reader is announced free again.
seq_after() {
	"$CHECK_OCCUPANCY" "$BED_CARD_LOG" "$1" --wait-free 5 || bed_fail "$scenario: $(tail -n 1 <<<"$out")"
}
# expect_seq MARK REGEX: the tokens since MARK match REGEX (extended, whole line).
expect_seq() {
	local got
	got=$(seq_after "$1") || bed_fail "$scenario: $got"
	grep -Eqx "$2" <<<"$got" || bed_fail "$scenario: card saw [$got], want /$2/"
	bed_ok "$got"
}
# Threads of pcscd named as the watcher.
watchers() {
	cat /proc/"$(cat "$BED_DIR/pcscd.bedpid")"/task/*/comm 2>/dev/null | grep -cx pcsctap-occ
}
# Power changes by pcscd around the sessions (power-up, grace-period power-off).
pre='((on|off|protocol|reset) )*' post='( (on|off|protocol|reset))*'
client() { "$OCC_CLIENT" session "$@" > /dev/null || bed_fail "$scenario: client $*"; }

bed_start --driver pcsctap --driver-opts markers=on --card test

scenario="markers on"
bed_expect "watcher threads (two slots)" "$(watchers)" 2

scenario="opensc-tool"
m=$(bed_mark)
opensc-tool -r "$BED_READER" -a > /dev/null || bed_fail "opensc-tool -a"
opensc-tool -r "$BED_READER" -s 00A4040000 > /dev/null || bed_fail "opensc-tool -s"
# opensc-tool connects more than once per run: each session is in-use ... free.
expect_seq "$m" "($pre""use( (apdu|protocol|reset|on|off))* free$post ?)+"
n_use=$(seq_after "$m" | tr ' ' '\n' | grep -cx use)
n_free=$(seq_after "$m" | tr ' ' '\n' | grep -cx free)
bed_expect "as many reader-free as reader-in-use" "$n_free" "$n_use"
bed_lines APDU "$m" | cut -f1 | grep -qx 00A4040000 || bed_fail "$scenario: the SELECT did not reach the card"

scenario="pcsc_scan"
m=$(bed_mark)
pcsc_scan -n > "$BED_TMP/scan.out" 2>&1 &
scan=$!
for i in $(seq 50); do grep -q "$BED_READER" "$BED_TMP/scan.out" && break; sleep 0.1; done
grep -q "$BED_READER" "$BED_TMP/scan.out" || { kill "$scan"; bed_fail "pcsc_scan did not list the reader"; }
sleep 1
kill "$scan"; wait "$scan" 2>/dev/null
# It only watches (SCardGetStatusChange), as the driver's watcher: no handle, no marker.
bed_expect "occupancy markers while only pcsc_scan runs" \
	"$(seq_after "$m" | tr ' ' '\n' | grep -Ecx 'use|excl|shared|free')" 0

scenario="pyscard shared"
m=$(bed_mark)
client 1
expect_seq "$m" "${pre}use apdu:1 free$post"
bed_lines MARKER "$m" | grep -q $'reader-in-use handles=1 t=' || bed_fail "$scenario: no handles=1"

scenario="pyscard exclusive"
m=$(bed_mark)
client 2 --exclusive
expect_seq "$m" "${pre}use excl apdu:2 free$post"
bed_lines MARKER "$m" | grep -q $'reader-exclusive handles=1 t=' || bed_fail "$scenario: exclusive without handles=1"

scenario="pyscard exclusive, then shared"
m=$(bed_mark)
client 12 --exclusive --reconnect-shared
expect_seq "$m" "${pre}use excl apdu:12 shared apdu:12 free$post"
bed_lines MARKER "$m" | grep -q $'reader-shared handles=1 t=' || bed_fail "$scenario: shared without handles=1"

scenario="Java smartcardio"
m=$(bed_mark)
java "$java_src" "$BED_READER" > "$BED_TMP/java.out" 2>&1 || bed_fail "java: $(cat "$BED_TMP/java.out")"
expect_seq "$m" "${pre}use apdu( reset)? free$post"

scenario="back to back"
m=$(bed_mark)
client 3
client 4
expect_seq "$m" "${pre}use apdu:3 free$post use apdu:4 free$post"

scenario="overlapping, shared"
m=$(bed_mark)
rm -f "$BED_TMP/a" "$BED_TMP/b"
# A waits, connected, until B has connected and sent its APDUs: both hold a handle at once.
"$OCC_CLIENT" session 5 --ready "$BED_TMP/a" --wait "$BED_TMP/b" > "$BED_TMP/a.out" &
a=$!
"$OCC_CLIENT" session 6 --after "$BED_TMP/a" --ready "$BED_TMP/b" --hold 0.1 > "$BED_TMP/b.out" || bed_fail "client 6"
wait "$a" || bed_fail "client 5"
expect_seq "$m" "${pre}use apdu:5 apdu:6( apdu:5)?( apdu:6)? free$post"

scenario="killed client"
m=$(bed_mark)
rm -f "$BED_TMP/k"
"$OCC_CLIENT" session 7 --ready "$BED_TMP/k" --hold 60 > /dev/null &
k=$!
for i in $(seq 100); do [ -f "$BED_TMP/k" ] && break; sleep 0.05; done
[ -f "$BED_TMP/k" ] || bed_fail "$scenario: client 7 never connected"
kill -KILL "$k"; wait "$k" 2>/dev/null
# pcscd drops the dead client's handle: the last one is gone.
expect_seq "$m" "${pre}use apdu:7 free$post"

scenario="traced client"
m=$(bed_mark)
"$PCSCTAP" run -o "$BED_TMP/trace" -- "$CONTEND" guest "$BED_READER" 8 3 0 leave > "$BED_TMP/t.out" 2>&1 ||
	bed_fail "$scenario: $(cat "$BED_TMP/t.out")"
expect_seq "$m" "${pre}use connect apdu:8 disconnect free$post"

scenario="pcscd restart"
"$BED_STACK" pcscd-stop "$BED_DIR" || bed_fail "pcscd-stop"
"$BED_STACK" pcscd-start "$BED_DIR" || bed_fail "pcscd-start"
bed_expect "watcher threads after the restart" "$(watchers)" 2
m=$(bed_mark)
client 9
expect_seq "$m" "${pre}use apdu:9 free$post"
bed_stop

scenario="presence=poll"
bed_start --driver pcsctap --driver-opts markers=on:presence=poll --card test
m=$(bed_mark)
client 11
expect_seq "$m" "${pre}use apdu:11 free$post"
bed_stop

scenario="markers off"
bed_start --driver pcsctap --card test
bed_expect "watcher threads" "$(watchers)" 0
client 10
opensc-tool -r "$BED_READER" -a > /dev/null || bed_fail "opensc-tool -a"
bed_expect "markers at the card" "$(bed_kinds 0 | grep -cx MARKER)" 0
grep -q 'occupancy' "$BED_DIR/pcscd.log" && bed_fail "$scenario: the driver logged occupancy"
bed_ok "no watcher, no marker (e2e_same_as_vpcd.sh: the same messages as stock vpcd)"
echo "1..$bed_n"
