#!/bin/sh
# guest/kernel/build.sh - build (or fetch from the cache) the microvm guest kernel.
#
# Usage: guest/kernel/build.sh [--print-path] [--print-key] [--rebuild] [--help]
#
# Theory of operation
#   The guest kernel is Debian's linux-source-6.1 configured as `make tinyconfig` with the
#   fragment guest/kernel/microvm.config merged over it (scripts/kconfig/merge_config.sh -m,
#   then `make olddefconfig`), with the patches guest/kernel/*.patch applied. The result is
#   cached outside the source tree in
#       ${MICROVM_CACHE:-$HOME/.cache/microvm}/kernel/<key>/{vmlinux,bzImage,config,...}
#   where <key> is a hash of the fragment, the patches and the kernel source package version,
#   so a second run with the same inputs is instant. The unpacked source tree is kept in
#   .../kernel/work/<source version>/ so that a change to the fragment only rebuilds what
#   changed. A lock file serialises concurrent builds (several engineers and `make check`
#   may call this at once). Every option of the fragment is checked against the final .config;
#   a mismatch (an option Kconfig silently dropped, e.g. a missing dependency) fails the build.
#
#   stdout: the cache directory path as the last line (nothing else goes to stdout);
#   progress and errors go to stderr; the full make output goes to .../kernel/work/build.log.
#
#   --print-path  print the cache directory if the kernel for the current inputs is built
#                 (exit 0), else exit 1 without building.
#   --print-key   print <key> for the current inputs, built or not (guest/keys.sh records it
#                 for the runtime's default lookup, src/runtime/guest_files.c).
#   --rebuild     ignore a cached result for the current inputs and build again.
#
# Environment: MICROVM_CACHE (cache root), MICROVM_KERNEL_SOURCE (source tarball, default
# /usr/src/linux-source-6.1.tar.xz, Debian package linux-source-6.1).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
fragment=$here/microvm.config
src_tar=${MICROVM_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache=${MICROVM_CACHE:-$home/.cache/microvm}/kernel
# Bump when the way the kernel is built changes in a way that changes the output.
recipe=1

mode=build
for arg in "$@"; do
	case $arg in
	--print-path) mode=print ;;
	--print-key) mode=key ;;
	--rebuild) mode=rebuild ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "build.sh: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done

. "$here/../../scripts/progress.sh"
log() { echo "kernel: $*" >&2; }
die() {
	echo "kernel: error: $*" >&2
	exit 1
}

[ -r "$fragment" ] || die "missing config fragment $fragment"
[ -r "$src_tar" ] || die "kernel source $src_tar not found: install Debian's linux-source-6.1 (make deps)"

# Source version: the Debian package version if dpkg knows the tarball, else its checksum.
src_ver=
if pkg=$(dpkg-query -S "$src_tar" 2>/dev/null | cut -d: -f1 | head -n1) && [ -n "$pkg" ]; then
	src_ver=$pkg-$(dpkg-query -W -f '${Version}' "$pkg")
fi
[ -n "$src_ver" ] || src_ver=sha256-$(sha256sum "$src_tar" | cut -c1-16)

patches=$(find "$here" -maxdepth 1 -name '*.patch' | LC_ALL=C sort)
# shellcheck disable=SC2086 # word splitting of $patches is intended (no spaces in names)
key=$( {
	echo "recipe $recipe"
	echo "source $src_ver"
	cat "$fragment"
	for p in $patches; do
		echo "patch $(basename "$p")"
		cat "$p"
	done
} | sha256sum | cut -c1-16)
out=$cache/$key
if [ "$mode" = key ]; then
	echo "$key"
	exit 0
fi

built() { [ -s "$out/vmlinux" ] && [ -s "$out/bzImage" ]; }

if [ "$mode" = print ]; then
	built || exit 1
	echo "$out"
	exit 0
fi
if [ "$mode" = build ] && built; then
	log "cached ($src_ver, key $key)"
	echo "$out"
	exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
	log "another kernel build holds $cache/.lock, waiting"
	flock 9
