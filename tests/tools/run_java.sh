#!/bin/bash
# Java smartcardio under `pcsctap run` with both kinds of JDK: one whose
# libj2pcsc.so links libpcsclite (Debian's OpenJDK: LD_PRELOAD and the
# replacement directory reach it) and one that dlopen()s it by absolute path
# (upstream Temurin: reached by the LD_AUDIT module).  For each, the
# program's stdout and stderr under `pcsctap run` must be what they are
# untraced (`pcsctap run`'s own last line aside), with and without a
# JAVA_TOOL_OPTIONS of the user's, and its calls must be in the trace.
. "$BED_LIB"
bed_require pcscd sqlite3 readelf
PROGRAM=$(dirname "$0")/../e2e/SmartcardIo.java

# The JDKs installed, sorted by how they reach libpcsclite.
linked= dlopened=
for java in /usr/lib/jvm/*/bin/java /opt/*/bin/java /opt/*/*/bin/java; do
	[ -x "$java" ] || continue
	lib=$(dirname "$java")/../lib/libj2pcsc.so
	[ -f "$lib" ] || continue
	if readelf -d "$lib" | grep -q 'NEEDED.*libpcsclite'; then
		[ -n "$linked" ] || linked=$(readlink -f "$java")
	else
		[ -n "$dlopened" ] || dlopened=$(readlink -f "$java")
	fi
done
[ -n "$linked" ] || bed_skip "no JDK whose libj2pcsc.so links libpcsclite"
[ -n "$dlopened" ] || bed_skip "no JDK whose libj2pcsc.so dlopens libpcsclite (e.g. Temurin)"

bed_start --card test
cd "$BED_TMP" || bed_fail "no bed directory"
n=0
for java in "$linked" "$dlopened"; do
	for user_opts in "" "-Xshare:auto"; do
		n=$((n + 1))
		trace=$BED_TMP/java$n.trace
		what="$java${user_opts:+ with JAVA_TOOL_OPTIONS=$user_opts}"
		env ${user_opts:+JAVA_TOOL_OPTIONS=$user_opts} \
			"$java" "$PROGRAM" "$BED_READER" >plain.out 2>plain.err ||
			bed_fail "$what untraced failed: $(cat plain.err)"
		grep -qx 'sw 9000' plain.out || bed_fail "set-up: $what did not reach the card"
		env ${user_opts:+JAVA_TOOL_OPTIONS=$user_opts} "$PCSCTAP" run -o "$trace" -- \
			"$java" "$PROGRAM" "$BED_READER" >traced.out 2>traced.err ||
			bed_fail "$what traced failed: $(cat traced.err)"
		last=$(tail -n 1 traced.err)
		[ "$last" = "pcsctap: trace in $trace" ] || bed_fail "$what: run's last line is [$last]"
		sed '$d' traced.err >traced.app.err
		cmp -s plain.out traced.out || bed_fail "$what: stdout differs: $(diff plain.out traced.out)"
		cmp -s plain.err traced.app.err ||
			bed_fail "$what: stderr differs under pcsctap run: $(diff plain.err traced.app.err)"
		got=$(sqlite3 "$trace" "SELECT hex(data_in) || ' ' || hex(data_out) FROM calls WHERE fn = 12")
		[ "$got" = "00A4040000 9000" ] || bed_fail "$what: the trace holds [$got], not the SELECT"
		echo "ok $n - $what: same output as untraced, SELECT traced"
	done
done
echo "ok"
