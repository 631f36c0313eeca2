#!/bin/sh
# guest/image/build.sh - assemble the microvm guest root and pack it (make image).
#
# Usage: guest/image/build.sh [--arch x86_64|arm64] [--print-path] [--rebuild] [--out DIR]
#                             [--help]
#
# Theory of operation
#   The guest root holds exactly what the appliance runs:
#     /init                    microvm-init (PID 1; /sbin/init links to it)
#     /usr/bin/microvm-agent   the agent, supervised by init
#     /usr/sbin/openvpn        Debian's OpenVPN (2.6, built without iproute2: it configures
#                              tun, addresses and routes over netlink itself, so no `ip`)
#     their shared-library closure (ldd) and the dynamic loader, under /usr/lib* with the
#     usrmerge links /lib -> usr/lib, /lib64 -> usr/lib64, /bin, /sbin
#     /etc from guest/image/rootfs/ (passwd, group, hosts, nsswitch.conf, os-release),
#     /etc/resolv.conf -> ../run/resolv.conf (written by init at boot)
#     empty mount points /proc /sys /dev /run /tmp /root; /dev/net/tun is made by init.
#   Binaries from the build are stripped. The tree is packed two ways:
#     initramfs.cpio.gz  cpio newc (guest/image/mkcpio.py: sorted, owner 0, mtime 0, plus the
#                        dev/console node the kernel needs before devtmpfs), gzip -n -9
#     rootfs.tar.gz      tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner,
#                        gzip -n -9 (WSL2 and the namespace backend; no device nodes)
#   Both depend only on the inputs, so they are reproducible. They are cached in
#       ${MICROVM_CACHE:-$HOME/.cache/microvm}/image/<key>/
#   where <key> hashes this script, mkcpio.py, rootfs/ and every file copied in (path and
#   content). The directory also has MANIFEST (path, mode, sha256 of every file) and SIZES.
#
#   --arch arm64 (make image-arm64) packs the same root for arm64 guests: init and agent
#   from the arm64 cross build (build-arm64/, make arm64), Debian's arm64 OpenVPN of the
#   same version as the host's (openvpn is not Multi-Arch: same, so `apt-get download
#   openvpn:arm64=VERSION`, unpacked with dpkg-deb -x into ${MICROVM_CACHE}/deb/), and its
#   libraries from the arm64 multiarch packages installed on the host (install-deps.sh
#   image-arm64) under /usr/lib/aarch64-linux-gnu. ldd cannot run arm64 programs, so the
#   closure follows the ELF NEEDED entries (readelf -d) instead. Cached in .../image/arm64/.
#
#   stdout: the output directory as the last line; sizes and progress go to stderr.
#
#   --print-path  print the cache directory if the image for the current inputs is built
#                 (exit 0), else exit 1 without building
#   --rebuild     pack again even if the cache has this key
#   --out DIR     write into DIR instead of the cache (no caching; for reproducibility checks)
#   --arch ARCH   x86_64 (default) or arm64
#
# Environment: MICROVM_BUILD (meson build dir, default ./build), MICROVM_BUILD_ARM64 (the
#   arm64 cross build, default ./build-arm64), MICROVM_CACHE,
#   MICROVM_INIT, MICROVM_AGENT, MICROVM_OPENVPN (override the binaries).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache=${MICROVM_CACHE:-$home/.cache/microvm}/image
# Kernel + initramfs budget from the design note ("~10MB total").
budget=$((10 * 1024 * 1024))

mode=build
outdir=
arch=x86_64
while [ $# -gt 0 ]; do
	case $1 in
	--print-path) mode=print ;;
	--rebuild) mode=rebuild ;;
	--arch)
		[ $# -ge 2 ] || { echo "build.sh: --arch needs x86_64 or arm64" >&2; exit 2; }
		arch=$2
		shift
		;;
	--out)
		[ $# -ge 2 ] || { echo "build.sh: --out needs a directory" >&2; exit 2; }
		outdir=$2
		shift
		;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "build.sh: unknown argument '$1' (try --help)" >&2
		exit 2
		;;
	esac
	shift
done

. "$top/scripts/progress.sh"
log() { echo "image: $*" >&2; }
die() {
	echo "image: error: $*" >&2
	exit 1
}

# openvpn_arm64 - print the path of Debian's arm64 openvpn, of the host openvpn's version,
# downloaded and unpacked into the cache once (apt-get download: the archive apt knows).
openvpn_arm64() {
	ver=$(dpkg-query -W -f '${Version}' openvpn 2>/dev/null || true)
	[ -n "$ver" ] || die "install Debian's openvpn first (make deps): its version picks the arm64 one"
	debs=${MICROVM_CACHE:-$home/.cache/microvm}/deb
	dir=$debs/openvpn_${ver}_arm64
	if [ ! -x "$dir/usr/sbin/openvpn" ]; then
		log "downloading openvpn:arm64=$ver"
		mkdir -p "$debs"
		dl=$(mktemp -d "$debs/.tmp-openvpn.XXXXXX")
		# as root into a private cache: no unprivileged _apt sandbox (it could not write there)
		if ! (cd "$dl" && apt-get download -qq -o APT::Sandbox::User=root \
			"openvpn:arm64=$ver") >&2 ||
			! dpkg-deb -x "$dl"/openvpn_*_arm64.deb "$dl/root"; then
			rm -rf "$dl"
			die "cannot fetch openvpn:arm64=$ver (dpkg --add-architecture arm64; apt-get update)"
		fi
		rm -rf "$dir"
		mv "$dl/root" "$dir"
		rm -rf "$dl"
	fi
	echo "$dir/usr/sbin/openvpn"
}

# Per architecture: the build the guest programs come from, strip, the kernel's boot image.
case $arch in
x86_64 | x86 | amd64)
	arch=x86_64
	build=${MICROVM_BUILD:-$top/build}
	strip_tool="strip"
	boot_image=bzImage
	;;
