#!/bin/sh
# test-windows.sh BUILD_WIN - run the Windows test programs of a mingw-w64 cross build under
# Wine and print "windows: N passed, N failed" (the sum of every program's own summary line).
#
# WIN_TESTS="test_win_fs test_win_utf8" runs only the programs and pytest modules named
# (without extension), for a change that touches only those.
#
# Wine keeps its state in BUILD_WIN/wine (created on the first run, ~10 s); WINEDEBUG=-all
# silences Wine's own diagnostics.  Each program gets 300 s.
#
# test_win_wsl runs the real Linux agent from the guest image (`make image`, found with
# guest/image/build.sh --print-path; MICROVM_BUILD as there) behind a wsl.exe double that
# chroots into it, so it needs root.  Then tests/windows/test_win_*.py (pytest, with
# /usr/bin/python3) drive microvm.exe the same way, with a real OpenVPN server (test_win_up)
# or unpacked from the package, BUILD_WIN/microvm-*-windows-x86_64.zip (test_win_package:
# `make windows-package` first); pytest's counts join the sum.  Every program runs in network and PID namespaces of
# its own (unshare, with its own /proc): the agent's fixed ports on 127.0.0.1 collide with nothing, and
# whatever a test leaves running (Wine's server, an agent) dies with the namespace.
set -u
# wanted NAME - is NAME selected by WIN_TESTS (all are when it is unset or empty)?
wanted() {
    [ -z "${WIN_TESTS:-}" ] && return 0
    case " $WIN_TESTS " in *" $1 "*) return 0 ;; esac
    return 1
}
build=${1:-build-win}
wine=${WINE:-/usr/lib/wine/wine64}
top=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$wine" ] || { echo "windows: $wine missing (apt-get install wine64)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "windows: the WSL2 tests need root (chroot, namespaces)" >&2; exit 1; }
image=$(sh "$top/guest/image/build.sh" --print-path 2>/dev/null) ||
    { echo "windows: no guest image for this build: run \`make image\` first" >&2; exit 1; }
# the Windows name of the Unix path (Wine's drive Z: is /)
MICROVM_TEST_ROOTFS="Z:$(printf '%s' "$image/rootfs.tar.gz" | tr / '\\')"
MICROVM_TEST_ROOTFS_UNIX="$image/rootfs.tar.gz"
MICROVM_BUILD_WIN="$(cd "$build" && pwd)"
export MICROVM_TEST_ROOTFS MICROVM_TEST_ROOTFS_UNIX MICROVM_BUILD_WIN

WINEPREFIX="$(cd "$build" && pwd)/wine"
WINEDEBUG=-all
export WINEPREFIX WINEDEBUG

passed=0 failed=0
# run_exe EXE LOG [VAR=VALUE...] - one test program under Wine (with VARs set), summed
run_exe() {
    exe=$1 log=$2
    shift 2
    timeout 300 unshare --net --pid --fork --kill-child --mount-proc \
        sh -c 'ip link set lo up && exec "$@"' sh env "$@" "$wine" "$exe" >"$log" 2>&1
    rc=$?
    cat "$log"
    summary=$(tr -d '\r\000' <"$log" | grep '^windows: ' | tail -n1)
    if [ -z "$summary" ]; then
        echo "FAIL $(basename "$exe"): no summary line (exit $rc)"
        failed=$((failed + 1))
        return
    fi
    p=$(echo "$summary" | sed 's/^windows: \([0-9]*\) passed.*/\1/')
    f=$(echo "$summary" | sed 's/.*, \([0-9]*\) failed$/\1/')
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p))
    failed=$((failed + f))
}

for exe in "$build"/tests/windows/test_*.exe; do
    [ -f "$exe" ] || continue
    wanted "$(basename "$exe" .exe)" || continue
    run_exe "$exe" "$build/tests/windows/$(basename "$exe" .exe).log"
done
# test_win_fs once more with a CJK ANSI code page (932, from a ja_JP locale Wine reads:
# compiled into BUILD_WIN/locale, ~1 s, not installed), where a UTF-8 byte sequence and
# the code page's double-byte characters disagree (mingw's basename() split names there)
if [ -f "$build/tests/windows/test_win_fs.exe" ] && wanted test_win_fs; then
    loc="$build/locale"
    echo "test_win_fs with code page 932:"
    if [ ! -d "$loc/ja_JP.UTF-8" ] &&
        ! { mkdir -p "$loc" && localedef -i ja_JP -f UTF-8 "$loc/ja_JP.UTF-8"; }; then
        echo "FAIL test_win_fs (cp932): localedef ja_JP failed (package locales)"
        failed=$((failed + 1))
    else run_exe "$build/tests/windows/test_win_fs.exe" "$build/tests/windows/test_win_fs-cp932.log" \
        LOCPATH="$loc" LANG=ja_JP.UTF-8 LC_ALL=ja_JP.UTF-8 MVM_TEST_ACP=932
    fi
fi
# the pytest modules: the same namespaces (their own /run/netns too: a mount namespace)
for py in "$top"/tests/windows/test_win_*.py; do
    [ -f "$py" ] || continue
    wanted "$(basename "$py" .py)" || continue
    log="$build/tests/windows/$(basename "$py" .py).log"
    timeout 600 unshare --net --pid --fork --kill-child --mount-proc \
        sh -c 'ip link set lo up && exec "$@"' sh \
        /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider "$py" >"$log" 2>&1
    rc=$?
    cat "$log"
    summary=$(grep -E '^=*.* (passed|failed|error|skipped).* in [0-9.]+s' "$log" | tail -n1)
    p=$(echo "$summary" | sed -n 's/.* \([0-9]*\) passed.*/\1/p; s/^=* *\([0-9]*\) passed.*/\1/p' | head -n1)
    f=0
    for what in failed error errors skipped; do
        n=$(echo "$summary" | grep -o "[0-9]* $what" | cut -d' ' -f1)
        f=$((f + ${n:-0}))      # a skipped test is a defect here too
    done
    [ -z "$summary" ] && echo "FAIL $(basename "$py"): no pytest summary (exit $rc)"
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + ${p:-0}))
    failed=$((failed + f))
done
# let this prefix's wineserver finish now rather than linger (and race a `make clean`)
"${WINESERVER:-/usr/lib/wine/wineserver64}" -w 2>/dev/null || true
[ $((passed + failed)) -gt 0 ] || { echo "windows: no test programs in $build/tests/windows" >&2; exit 1; }
echo "windows: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
