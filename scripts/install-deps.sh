#!/bin/sh
# install-deps.sh - install every Debian package the build, tests, demo and benchmarks need.
#
# Idempotent: packages already present are skipped quickly.  Nothing is fetched from anywhere
# but Debian's archive.  Run as root (CI and the dev machines are root); otherwise via sudo.
set -eu

PKGS="
build-essential meson ninja-build pkg-config
libcmocka-dev libslirp-dev libglib2.0-dev libcjson-dev libseccomp-dev
clang llvm libclang-rt-14-dev
python3 python3-pytest
openvpn openssl iproute2 iptables curl socat netcat-openbsd openssh-server openssh-client
microsocks qemu-system-x86 busybox-static cpio gzip xz-utils file
linux-source-6.1 bc bison flex libelf-dev libssl-dev kmod
hyperfine time procps psmisc util-linux
mingw-w64
wine64
"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done
[ -z "$missing" ] && { echo "install-deps: all packages present"; exit 0; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