arm64 | aarch64)
	arch=arm64
	build=${MICROVM_BUILD_ARM64:-$top/build-arm64}
	strip_tool="aarch64-linux-gnu-strip"
	boot_image=Image
	cache=$cache/arm64
	command -v "$strip_tool" >/dev/null ||
		die "$strip_tool not found: install Debian's binutils-aarch64-linux-gnu (make deps)"
	;;
*)
	echo "build.sh: unknown architecture '$arch' (x86_64 or arm64)" >&2
	exit 2
	;;
esac
init_bin=${MICROVM_INIT:-$build/guest/init/microvm-init}
agent_bin=${MICROVM_AGENT:-$build/guest/agent/microvm-agent}
if [ -n "${MICROVM_OPENVPN:-}" ]; then
	openvpn_bin=$MICROVM_OPENVPN
elif [ "$arch" = x86_64 ]; then
	openvpn_bin=/usr/sbin/openvpn
else
	openvpn_bin=$(openvpn_arm64)
fi

[ -x "$init_bin" ] || die "no $init_bin: build first (make build; for arm64 make arm64)"
[ -x "$agent_bin" ] || die "no $agent_bin: build first (make build; for arm64 make arm64)"
[ -x "$openvpn_bin" ] || die "no $openvpn_bin: install Debian's openvpn (make deps)"

# usr_path PATH: where PATH lives in the usrmerged image (/lib/x -> /usr/lib/x).
usr_path() {
	case $1 in
	/lib/* | /lib64/* | /bin/* | /sbin/*) echo "/usr$1" ;;
	*) echo "$1" ;;
	esac
}

# closure BIN...: absolute paths of the shared libraries and loader the binaries need.
closure() {
	[ "$arch" = x86_64 ] || {
		closure_elf "$@"
		return
	}
	for b in "$@"; do
		# "libx.so => /path (addr)", "/lib64/ld-linux-x86-64.so.2 (addr)", or "statically linked"
		ldd "$b" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' ||
			true
	done | LC_ALL=C sort -u
}

# The arm64 multiarch directories where Debian's :arm64 library packages put their files.
elf_libdirs="/usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu"

# closure_elf BIN...: closure() for programs ldd cannot run (another architecture): the
# program interpreter and the NEEDED sonames, followed transitively through the multiarch
# library directories. An unresolved soname fails, naming the package that would bring it.
closure_elf() {
	todo=$*
	seen=" "
	found=
	while [ -n "$todo" ]; do
		next=
		for f in $todo; do
			interp=$(readelf -l "$f" 2>/dev/null |
				sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
			found="$found $interp"
			# libc names the loader as NEEDED too: it is the interpreter, already in
			[ -z "$interp" ] || seen="$seen${interp##*/} "
			for so in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
				case $seen in *" $so "*) continue ;; esac
				seen="$seen$so "
				path=
				for d in $elf_libdirs; do
					[ -e "$d/$so" ] && path=$d/$so && break
				done
				if [ -z "$path" ]; then
					pkg=$(dpkg-query -S "*/x86_64-linux-gnu/$so" 2>/dev/null | cut -d: -f1 | head -n1)
					die "$(basename "$f") needs $so, not found in $elf_libdirs${pkg:+ (install $pkg:arm64: scripts/install-deps.sh image-arm64)}"
				fi
				found="$found $path"
				next="$next $path"
			done
		done
		todo=$next
	done
	# shellcheck disable=SC2086 # one path per word
	printf '%s\n' $found | LC_ALL=C sort -u
}

libs=$(closure "$init_bin" "$agent_bin" "$openvpn_bin")
if [ "$arch" = x86_64 ]; then
	if ldd "$openvpn_bin" 2>&1 | grep -q 'not found'; then
		die "openvpn has unresolved libraries: $(ldd "$openvpn_bin" | grep 'not found' | tr '\n' ' ')"
	fi
	if ldd "$agent_bin" 2>&1 | grep -q 'not found'; then
		die "the agent has unresolved libraries"
	fi
fi

