#!/bin/sh
# test-windows.sh BUILD_WIN - run the Windows test programs of a mingw-w64 cross build under
# Wine and print "windows: N passed, N failed" (the sum of every program's own summary line).
#
# Wine keeps its state in BUILD_WIN/wine (created on the first run, ~10 s); WINEDEBUG=-all
# silences Wine's own diagnostics.  Each program gets 120 s.
set -u
build=${1:-build-win}
wine=${WINE:-/usr/lib/wine/wine64}
[ -x "$wine" ] || { echo "windows: $wine missing (apt-get install wine64)" >&2; exit 1; }

WINEPREFIX="$(cd "$build" && pwd)/wine"
WINEDEBUG=-all
export WINEPREFIX WINEDEBUG

passed=0 failed=0
for exe in "$build"/tests/windows/test_*.exe; do
    [ -f "$exe" ] || continue
    log="$build/tests/windows/$(basename "$exe" .exe).log"
    timeout 120 "$wine" "$exe" >"$log" 2>&1
    rc=$?
    cat "$log"
    summary=$(tr -d '\r' <"$log" | grep '^windows: ' | tail -n1)
    if [ -z "$summary" ]; then
        echo "FAIL $(basename "$exe"): no summary line (exit $rc)"
        failed=$((failed + 1))
        continue
    fi
    p=$(echo "$summary" | sed 's/^windows: \([0-9]*\) passed.*/\1/')
    f=$(echo "$summary" | sed 's/.*, \([0-9]*\) failed$/\1/')
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p))
    failed=$((failed + f))
done
# let this prefix's wineserver finish now rather than linger (and race a `make clean`)
"${WINESERVER:-/usr/lib/wine/wineserver64}" -w 2>/dev/null || true
[ $((passed + failed)) -gt 0 ] || { echo "windows: no test programs in $build/tests/windows" >&2; exit 1; }
echo "windows: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
