#!/bin/sh
# install-deps.sh - install the Debian packages one kind of work needs.
#
# Usage: scripts/install-deps.sh [GROUP...]     (no GROUP: all of them, as `make check` does)
#        scripts/install-deps.sh --list GROUP   print the group's packages
#
# Groups (the Makefile target that asks for each):
#   build    compilers, Meson, the libraries of libmicrovm, the CLI, the agent and the unit
#            tests, scdoc for the man pages              make build, make unit
#   image    what guest/image/build.sh copies into the guest make image
#   kernel   linux-source-6.1 and what building it needs     make kernel
#   demo     the demo's OpenVPN server, certificates, curl  make demo (with build, image)
#   test     sanitizers, fuzzing, pytest and the real peers of the integration tests
#                                                            make asan, fuzz, integration, check
#   windows  mingw-w64, CMake (libuv and cJSON from source), Wine; the wsl.exe double
#            (python3, ip, unshare, tar); OpenVPN, curl, OpenSSH, pytest for the test of
#            microvm.exe up                                  make windows
#   arm64    the aarch64 cross compiler, the arm64 (multiarch) libraries and qemu-user
#            (adds the arm64 dpkg architecture first)        make arm64
#   kernel-arm64  the aarch64 cross compiler for the arm64 guest kernel   make kernel-arm64
#   image-arm64   the arm64 libraries of the arm64 guest's OpenVPN and agent (multiarch;
#            the image takes the files they need from the ELF NEEDED entries)  make image-arm64
#   nested-arm64  QEMU for arm64 and the arm64 (multiarch) libraries of the programs the
#            arm64 nested machine runs (openvpn, curl: scripts/nested.sh --arch arm64 copies
#            them into its root)                             make nested-arm64
#   bench    benchmark tools                                 make bench
#   rust     Debian's rustc/cargo and the crates bindings/rust/ uses (offline, from
#            /usr/share/cargo/registry); the Windows standard library for cross-building
#            them                                             make rust, make windows
#
# A package may be in several groups.  To add a package: put it in the group of the work
# that needs it (a new group: a new line in pkgs_of and in the Makefile target).
#
# Idempotent: packages already present are skipped quickly.  Nothing is fetched from anywhere
# but Debian's archive.  Run as root (CI and the dev machines are root); otherwise via sudo.
set -eu

GROUPS="build image kernel demo test windows arm64 bench rust kernel-arm64 image-arm64 nested-arm64"

# pkgs_of GROUP - the Debian packages of GROUP
pkgs_of() {
	case $1 in
	build) echo "build-essential meson ninja-build pkg-config libcmocka-dev libslirp-dev
		libglib2.0-dev libcjson-dev libuv1-dev libssl-dev libseccomp-dev libfdt-dev scdoc" ;;
	image) echo "openvpn python3 cpio gzip tar binutils" ;;
	kernel) echo "linux-source-6.1 bc bison flex libelf-dev libssl-dev kmod xz-utils cpio" ;;
	demo) echo "openvpn openssl iproute2 curl python3" ;;
	test) echo "clang llvm libclang-rt-14-dev python3 python3-pytest
		openvpn openssl iproute2 iptables curl socat netcat-openbsd openssh-server
		openssh-client microsocks qemu-system-x86 qemu-system-arm busybox-static cpio gzip
		xz-utils file procps psmisc util-linux" ;;
	# cmake and dpkg-dev: scripts/build-win-deps.sh builds libuv and cJSON for mingw-w64
	# from Debian's source packages (apt-get source)
	# test_win_up.py: microvm.exe with a real OpenVPN server, curl and OpenSSH (vpnlib)
	# mingw-w64-x86-64-dev: winpthreads, whose copyright file the Windows package carries
	windows) echo "mingw-w64 mingw-w64-x86-64-dev cmake dpkg-dev wine64 locales python3 iproute2 util-linux tar
		python3-pytest openvpn openssl curl netcat-openbsd openssh-server openssh-client
		procps" ;;
	# libfdt-dev cannot be installed for two architectures at once (not Multi-Arch: same):
	# the headers come from the native libfdt-dev (build), the arm64 library from libfdt1:arm64.
	arm64) echo "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libc6:arm64
		libfdt-dev libfdt1:arm64 libslirp-dev:arm64 libglib2.0-dev:arm64 libcjson-dev:arm64
		libuv1-dev:arm64 libssl-dev:arm64 libseccomp-dev:arm64 libcmocka-dev:arm64" ;;
	kernel-arm64) echo "gcc-aarch64-linux-gnu" ;;
	# openvpn itself: its host version picks the arm64 one (apt-get download openvpn:arm64)
	image-arm64) echo "openvpn binutils-aarch64-linux-gnu libc6:arm64 libssl3:arm64
		liblzo2-2:arm64 liblz4-1:arm64 libpkcs11-helper1:arm64 libsystemd0:arm64
		libnl-3-200:arm64 libnl-genl-3-200:arm64 libcap-ng0:arm64 libcjson1:arm64
		libseccomp2:arm64" ;;
	nested-arm64) echo "qemu-system-arm qemu-user openssl libcurl4:arm64 liblzo2-2:arm64
		liblz4-1:arm64 libpkcs11-helper1:arm64 libnl-3-200:arm64 libnl-genl-3-200:arm64
		libcap-ng0:arm64 libsystemd0:arm64" ;;
	bench) echo "hyperfine time procps psmisc util-linux strace valgrind" ;;
	rust) echo "cargo rustc librust-tokio-dev librust-libc-dev librust-thiserror-dev
		librust-pkg-config-dev libstd-rust-dev-windows" ;;
	*) return 1 ;;
	esac
}

if [ "${1:-}" = --list ]; then
	[ $# -eq 2 ] && pkgs_of "$2" | tr -s ' \t\n' '\n' | sed '/^$/d' && exit 0
	echo "install-deps: --list needs one of: $GROUPS" >&2
	exit 2
fi
[ $# -gt 0 ] || set -- $GROUPS

want=""
for g in "$@"; do
	p=$(pkgs_of "$g") || {
		echo "install-deps: unknown group '$g' (groups: $GROUPS)" >&2
		exit 2
	}
	want="$want $p"
done

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing="$missing $p"
done
[ -z "$missing" ] && { echo "install-deps: $*: all packages present"; exit 0; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: $*: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# multiarch packages (PKG:arm64) need their architecture known to dpkg before the update
for a in $(echo "$missing" | tr ' ' '\n' | sed -n 's/^[^:]*:\(.*\)$/\1/p' | sort -u); do
	dpkg --print-foreign-architectures | grep -qx "$a" || $SUDO dpkg --add-architecture "$a"
done
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
