#!/bin/sh
# guest/kernel/build.sh - build (or fetch from the cache) the microvm guest kernel.
#
# Usage: guest/kernel/build.sh [--arch x86_64|arm64] [--print-path] [--rebuild] [--help]
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
#   --arch arm64 (make kernel-arm64) cross-compiles the same source for arm64 with
#   aarch64-linux-gnu-gcc: the fragment guest/kernel/arm64.config is merged after
#   microvm.config (a line there overrides the shared one, e.g. "=n" for the x86-only
#   options) and the check covers the effective value of every option of both. Everything
#   of an arm64 build lives apart from the x86 one, in .../kernel/arm64/: its own lock (an
#   x86 build never blocks an arm64 one), its own unpacked source tree in work/ (a kernel
#   tree builds one architecture at a time) and <key>/{vmlinux,Image,config,...}, where the
#   key also hashes the architecture and arm64.config. Image is the uncompressed kernel
#   that src/arch/arm64 loads. x86_64 (the default) is unchanged, and so is its key.
#
#   stdout: the cache directory path as the last line (nothing else goes to stdout);
#   progress and errors go to stderr; the full make output goes to .../kernel/work/build.log.
#
#   --print-path  print the cache directory if the kernel for the current inputs is built
#                 (exit 0), else exit 1 without building.
#   --rebuild     ignore a cached result for the current inputs and build again.
#   --arch ARCH   x86_64 (default) or arm64.
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
arch=x86_64
while [ $# -gt 0 ]; do
	arg=$1
	case $arg in
	--print-path) mode=print ;;
	--rebuild) mode=rebuild ;;
	--arch)
		[ $# -ge 2 ] || { echo "build.sh: --arch needs x86_64 or arm64" >&2; exit 2; }
		arch=$2
		shift
		;;
	--arch=*) arch=${arg#--arch=} ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "build.sh: unknown argument '$arg' (try --help)" >&2
		exit 2
		;;
	esac
	shift
done

# Per architecture: the extra fragment, make's ARCH and CROSS_COMPILE, the boot image.
case $arch in
x86_64 | x86 | amd64)
	arch=x86_64
	fragments=$fragment
	karch=x86_64
	cross=
	boot_image=bzImage
	boot_src=arch/x86/boot/bzImage
	;;
arm64 | aarch64)
	arch=arm64
	fragments="$fragment $here/arm64.config"
	karch=arm64
	cross=aarch64-linux-gnu-
	boot_image=Image
	boot_src=arch/arm64/boot/Image
	cache=$cache/arm64
	;;
*)
	echo "build.sh: unknown architecture '$arch' (x86_64 or arm64)" >&2
	exit 2
	;;
esac

. "$here/../../scripts/progress.sh"
log() { echo "kernel: $*" >&2; }
die() {
	echo "kernel: error: $*" >&2
	exit 1
}

for f in $fragments; do [ -r "$f" ] || die "missing config fragment $f"; done
if [ -n "$cross" ] && ! command -v "${cross}gcc" >/dev/null; then
	die "${cross}gcc not found: install Debian's gcc-aarch64-linux-gnu (make deps)"
fi
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
	# nothing more for x86_64, so that its key (and cache) stays what it was
	if [ "$arch" != x86_64 ]; then
		echo "arch $arch"
		cat "$here/$arch.config"
	fi
} | sha256sum | cut -c1-16)
out=$cache/$key

built() { [ -s "$out/vmlinux" ] && [ -s "$out/$boot_image" ]; }

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
mk() { make ARCH=$karch ${cross:+CROSS_COMPILE=$cross} "$@" >>"$logfile" 2>&1; }

: >"$logfile"
# shellcheck disable=SC2086 # $fragments is a list of paths without spaces
log "configuring ($arch): tinyconfig + $(for f in $fragments; do basename "$f"; done | tr '\n' ' ')"
mk tinyconfig || die "make tinyconfig failed (see $logfile)"
# shellcheck disable=SC2086
mk_merge() { ARCH=$karch scripts/kconfig/merge_config.sh -m .config $fragments >>"$logfile" 2>&1; }
mk_merge || die "merge_config.sh failed (see $logfile)"
mk olddefconfig || die "make olddefconfig failed (see $logfile)"

# Every requested option must have its requested value in the final .config; with several
# fragments the last one naming an option wins, as in merge_config.sh.
# shellcheck disable=SC2086
wanted_opts=$(cat $fragments | awk -F= '/^CONFIG_[A-Za-z0-9_]*=/ { if (!($1 in v)) o[n++] = $1
	v[$1] = $0 } END { for (i = 0; i < n; i++) print v[o[i]] }')
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
done <<EOF
$wanted_opts
EOF
[ $bad -eq 0 ] || die "the final .config does not have the options requested in $fragments (a dependency is missing?)"

jobs=$(nproc)
log "building vmlinux and $boot_image with make -j$jobs (log: $logfile)"
start=$(date +%s)
# on a terminal, a progress line meanwhile (scripts/progress.sh); quiet in scripts
if ! progress "kernel: building vmlinux and $boot_image" mk -j"$jobs" vmlinux "$boot_image"; then
	tail -n 40 "$logfile" >&2
	die "kernel build failed (full log: $logfile)"
fi
log "built in $(($(date +%s) - start)) s"

tmp=$cache/.tmp-$key
rm -rf "$tmp"
mkdir -p "$tmp"
cp vmlinux "$tmp/vmlinux"
cp "$boot_src" "$tmp/$boot_image"
cp .config "$tmp/config"
cp System.map "$tmp/System.map"
# shellcheck disable=SC2086
cp $fragments "$tmp/"
for p in $patches; do cp "$p" "$tmp/"; done
make -s ARCH=$karch kernelrelease >"$tmp/release"
echo "$src_ver" >"$tmp/source"
rm -rf "$out"
mv "$tmp" "$out"
log "vmlinux $(stat -c %s "$out/vmlinux") bytes, $boot_image $(stat -c %s "$out/$boot_image") bytes"
echo "$out"
