#!/bin/sh
# test-windows.sh BUILD_WIN - run the Windows test programs of a mingw-w64 cross build under
# Wine and print "windows: N passed, N failed" (the sum of every program's own summary line).
#
# Wine keeps its state in BUILD_WIN/wine (created on the first run, ~10 s); WINEDEBUG=-all
# silences Wine's own diagnostics.  Each program gets 300 s.
#
# test_win_wsl runs the real Linux agent from the guest image (`make image`, found with
# guest/image/build.sh --print-path; MICROVM_BUILD as there) behind a wsl.exe double that
# chroots into it, so it needs root.  Every program runs in network and PID namespaces of
# its own (unshare, with its own /proc): the agent's fixed ports on 127.0.0.1 collide with nothing, and
# whatever a test leaves running (Wine's server, an agent) dies with the namespace.
set -u
build=${1:-build-win}
wine=${WINE:-/usr/lib/wine/wine64}
top=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$wine" ] || { echo "windows: $wine missing (apt-get install wine64)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "windows: the WSL2 tests need root (chroot, namespaces)" >&2; exit 1; }
image=$(sh "$top/guest/image/build.sh" --print-path 2>/dev/null) ||
    { echo "windows: no guest image for this build: run \`make image\` first" >&2; exit 1; }
# the Windows name of the Unix path (Wine's drive Z: is /)
MICROVM_TEST_ROOTFS="Z:$(printf '%s' "$image/rootfs.tar.gz" | tr / '\\')"
export MICROVM_TEST_ROOTFS

WINEPREFIX="$(cd "$build" && pwd)/wine"
WINEDEBUG=-all
export WINEPREFIX WINEDEBUG

passed=0 failed=0
for exe in "$build"/tests/windows/test_*.exe; do
    [ -f "$exe" ] || continue
    log="$build/tests/windows/$(basename "$exe" .exe).log"
    timeout 300 unshare --net --pid --fork --kill-child --mount-proc \
        sh -c 'ip link set lo up && exec "$@"' sh "$wine" "$exe" >"$log" 2>&1
    rc=$?
    cat "$log"
    summary=$(tr -d '\r\000' <"$log" | grep '^windows: ' | tail -n1)
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