# The key: the recipe (this script, mkcpio.py, rootfs/) and every input file.
key=$( {
	cat "$0" "$here/mkcpio.py"
	(cd "$here/rootfs" && find . -type f | LC_ALL=C sort | xargs sha256sum)
	for f in "$init_bin" "$agent_bin" "$openvpn_bin"; do sha256sum <"$f"; done
	for l in $libs; do echo "$l $(sha256sum <"$l")"; done
} | sha256sum | cut -c1-16)

if [ -n "$outdir" ]; then
	out=$outdir
else
	out=$cache/$key
fi
built() { [ -s "$out/initramfs.cpio.gz" ] && [ -s "$out/rootfs.tar.gz" ]; }

if [ "$mode" = print ]; then
	[ -z "$outdir" ] && built || exit 1
	echo "$out"
	exit 0
fi
if [ "$mode" = build ] && [ -z "$outdir" ] && built; then
	log "cached (key $key)"
	echo "$out"
	exit 0
fi

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.tmp-$key.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

# Directories and usrmerge links.
for d in usr/bin usr/sbin usr/lib usr/lib64 etc proc sys dev run tmp root var; do
	mkdir -p "$root/$d"
done
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
ln -s ../run "$root/var/run"

# install_file SRC DEST MODE [strip]
install_file() {
	mkdir -p "$(dirname "$root$2")"
	cp -L "$1" "$root$2"
	if [ "${4:-}" = strip ]; then
		"$strip_tool" --strip-unneeded -R .comment "$root$2" 2>/dev/null ||
			die "strip $1 failed"
	fi
	chmod "$3" "$root$2"
}
install_file "$init_bin" /init 0755 strip
ln -s ../../init "$root/usr/sbin/init"
install_file "$agent_bin" /usr/bin/microvm-agent 0755 strip
install_file "$openvpn_bin" /usr/sbin/openvpn 0755
for l in $libs; do
	install_file "$l" "$(usr_path "$l")" 0755
done
(cd "$here/rootfs" && find . -type f) | while read -r f; do
	install_file "$here/rootfs/$f" "/${f#./}" 0644
done
ln -s ../run/resolv.conf "$root/etc/resolv.conf"
find "$root" -type d -exec chmod 0755 {} +
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

# Every program in the image must find its loader and libraries inside the image.
for b in /usr/sbin/openvpn /usr/bin/microvm-agent; do
	interp=$(readelf -l "$root$b" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	[ -z "$interp" ] || [ -e "$root$(usr_path "$interp")" ] ||
		die "$b needs $interp, which is not in the image"
done

(cd "$root" && find . \( -type f -o -type l \) | LC_ALL=C sort | while read -r f; do
	if [ -L "$f" ]; then
		echo "${f#./} -> $(readlink "$f")"
	else
		echo "${f#./} $(stat -c %a "$f") $(sha256sum <"$f" | cut -d' ' -f1)"
	fi
done) >"$tmp/MANIFEST"

pack_cpio() {
	SOURCE_DATE_EPOCH=0 /usr/bin/python3 "$here/mkcpio.py" "$root" \
		--node dev/console:c:5:1:0600 | gzip -n -9 >"$tmp/initramfs.cpio.gz"
}
pack_tar() {
	tar -C "$root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
		-cf - . | gzip -n -9 >"$tmp/rootfs.tar.gz"
}
# on a terminal, a progress line while packing (scripts/progress.sh)
log "packing initramfs.cpio.gz"
progress "image: packing initramfs.cpio.gz" pack_cpio || die "packing initramfs.cpio.gz failed"
log "packing rootfs.tar.gz"
progress "image: packing rootfs.tar.gz" pack_tar || die "packing rootfs.tar.gz failed"

initrd_size=$(stat -c %s "$tmp/initramfs.cpio.gz")
tar_size=$(stat -c %s "$tmp/rootfs.tar.gz")
root_size=$(du -sb "$root" | cut -f1)
kernel_dir=$(sh "$top/guest/kernel/build.sh" --arch "$arch" --print-path 2>/dev/null || true)
{
	echo "root $root_size"
	echo "initramfs.cpio.gz $initrd_size"
	echo "rootfs.tar.gz $tar_size"
	if [ -n "$kernel_dir" ]; then
		echo "$boot_image $(stat -c %s "$kernel_dir/$boot_image")"
	fi
} >"$tmp/SIZES"
log "guest root $root_size bytes, initramfs.cpio.gz $initrd_size, rootfs.tar.gz $tar_size"
if [ -n "$kernel_dir" ]; then
	total=$(($(stat -c %s "$kernel_dir/$boot_image") + initrd_size))
	log "$boot_image + initramfs = $total bytes (budget $budget)"
	[ "$total" -le "$budget" ] || log "warning: over the 10 MB budget"
else
	log "kernel not built yet (make kernel): total size not checked"
fi

mkdir -p "$out"
for f in initramfs.cpio.gz rootfs.tar.gz MANIFEST SIZES; do
	mv "$tmp/$f" "$out/$f.new"
	mv "$out/$f.new" "$out/$f"
done
echo "$out"
