#!/bin/sh
# guest/image/build.sh - assemble the microvm guest root and pack it (make image).
#
# Usage: guest/image/build.sh [--print-path] [--print-key] [--rebuild] [--out DIR] [--help]
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
#   stdout: the output directory as the last line; sizes and progress go to stderr.
#
#   --print-path  print the cache directory if the image for the current inputs is built
#                 (exit 0), else exit 1 without building
#   --print-key   print <key> for the current inputs, built or not (guest/keys.sh records it
#                 for the runtime's default lookup, src/runtime/guest_files.c)
#   --rebuild     pack again even if the cache has this key
#   --out DIR     write into DIR instead of the cache (no caching; for reproducibility checks)
#
# Environment: MICROVM_BUILD (meson build dir, default ./build), MICROVM_CACHE,
#   MICROVM_INIT, MICROVM_AGENT, MICROVM_OPENVPN (override the binaries).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${MICROVM_BUILD:-$top/build}
init_bin=${MICROVM_INIT:-$build/guest/init/microvm-init}
agent_bin=${MICROVM_AGENT:-$build/guest/agent/microvm-agent}
openvpn_bin=${MICROVM_OPENVPN:-/usr/sbin/openvpn}
home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache=${MICROVM_CACHE:-$home/.cache/microvm}/image
# Kernel + initramfs budget from the design note ("~10MB total").
budget=$((10 * 1024 * 1024))

mode=build
outdir=
while [ $# -gt 0 ]; do
	case $1 in
	--print-path) mode=print ;;
	--print-key) mode=key ;;
	--rebuild) mode=rebuild ;;
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

[ -x "$init_bin" ] || die "no $init_bin: build first (make build)"
[ -x "$agent_bin" ] || die "no $agent_bin: build first (make build; the agent is guest/agent/)"
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
	for b in "$@"; do
		# "libx.so => /path (addr)", "/lib64/ld-linux-x86-64.so.2 (addr)", or "statically linked"
		ldd "$b" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' ||
			true
	done | LC_ALL=C sort -u
}

libs=$(closure "$init_bin" "$agent_bin" "$openvpn_bin")
if ldd "$openvpn_bin" 2>&1 | grep -q 'not found'; then
	die "openvpn has unresolved libraries: $(ldd "$openvpn_bin" | grep 'not found' | tr '\n' ' ')"
fi
if ldd "$agent_bin" 2>&1 | grep -q 'not found'; then
	die "the agent has unresolved libraries"
fi

# The key: the recipe (this script, mkcpio.py, rootfs/) and every input file.
key=$( {
	cat "$0" "$here/mkcpio.py"
	(cd "$here/rootfs" && find . -type f | LC_ALL=C sort | xargs sha256sum)
	for f in "$init_bin" "$agent_bin" "$openvpn_bin"; do sha256sum <"$f"; done
	for l in $libs; do echo "$l $(sha256sum <"$l")"; done
} | sha256sum | cut -c1-16)
if [ "$mode" = key ]; then
	echo "$key"
	exit 0
fi

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
		strip --strip-unneeded -R .comment "$root$2" 2>/dev/null ||
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
kernel_dir=$(sh "$top/guest/kernel/build.sh" --print-path 2>/dev/null || true)
{
	echo "root $root_size"
	echo "initramfs.cpio.gz $initrd_size"
	echo "rootfs.tar.gz $tar_size"
	if [ -n "$kernel_dir" ]; then
		echo "bzImage $(stat -c %s "$kernel_dir/bzImage")"
	fi
} >"$tmp/SIZES"
log "guest root $root_size bytes, initramfs.cpio.gz $initrd_size, rootfs.tar.gz $tar_size"
if [ -n "$kernel_dir" ]; then
	total=$(($(stat -c %s "$kernel_dir/bzImage") + initrd_size))
	log "bzImage + initramfs = $total bytes (budget $budget)"
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
