#!/bin/sh
# test-rust-windows.sh BUILD_WIN [--build-only] - cross-build the Rust crates (bindings/rust/)
# for x86_64-pc-windows-gnu against BUILD_WIN's static libmicrovm, with Debian's cargo and
# rustc and libstd-rust-dev-windows, and run them under Wine:
#   - the crates' tests (cargo test, Wine as the runner, crate feature `manager` on as by
#     default): the library links and answers, VsockClient over TCP against a fake agent,
#     VpnManager's calls without a guest (tests/manager_calls.rs);
#   - examples/runtime_flow on the WSL2 backend behind the wsl.exe double
#     (tests/windows/fake_wsl.c + wsl_distro.py, built in BUILD_WIN) running the real agent
#     of the guest image: start, request(1025, ping), connect/send/recv, shutdown.
# Prints "rust-windows: N passed, N failed" (cargo's test counts, plus the example as one).
# The app's flow through VpnManager (examples/app_flow against a real OpenVPN server) is
# tests/windows/test_win_rust.py, in scripts/test-windows.sh's pytest run: it uses the
# example that `--build-only` built before (the cross build only, then exit; no Wine, no
# root): `make windows` runs that first, outside test-windows.sh's time limits.
#
# Needs root (the double chroots into the distro).  Everything runs in network and PID
# namespaces of its own, as scripts/test-windows.sh does: the agent's fixed ports on
# 127.0.0.1 collide with nothing, and what is left running dies with the namespace.
set -u
build=$(cd "${1:-build-win}" && pwd)
build_only=
[ "${2:-}" = --build-only ] && build_only=1
top=$(cd "$(dirname "$0")/.." && pwd)
wine=${WINE:-/usr/lib/wine/wine64}
target=x86_64-pc-windows-gnu
# (guest/image/build.sh finds the image of the Linux build, MICROVM_BUILD as the Makefile
# exports it: before MICROVM_BUILD becomes BUILD_WIN for the crates below)
if [ -z "$build_only" ]; then
    [ -x "$wine" ] || { echo "rust-windows: $wine missing (apt-get install wine64)" >&2; exit 1; }
    [ "$(id -u)" -eq 0 ] || { echo "rust-windows: the WSL2 flow needs root (chroot, namespaces)" >&2; exit 1; }
    [ -f "$build/tests/windows/fake_wsl.exe" ] ||
        { echo "rust-windows: $build/tests/windows/fake_wsl.exe missing: build $build first" >&2; exit 1; }
    image=$(sh "$top/guest/image/build.sh" --print-path 2>/dev/null) ||
        { echo "rust-windows: no guest image for this build: run \`make image\` first" >&2; exit 1; }
fi

# the cross build's own target directory, inside BUILD_WIN (make clean removes it)
CARGO_TARGET_DIR=$build/cargo
MICROVM_BUILD=$build
# libmicrovm's packages (libuv, cJSON) for mingw: the .pc files of scripts/build-win-deps.sh,
# named by the machine file beside BUILD_WIN (the Makefile's WIN_DEPS_INI)
PKG_CONFIG_LIBDIR=$(sed -n "s/^pkg_config_libdir = '\(.*\)'$/\1/p" "$build.deps.ini" 2>/dev/null)
[ -n "$PKG_CONFIG_LIBDIR" ] ||
    { echo "rust-windows: $build.deps.ini names no pkg_config_libdir: run make windows" >&2; exit 1; }
PKG_CONFIG_ALLOW_CROSS=1
# Debian's cargo and rustc (/usr/bin), not a rustup toolchain that may come first on PATH
PATH=/usr/bin:$PATH
export PKG_CONFIG_LIBDIR PKG_CONFIG_ALLOW_CROSS CARGO_TARGET_DIR MICROVM_BUILD PATH

cd "$top/bindings/rust" || exit 1
/usr/bin/cargo build --offline --target $target --tests --examples ||
    { echo "rust-windows: 0 passed, 1 failed (cross build)"; exit 1; }
[ -n "$build_only" ] && exit 0

# Windows names of Unix paths (Wine's drive Z: is /)
winpath() { printf 'Z:%s' "$1" | tr / '\\'; }

# The double's state (its registered distros, their file systems) is new for each run, so
# the appliance's files in the prefix's %LOCALAPPDATA%\microvm (Wine sets LOCALAPPDATA
# itself, from the prefix) go too: a distro disk left there by an earlier run would make
# the import fail as on real Windows.
appdata_microvm() { rm -rf "$build"/wine/drive_c/users/*/AppData/Local/microvm; }
state=$(mktemp -d "${TMPDIR:-/tmp}/microvm-rust-win.XXXXXX")
trap 'rm -rf "$state"; appdata_microvm' EXIT INT TERM
appdata_microvm
log=$build/rust-windows.log

WINEPREFIX=$build/wine WINEDEBUG=-all
MICROVM_WSL_EXE=$(winpath "$build/tests/windows/fake_wsl.exe")
FAKE_WSL_DIR=$(winpath "$state")
MICROVM_WSL_START_TIMEOUT=30
CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$wine
export WINEPREFIX WINEDEBUG MICROVM_WSL_EXE FAKE_WSL_DIR MICROVM_WSL_START_TIMEOUT
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER

timeout 600 unshare --net --pid --fork --kill-child --mount-proc sh -c '
    ip link set lo up || exit 1
    /usr/bin/cargo test --offline --target '$target' 2>&1
    echo "cargo test exit $?"
    /usr/bin/cargo run --offline --target '$target' --example runtime_flow -- \
        --backend wsl --rootfs "$0" 2>&1
    echo "runtime_flow exit $?"
' "$(winpath "$image/rootfs.tar.gz")" >"$log" 2>&1
rc=$?
tr -d '\r' <"$log"
# let this prefix's wineserver finish now rather than linger
"${WINESERVER:-/usr/lib/wine/wineserver64}" -w 2>/dev/null || true

passed=0 failed=0
for r in $(tr -d '\r' <"$log" | sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1:\2/p'); do
    passed=$((passed + ${r%:*}))
    failed=$((failed + ${r#*:}))
done
# a test binary that died gives no result line
[ "$failed" -eq 0 ] && ! tr -d '\r' <"$log" | grep -q '^cargo test exit 0$' && failed=1
if tr -d '\r' <"$log" | grep -q '^runtime_flow: ok$' && tr -d '\r' <"$log" | grep -q '^runtime_flow exit 0$'; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi
[ "$rc" -eq 0 ] || failed=$((failed + 1))
echo "rust-windows: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
