#!/bin/bash
# test.sh — install, build and run the whole test suite: unit, abi and e2e
# in build/; a -Dtests=disabled build installed and used from its DESTDIR;
# a short run of every fuzz target in a clang build (build-fuzz/, suite
# 'fuzz'); the unit and e2e suites again under ASan and UBSan
# (build-asan/).  Ends with the line "N passed, N failed[, N
# skipped]" counting all of them, and exits non-zero when anything failed.
# Extra arguments go to the first `meson test` only.
# PCSCTAP_FUZZ=0 or PCSCTAP_ASAN=0 leave those parts out (never under CI).
set -u

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PCSCTAP_BUILD:-$top/build}
fuzz_build=${PCSCTAP_FUZZ_BUILD:-$top/build-fuzz}
asan_build=${PCSCTAP_ASAN_BUILD:-$top/build-asan}
bash "$top/tools/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }
if [ "${CI:-}" = true ]; then
	PCSCTAP_FUZZ=1 PCSCTAP_ASAN=1
fi

# Logs whose results count; a step that cannot even build counts as one
# failure of its own.
logs=("$build/meson-logs/testlog.json")
export BROKEN=0
broken() {
	echo "test.sh: FAIL: $*" >&2
	BROKEN=$((BROKEN + 1))
}

# Every stack of this run lives under BED_ROOT, so that what it leaves
# behind can be told from other runs on the machine.
export BED_ROOT
BED_ROOT=$(mktemp -d /tmp/pcsctap-run.XXXXXX)
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"
status=$?

# A -Dtests=disabled build, installed into a DESTDIR and used with its
# build tree moved away (tests/install/install.sh): one more test.
bash "$top/tests/install/install.sh" "$build/tests/bed/bedwait"
case $? in
0) INSTALL=pass ;;
77) INSTALL=skip ;;
*) INSTALL=fail status=1 ;;
esac
export INSTALL

# Every fuzz target for -Dfuzz_seconds (12 s) on its corpus.
if [ "${PCSCTAP_FUZZ:-1}" != 0 ]; then
	rm -f "$fuzz_build/meson-logs/testlog.json"
	if { [ -f "$fuzz_build/build.ninja" ] ||
	     CC=clang meson setup "$fuzz_build" "$top" -Dfuzzing=true -Db_lundef=false >/dev/null; } &&
	   meson compile -C "$fuzz_build" fuzzers >/dev/null; then
		meson test -C "$fuzz_build" --no-rebuild --suite fuzz --print-errorlogs --num-processes 2 ||
			status=1
		logs+=("$fuzz_build/meson-logs/testlog.json")
	else
		broken "the fuzzing build ($fuzz_build) failed"
	fi
fi

# The unit and e2e suites built with ASan and UBSan (docs/testing.md).
if [ "${PCSCTAP_ASAN:-1}" != 0 ]; then
	rm -f "$asan_build"/meson-logs/testlog-asan*.json
	if { [ -f "$asan_build/build.ninja" ] ||
	     meson setup "$asan_build" "$top" --werror -Db_sanitize=address,undefined >/dev/null; } &&
	   meson compile -C "$asan_build" >/dev/null; then
		meson test -C "$asan_build" --no-rebuild --setup asan --suite unit \
			--print-errorlogs --num-processes 2 || status=1
		meson test -C "$asan_build" --no-rebuild --setup asane2e --suite e2e --no-suite noasan \
			--print-errorlogs --num-processes 2 || status=1
		logs+=("$asan_build/meson-logs/testlog-asan.json" "$asan_build/meson-logs/testlog-asane2e.json")
	else
		broken "the ASan build ($asan_build) failed"
	fi
fi

# The test bed must leave nothing behind: no stack directories, no port
# reservations (each is removed only after its processes are stopped).
sleep 1	# watchdogs of interrupted tests poll every 0.5 s
leftovers=$(ls -d "$BED_ROOT"/* 2>/dev/null; grep -ls "^$BED_ROOT/" /tmp/pcsctap-bed-ports/*/owner)
rmdir "$BED_ROOT" 2>/dev/null
if [ -n "$leftovers" ]; then
	echo "test.sh: FAIL: the test bed left these behind:" $leftovers >&2
	status=1
fi
export LEFTOVERS=${leftovers:+1}

/usr/bin/python3 - "${logs[@]}" <<'PY'
import json, os, sys
passed = failed = skipped = 0
failed += int(os.environ.get("BROKEN", "0"))
for log in sys.argv[1:]:
    try:
        f = open(log)
    except OSError as e:
        print("test.sh: FAIL: no results: %s" % e, file=sys.stderr)
        failed += 1
        continue
    with f:
        for line in f:
            t = json.loads(line)
            r = t["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
            # The executions of each fuzz target, for the record.
            if ":fuzz / " in t["name"]:
                for out in (t.get("stdout") or "").splitlines():
                    if "executions" in out:
                        print(out)
# The leftover check above counts as one more test, the install test too.
if os.environ.get("LEFTOVERS"):
    failed += 1
else:
    passed += 1
install = os.environ.get("INSTALL", "fail")
passed += install == "pass"
skipped += install == "skip"
failed += install == "fail"
# Under CI nothing may be skipped for want of a dependency.
if os.environ.get("CI") == "true":
    failed += skipped
    skipped = 0
print("%d passed, %d failed%s" % (passed, failed, ", %d skipped" % skipped if skipped else ""))
sys.exit(1 if failed else 0)
PY
summary=$?
[ $status -eq 0 ] && [ $summary -eq 0 ]