fi
if [ "$mode" = build ] && built; then # built by whoever held the lock
	echo "$out"
	exit 0
fi

work=$cache/work/$src_ver
logfile=$cache/work/build.log
if [ ! -e "$work/.microvm-unpacked" ]; then
	log "unpacking $src_tar into $work"
	rm -rf "$work"
	mkdir -p "$work"
	tar -xJf "$src_tar" -C "$work" --strip-components=1
	: >"$work/.microvm-unpacked"
fi
cd "$work"

# Patches: keep the concatenation of what is applied; switch sets by reverse-applying.
applied=.microvm-applied.patch
wanted=$(mktemp)
trap 'rm -f "$wanted"' EXIT
for p in $patches; do cat "$p"; done >"$wanted"
if [ ! -e "$applied" ] || ! cmp -s "$wanted" "$applied"; then
	if [ -s "$applied" ]; then
		log "reverting previously applied patches"
		patch -R -p1 -s <"$applied" || die "cannot revert old patches in $work (delete it)"
	fi
	: >"$applied"
	for p in $patches; do
		log "applying $(basename "$p")"
		patch -p1 -s --no-backup-if-mismatch <"$p" || die "patch $(basename "$p") does not apply"
		cat "$p" >>"$applied"
	done
fi

# Reproducible metadata in the image (uname -v, /proc/version).
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
export KBUILD_BUILD_USER=microvm KBUILD_BUILD_HOST=microvm KBUILD_BUILD_VERSION=1
mk() { make ARCH=x86_64 "$@" >>"$logfile" 2>&1; }

: >"$logfile"
log "configuring: tinyconfig + $(basename "$fragment")"
mk tinyconfig || die "make tinyconfig failed (see $logfile)"
mk_merge() { scripts/kconfig/merge_config.sh -m .config "$fragment" >>"$logfile" 2>&1; }
mk_merge || die "merge_config.sh failed (see $logfile)"
mk olddefconfig || die "make olddefconfig failed (see $logfile)"

# Every requested option must have its requested value in the final .config.
bad=0
while IFS= read -r line; do
	case $line in CONFIG_*=*) ;; *) continue ;; esac
	opt=${line%%=*}
	val=${line#*=}
	if [ "$val" = n ]; then
		if grep -q "^$opt=" .config; then
			echo "kernel: $opt requested n, but .config has $(grep "^$opt=" .config)" >&2
			bad=1
		fi
	elif ! grep -qx "$opt=$val" .config; then
		have=$(grep "^$opt=" .config || echo "$opt not set")
		echo "kernel: $opt requested $val, but .config has: $have" >&2
		bad=1
	fi
done <"$fragment"
[ $bad -eq 0 ] || die "the final .config does not have the options requested in $fragment (a dependency is missing?)"

jobs=$(nproc)
log "building vmlinux and bzImage with make -j$jobs (log: $logfile)"
start=$(date +%s)
# on a terminal, a progress line meanwhile (scripts/progress.sh); quiet in scripts
if ! progress "kernel: building vmlinux and bzImage" mk -j"$jobs" vmlinux bzImage; then
	tail -n 40 "$logfile" >&2
	die "kernel build failed (full log: $logfile)"
fi
log "built in $(($(date +%s) - start)) s"

tmp=$cache/.tmp-$key
rm -rf "$tmp"
mkdir -p "$tmp"
cp vmlinux "$tmp/vmlinux"
cp arch/x86/boot/bzImage "$tmp/bzImage"
cp .config "$tmp/config"
cp System.map "$tmp/System.map"
cp "$fragment" "$tmp/"
for p in $patches; do cp "$p" "$tmp/"; done
make -s ARCH=x86_64 kernelrelease >"$tmp/release"
echo "$src_ver" >"$tmp/source"
rm -rf "$out"
mv "$tmp" "$out"
log "vmlinux $(stat -c %s "$out/vmlinux") bytes, bzImage $(stat -c %s "$out/bzImage") bytes"
echo "$out"
