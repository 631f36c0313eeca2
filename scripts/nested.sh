#!/bin/sh
# scripts/nested.sh - run a command on a real KVM: inside a QEMU TCG machine with nested SVM
# (x86_64) or with EL2 (arm64).
#
# Usage: scripts/nested.sh [--arch x86_64|arm64] [--mem MiB] [--timeout SEC] [--in DIR]
#                          [--out DIR] [--] COMMAND
#        scripts/nested.sh [--arch A] --fetch-kernel   (only fetch/cache the L1 kernel, print its dir)
#        scripts/nested.sh --arch arm64 --root         (only build/cache L1's arm64 root, print it)
#
# Theory of operation
#   Where /dev/kvm is missing or PVM-backed (guest user space cannot run there), a real KVM is
#   still reachable: QEMU's TCG emulates AMD SVM with nested paging, so a stock Debian kernel
#   booted under `qemu-system-x86_64 -accel tcg -cpu EPYC,+svm,+npt` loads kvm_amd, and our VMM
#   runs inside that machine ("L1") with its guest ("L2") on real KVM. Slow (L1 is emulated),
#   but every KVM exit, device and guest instruction path is the real one.
#
#   L1 kernel: the package linux-image-amd64 depends on (`apt-cache depends`), fetched with
#   `apt-get download <exact name>=<version>` and unpacked with dpkg-deb into
#       ${MICROVM_CACHE:-$HOME/.cache/microvm}/l1-kernel/<package>_<version>-r<recipe>/
#   (vmlinuz plus the few modules below), once; a lock serialises concurrent fetches.
#
#   L1 root: a small initramfs (busybox-static and those modules) whose /init loads virtio-pci,
#   9p, overlayfs, tun, veth, dummy, vhost-vsock (for QEMU in bench/boot-nested.sh) and KVM
#   (irqbypass, ccp, kvm, kvm-amd), mounts this machine's
#   whole root read-only over 9p with a tmpfs overlay on top (so every tool and the build tree
#   are there, at the same paths, and nothing written in L1 reaches this machine), mounts fresh
#   proc/sys/dev, tmpfs on /tmp and /run (with the tree, build, cache and current directory
#   bound over them, read-only, when they live there, e.g. a clone under /tmp), and a second,
#   writable 9p share (the run directory) at /run/nested, then chroots and runs COMMAND with
#   `sh -c` in the current directory, with the MICROVM_* variables, PATH and HOME of the
#   caller. L1 has no network card: loopback and the namespaces a test makes are all there
#   is.
#
#   --arch arm64: the same, emulating an arm64 machine with EL2 (`qemu-system-aarch64 -M
#   virt,virtualization=on,gic-version=3 -cpu max,pauth-impdef=on`); Debian's arm64 kernel
#   (the package linux-image-arm64 depends on) has KVM built in. L1's programs must be arm64,
#   so this machine's root is not L1's root: L1 runs from an initramfs that is an arm64 root
#   made of Debian's arm64 packages (busybox-static for a shell and the tools, openvpn, curl;
#   `apt-get download` of exact versions, unpacked with dpkg-deb) plus the shared libraries
#   their ELF NEEDED entries name and those of build-arm64's microvm, copied from the arm64
#   multiarch libraries installed here (scripts/install-deps.sh nested-arm64). The archive is
#   cached under ${MICROVM_CACHE:-$HOME/.cache/microvm}/l1-root/arm64-<sha256 of its inputs>.cpio.
#   This machine's root is mounted read-only at /host, and the directories a command needs
#   (the source tree, the build directory MICROVM_BUILD - default build-arm64 -, the cache,
#   the current directory) are bound from there at their own paths, so the same absolute
#   paths work in L1.
#
#   COMMAND's stdout and stderr come back on this script's stdout and stderr, and its exit
#   status is this script's. Failures of the tier itself exit 125 with a message that says
#   what to do (QEMU missing: the command that installs it). --out DIR keeps the run directory
#   (stdout, stderr, rc, console.log, and whatever COMMAND wrote to /run/nested) in DIR.
#
#   --timeout  whole run, seconds (default 1800)
#   --stall    seconds without a sign of life from L1 after which the run counts as stalled
#              (default 120, plus 120 s for L1's boot before its first sign; see "Stalls")
#   --retries  how many times a stalled run boots L1 again (default 2)
#   --in DIR   a copy of DIR is /run/nested/in in L1 (inputs a command needs)
#   --mem      L1 memory (default 4096 MiB; arm64: 3072)
#
# Stalls: QEMU's TCG, emulating SVM for L1's KVM, has been seen to freeze L1 as a whole (a few
#   times in a hundred L2 boots, more on a loaded machine): it loses L1's timer interrupt, so L1
#   halts for good or its guest spins for good, and a check's own time limit never fires. L1's
#   init therefore writes /run/nested/heartbeat every 10 s, from a process of its own; this script
#   watches that file, and when it has not changed for --stall seconds, it first presses a key
#   through QEMU's monitor (a device interrupt makes QEMU look at L1's APIC again: docs/kvm.md)
#   and goes on if L1 speaks within 20 s. If not, it samples the vCPUs' registers through QEMU's
#   monitor and QEMU's threads from /proc into stall-N.txt (and goes on watching if L1 spoke or
#   finished meanwhile), stops QEMU, keeps that console as console-stalled-N.log, says so, and
#   boots L1 again (--retries times) with the same run directory: what the command wrote there
#   stays, and its stdout and stderr go on from where they were (after a line that marks the new
#   boot), so a command that records its steps there (l1_checks.py) resumes at the step that was
#   cut short; a command that finished before L1 froze keeps its status. A stall that repeats more
#   often fails the run; --timeout bounds all boots together. A check that hangs while L1 lives is
#   not a stall: the heartbeat goes on, and the check's own limits and --timeout apply.
#
# Environment: MICROVM_CACHE (cache root), MICROVM_QEMU (QEMU binary, default
#   qemu-system-x86_64 / qemu-system-aarch64), MICROVM_NESTED_KEEP=1 (keep the run directory,
#   print its path).
set -eu

home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache=${MICROVM_CACHE:-$home/.cache/microvm}/l1-kernel
arch=x86_64
mem=
timeout=1800
stall=120
retries=2
boot_grace=120
out=
in=
binds=
mode=run
# x86_64: order matters, each module needs the ones before it.
modules_x86_64="virt/lib/irqbypass drivers/crypto/ccp/ccp arch/x86/kvm/kvm arch/x86/kvm/kvm-amd
drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/9p/9pnet
net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p fs/overlayfs/overlay
drivers/net/tun drivers/net/veth drivers/net/dummy drivers/vhost/vhost_iotlb drivers/vhost/vhost
net/vmw_vsock/vsock net/vmw_vsock/vmw_vsock_virtio_transport_common drivers/vhost/vhost_vsock"
# arm64: KVM, virtio and virtio-mmio's bus are built in; 9p for /host and the run directory.
modules_arm64="drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci_modern_dev
drivers/virtio/virtio_pci net/9p/9pnet net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache
fs/9p/9p drivers/net/tun drivers/net/veth drivers/net/dummy"
# Bump when a list above changes (the cache keeps only these modules).
recipe=2
# The arm64 root: Debian packages whose programs L1 runs (their libraries come by ELF NEEDED).
root_pkgs_arm64="busybox-static openvpn curl"
# Bump when how the root is made changes (the file name also hashes every input).
root_recipe=1

die() {
	echo "nested: error: $*" >&2
	exit 125
}
log() { echo "nested: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--arch) arch=${2:?--arch needs x86_64 or arm64}; shift ;;
	--mem) mem=${2:?--mem needs MiB}; shift ;;
	--timeout) timeout=${2:?--timeout needs seconds}; shift ;;
	--stall) stall=${2:?--stall needs seconds}; shift ;;
	--retries) retries=${2:?--retries needs a number}; shift ;;
	--out) out=${2:?--out needs a directory}; shift ;;
	--in) in=${2:?--in needs a directory}; shift ;;
	--fetch-kernel) mode=fetch ;;
	--root) mode=root ;;
	-h | --help)
		sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	--) shift; break ;;
	-*) die "unknown option '$1' (try --help)" ;;
	*) break ;;
	esac
	shift
done
[ "$mode" != run ] || [ $# -gt 0 ] || die "no command given (try --help)"

# Per architecture: the kernel package, modules, QEMU and its machine, L1's console.
case $arch in
x86_64 | amd64)
	arch=x86_64
	kmeta=linux-image-amd64
	modules=$modules_x86_64
	qemu=${MICROVM_QEMU:-qemu-system-x86_64}
	qemu_pkg="qemu-system-x86"
	qemu_machine="-machine q35,accel=tcg -cpu EPYC,+svm,+npt -smp 1"
	console=ttyS0
	regs='^(RIP|RAX|RSI|CR0|EFER|GS )'
	resolved=resolved
	: "${mem:=4096}"
	;;
arm64 | aarch64)
	arch=arm64
	kmeta=linux-image-arm64:arm64
	modules=$modules_arm64
	qemu=${MICROVM_QEMU:-qemu-system-aarch64}
	qemu_pkg="qemu-system-arm"
	# pauth-impdef: QEMU's own pointer-authentication algorithm, ~3x faster under TCG
	qemu_machine="-M virt,virtualization=on,gic-version=3 -accel tcg -cpu max,pauth-impdef=on -smp 2"
	console=ttyAMA0
	regs='^( ?PC=|X0[0-3]=|PSTATE=)'
	resolved="resolved-arm64"
	: "${mem:=3072}"
	;;
*) die "unknown --arch '$arch' (x86_64 or arm64)" ;;
esac
[ "$mode" != root ] || [ "$arch" = arm64 ] || die "--root is for --arch arm64 (x86_64 uses this machine's root)"

# --- the L1 kernel --------------------------------------------------------------------------

# l1_pkg: the exact kernel package $kmeta depends on (arm64: with its :arm64 suffix).
l1_pkg() {
	apt-cache depends "$kmeta" 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

fetch_kernel() {
	# apt-cache takes seconds: remember its answer until the package lists change
	stamp=$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo none)
	if [ -r "$cache/$resolved" ] && read -r s d <"$cache/$resolved" && [ "$s" = "$stamp" ] &&
		[ -s "$d/vmlinuz" ]; then
		echo "$d"
		return
	fi
	pkg=$(l1_pkg)
	if [ -z "$pkg" ]; then
		log "apt does not know $kmeta yet: apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		pkg=$(l1_pkg)
	fi
	[ -n "$pkg" ] || die "cannot tell which kernel package $kmeta depends on"
	ver=$(apt-cache show --no-all-versions "$pkg" | awk '/^Version:/ { print $2; exit }')
	[ -n "$ver" ] || die "apt-cache knows no version of $pkg"
	dir=$cache/${pkg%:*}_$ver-r$recipe
	if [ -s "$dir/vmlinuz" ]; then
		echo "$stamp $dir" >"$cache/$resolved"
		echo "$dir"
		return
	fi
	mkdir -p "$cache"
	exec 8>"$cache/.lock"
	flock 8
	if [ ! -s "$dir/vmlinuz" ]; then
		tmp=$cache/.tmp-$$
		rm -rf "$tmp"
		mkdir -p "$tmp/x"
		log "fetching $pkg=$ver (Debian's stock kernel for the nested machine)"
		(cd "$tmp" && apt-get download -q "$pkg=$ver" >&2 2>/dev/null) ||
			(cd "$tmp" && apt-get download "$pkg=$ver" >&2) ||
			die "apt-get download $pkg=$ver failed"
		dpkg-deb -x "$tmp/${pkg%:*}_"*.deb "$tmp/x" || die "cannot unpack $pkg"
		rel=${pkg%:*}
		rel=${rel#linux-image-}
		mkdir -p "$tmp/out/modules"
		cp "$tmp/x/boot/vmlinuz-$rel" "$tmp/out/vmlinuz"
		for m in $modules; do
			f=$tmp/x/lib/modules/$rel/kernel/$m.ko
			[ -e "$f" ] || die "$pkg has no module $m"
			cp "$f" "$tmp/out/modules/"
		done
		echo "$rel" >"$tmp/out/release"
		rm -rf "$dir"
		mv "$tmp/out" "$dir"
		rm -rf "$tmp"
	fi
	exec 8>&-
	echo "$stamp $dir" >"$cache/$resolved"
	echo "$dir"
}

# --- the arm64 root ---------------------------------------------------------------------------

# deb_fetch PKG: the path of PKG's arm64 .deb (the candidate version), downloaded once into
# the cache (its file name carries the version).
deb_fetch() {
	v=$(apt-cache show --no-all-versions "$1:arm64" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
	[ -n "$v" ] || die "apt knows no arm64 package $1: dpkg --add-architecture arm64 && apt-get update"
	d=$rcache/debs
	f=$d/${1}_$(echo "$v" | sed 's/:/%3a/')_arm64.deb
	if [ ! -s "$f" ]; then
		mkdir -p "$d"
		(cd "$d" && apt-get download -q "$1:arm64=$v" >&2 2>/dev/null) ||
			(cd "$d" && apt-get download "$1:arm64=$v" >&2) ||
			die "apt-get download $1:arm64=$v failed"
	fi
	[ -s "$f" ] || die "apt-get download $1:arm64=$v left no $f"
	echo "$f"
}

# elf_needed FILE: the sonames FILE's dynamic section names (nothing for static or non-ELF).
elf_needed() {
	LC_ALL=C readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'
}

# lib_find SONAME ROOT: where SONAME is, in ROOT or this machine's arm64 multiarch directories.
lib_find() {
	for d in "$2/lib/aarch64-linux-gnu" "$2/usr/lib/aarch64-linux-gnu" /lib/aarch64-linux-gnu \
		/usr/lib/aarch64-linux-gnu /lib; do
		[ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}

# add_libs ROOT FILE...: copy into ROOT every shared library the files need, recursively.
add_libs() {
	r=$1
	shift
	todo=$(for f in "$@"; do elf_needed "$f"; done | sort -u)
	while [ -n "$todo" ]; do
		next=
		for so in $todo; do
			case $so in
			ld-linux-aarch64.so.1) dst=$r/lib/$so ;;
			*) dst=$r/usr/lib/aarch64-linux-gnu/$so ;;
			esac
			[ -e "$dst" ] && continue
			src=$(lib_find "$so" "$r") || die "arm64 library $so not found: install the" \
				"arm64 package that has it ('sh scripts/install-deps.sh nested-arm64')"
			[ "$src" = "$dst" ] || cp -L "$src" "$dst"
			next="$next $(elf_needed "$dst")"
		done
		todo=$(echo "$next" | tr ' ' '\n' | sed '/^$/d' | sort -u)
	done
}

# qemu_user PROGRAM ARGS: run an arm64 program here (busybox --list while making the root).
qemu_user() {
	command -v qemu-aarch64 >/dev/null 2>&1 ||
		die "qemu-aarch64 not found: install it with 'apt-get install qemu-user' (or 'make deps')"
	qemu-aarch64 "$@"
}

# root_debs: the .debs of $root_pkgs_arm64 (apt-cache takes seconds: its answer is kept until
# the package lists change)
root_debs() {
	stamp=$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo none)
	if [ -r "$rcache/resolved" ] && read -r s l <"$rcache/resolved" && [ "$s" = "$stamp" ] &&
		[ "$(cat "$rcache/resolved.pkgs" 2>/dev/null)" = "$root_pkgs_arm64" ]; then
		ok=1
		for f in $l; do [ -s "$f" ] || ok=; done
		[ -n "$ok" ] && { echo "$l"; return; }
	fi
	l=
	for p in $root_pkgs_arm64; do l="$l $(deb_fetch "$p")"; done
	echo "$stamp $l" >"$rcache/resolved"
	echo "$root_pkgs_arm64" >"$rcache/resolved.pkgs"
	echo "$l"
}

# arm64_root: the path of L1's arm64 root (a newc cpio), built once per content: its name
# hashes the recipe, the .debs, the versions of the arm64 libraries installed here (where
# add_libs copies from) and the libraries our programs need.
arm64_root() {
	rcache=${MICROVM_CACHE:-$home/.cache/microvm}/l1-root
	mkdir -p "$rcache"
	exec 7>"$rcache/.lock"
	flock 7
	debs=$(root_debs)
	for b in $arm64_programs; do
		[ -x "$b" ] || die "$b is missing: build it with 'make arm64'"
	done
	key=$({
		echo "recipe $root_recipe"
		for f in $debs; do basename "$f"; done
		dpkg-query -W -f '${Package}:${Architecture}=${Version}\n' | grep ':arm64=' | LC_ALL=C sort
		# shellcheck disable=SC2086 # a word list
		for b in $arm64_programs; do elf_needed "$b"; done | LC_ALL=C sort -u
	} | sha256sum | cut -c1-16)
	cpio=$rcache/arm64-$key.cpio
	if [ -s "$cpio" ]; then
		exec 7>&-
		echo "$cpio"
		return
	fi
	log "making L1's arm64 root ($root_pkgs_arm64 and their libraries)"
	tmp=$rcache/.tmp-$$
	rm -rf "$tmp"
	mkdir -p "$tmp/r/bin" "$tmp/r/lib" "$tmp/r/usr/lib/aarch64-linux-gnu" "$tmp/r/etc"
	for f in $debs; do dpkg-deb -x "$f" "$tmp/r" || die "cannot unpack $f"; done
	# busybox provides every command the packages do not (sh, mount, ip, httpd, ...)
	for a in $(qemu_user "$tmp/r/bin/busybox" --list); do
		[ -e "$tmp/r/bin/$a" ] || [ -e "$tmp/r/usr/bin/$a" ] || [ -e "$tmp/r/usr/sbin/$a" ] ||
			ln -s busybox "$tmp/r/bin/$a"
	done
	rm -rf "$tmp/r/usr/share/doc" "$tmp/r/usr/share/man" "$tmp/r/usr/share/locale"
	# shellcheck disable=SC2046,SC2086 # word lists
	add_libs "$tmp/r" $(find "$tmp/r" -type f -perm -u+x) $arm64_programs
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
		>"$tmp/r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/r/etc/group"
	echo "127.0.0.1 localhost" >"$tmp/r/etc/hosts"
	(cd "$tmp/r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp/root.cpio"
	mv "$tmp/root.cpio" "$cpio"
	rm -rf "$tmp"
	exec 7>&-
	echo "$cpio"
}

# --- the L1 initramfs -----------------------------------------------------------------------

# write_init FILE: L1's /init (busybox sh). The command runs as /run/nested/cmd in the chroot:
# x86_64: this machine's root (9p) under a tmpfs overlay; arm64: a copy of the initramfs (the
# arm64 root) on a tmpfs, with this machine's root at /host and $binds bound from there.
write_init() {
	{
		echo '#!/bin/busybox sh'
		echo 'export PATH=/bin'
		echo 'mount -t proc proc /proc; mount -t sysfs sys /sys'
		echo 'mount -t devtmpfs dev /dev'
		for m in $modules; do echo "insmod /lib/modules/$(basename "$m").ko || echo 'nested: insmod $m failed'"; done
		echo "arch=$arch"
		echo "binds='$binds'"
		cat <<'EOF'
fail() { echo "nested: L1: $*"; poweroff -f; }
[ -c /dev/kvm ] || fail "no /dev/kvm (KVM did not initialise: see the kernel's messages)"
mkdir -p /host /out /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 host /host || fail "9p host"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out || fail "9p out"
if [ "$arch" = x86_64 ]; then
	mkdir -p /ov
	mount -t tmpfs -o mode=0755 ov /ov
	mkdir -p /ov/upper /ov/work
	mount -t overlay -o lowerdir=/host,upperdir=/ov/upper,workdir=/ov/work overlay /newroot ||
		fail "overlay"
else
	mount -t tmpfs -o mode=0755 root /newroot
	cp -a /bin /etc /lib /usr /newroot/
	mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run /newroot/host \
		/newroot/root /newroot/var/tmp
	mount --move /host /newroot/host
	for b in $binds; do
		mkdir -p "/newroot$b"
		mount --bind "/newroot/host$b" "/newroot$b" || fail "bind $b"
	done
fi
echo "nested: L1 ready after $(cut -d' ' -f1 /proc/uptime) s"
# A sign of life for scripts/nested.sh, which stops a frozen L1 ("Stalls" there): started
# while /dev is still here (busybox opens /dev/null for a background job); it writes into the
# run directory once that is mounted at /newroot/run/nested below.
( while :; do echo alive >/newroot/run/nested/heartbeat; sleep 10; done ) \
	</dev/null >/dev/null 2>&1 &
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs shm /newroot/dev/shm
mount -t tmpfs -o mode=1777 tmp /newroot/tmp
mount -t tmpfs -o mode=0755 run /newroot/run
# what lives under /tmp or /run on this machine (a tree cloned there) is bound over L1's own
if [ "$arch" = x86_64 ]; then src=/host; else src=/newroot/host; fi
for b in $binds; do
	case $b in
	/tmp/* | /run/*)
		mkdir -p "/newroot$b"
		mount --bind "$src$b" "/newroot$b" || fail "bind $b"
		;;
	esac
done
mkdir -p /newroot/run/nested
mount --move /out /newroot/run/nested
# the first sign of life now (the writer above may have written into the tmpfs before)
echo alive >/newroot/run/nested/heartbeat
hostname nested-l1
chroot /newroot /bin/sh -c 'ip link set lo up 2>/dev/null; cd /; sh /run/nested/cmd \
	>>/run/nested/stdout 2>>/run/nested/stderr </dev/null; echo $? >/run/nested/rc'
sync
poweroff -f
EOF
	} >"$1"
}

# make_initramfs DIR KERNELDIR: DIR/l1.cpio. arm64: the cached root's archive followed by this
# one (the kernel unpacks concatenated archives in order).
make_initramfs() {
	r=$1/root
	mkdir -p "$r/bin" "$r/lib/modules" "$r/proc" "$r/sys" "$r/dev"
	if [ "$arch" = x86_64 ]; then
		cp /bin/busybox "$r/bin/busybox"
		for a in sh mount insmod mkdir cut poweroff chroot hostname sync cat echo sleep; do
			ln -s busybox "$r/bin/$a"
		done
	fi
	cp "$2"/modules/*.ko "$r/lib/modules/"
	write_init "$r/init"
	chmod 755 "$r/init"
	{
		[ "$arch" = x86_64 ] || cat "$root"
		(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
	} >"$1/l1.cpio"
}

# --- run --------------------------------------------------------------------------------------

top=$(cd "$(dirname "$0")/.." && pwd)
[ "$mode" != run ] || command -v "$qemu" >/dev/null 2>&1 ||
	die "$qemu not found: install it with 'apt-get install $qemu_pkg' (or 'make deps')"
if [ "$arch" = arm64 ]; then
	build=${MICROVM_BUILD:-$top/build-arm64}
else
	build=${MICROVM_BUILD:-$top/build}
fi
# what L1 binds from /host at the same paths: the tree, the build, the cache, the cwd (a path
# below another one listed comes with it). arm64 binds them all into its own root; x86_64 sees
# them through the overlay, except those under /tmp or /run, which L1's own tmpfs would hide
# (a tree cloned under /tmp): those are bound there too, on both.
binds=
for p in $(printf '%s\n' "$top" "$build" "${MICROVM_CACHE:-$home/.cache/microvm}" "$(pwd)" |
	sed 's,/*$,,; /^$/d' | LC_ALL=C sort -u); do
	case " $binds " in *" $p "*) continue ;; esac
	under=
	for q in $binds; do case $p in "$q"/*) under=1 ;; esac; done
	[ -n "$under" ] || binds="$binds $p"
done
if [ "$arch" = arm64 ]; then
	arm64_programs="$build/src/cli/microvm"
	mkdir -p "${MICROVM_CACHE:-$home/.cache/microvm}"
	root=$(arm64_root)
	if [ "$mode" = root ]; then
		echo "$root"
		exit 0
	fi
fi

if [ "$arch" = x86_64 ] && ! { [ -x /bin/busybox ] && /bin/busybox --list | grep -qx insmod &&
	ldd /bin/busybox 2>&1 | grep -q "not a dynamic"; }; then
	die "/bin/busybox (static) not found: install it with 'apt-get install busybox-static' (or 'make deps')"
fi

kdir=$(fetch_kernel)
if [ "$mode" = fetch ]; then
	echo "$kdir"
	exit 0
fi

run=$(mktemp -d /tmp/microvm-nested.XXXXXX)
chmod 755 "$run"
keep=${MICROVM_NESTED_KEEP:-0}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	# a QEMU still running (this script interrupted) goes with it
	[ -z "${qpid:-}" ] || kill "$qpid" 2>/dev/null || true
	if [ -n "$out" ]; then
		mkdir -p "$out"
		cp -a "$run/share/." "$out/" 2>/dev/null || true
	fi
	if [ "$keep" = 1 ]; then
		log "run directory kept: $run"
	else
		rm -rf "$run"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$run/share"
if [ -n "$in" ]; then
	cp -a "$in" "$run/share/in" || die "cannot copy $in"
fi
make_initramfs "$run" "$kdir"

# The command, with the caller's directory and environment (MICROVM_*, PATH, HOME).
{
	env | grep -E '^(MICROVM_[A-Z0-9_]*|PATH|HOME|LANG|PYTHONPATH)=' | grep -v '^MICROVM_NESTED' |
		while IFS='=' read -r k v; do
			printf "export %s='%s'\n" "$k" "$(printf '%s' "$v" | sed "s/'/'\\\\''/g")"
		done
	echo "export MICROVM_NESTED_L1=1"
	printf "cd '%s' || exit 125\n" "$(pwd | sed "s/'/'\\\\''/g")"
	printf '%s\n' "$*"
} >"$run/share/cmd"

# monitor CMD: send one command to QEMU's human monitor (the socket of this boot); its reply
# (socat keeps the connection a second after the command, for a slow main loop to answer).
monitor() {
	if ! command -v socat >/dev/null 2>&1; then
		echo "(socat not installed: no samples from QEMU's monitor; scripts/install-deps.sh test)"
		return
	fi
	{ printf '%s\n' "$1"; sleep 1; } | timeout 8 socat -t 3 - "unix-connect:$run/monitor.sock" 2>&1 |
		tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' | grep -v '^(qemu)\|^QEMU .* monitor'
}

# stall_report N: what QEMU was doing when L1 went silent, into stall-N.txt of the run
# directory: every vCPU's registers (from QEMU's monitor) five times a second apart (a PC that
# never moves, or one in L2's kernel - its addresses have no KASLR - tells where it spins), x86's
# local APIC (an interrupt held in IRR with nothing raised for it was the cause once:
# docs/kvm.md), and, from /proc, the state and CPU time of each QEMU thread (named by
# debug-threads: the vCPU threads are "CPU n/TCG").
stall_report() {
	f=$run/share/stall-$1.txt
	{
		echo "L1 silent since $(date -u -d "@$beat" +%T) UTC, stopped at $(date -u +%T) UTC"
		for i in 1 2 3 4 5; do
			monitor "info registers -a" | grep -E "$regs"
			sleep 1
		done
		[ "$arch" != x86_64 ] || monitor "info lapic" | head -n 20
		qemu_pid=$(pgrep -P "$qpid" | head -n 1)
		echo "QEMU's threads (name: state, user and system CPU time in clock ticks):"
		for t in "/proc/${qemu_pid:-none}"/task/*; do
			[ -r "$t/stat" ] || continue
			printf '%s: %s\n' "$(cat "$t/comm")" "$(sed 's/.*) //' "$t/stat" | cut -d' ' -f1,12,13)"
		done
	} >"$f" 2>&1
}

# wake_l1: a silent L1 is most often one whose timer interrupt QEMU lost (docs/kvm.md: held
# in its local APIC, no request raised, so L1 halts or its guest spins for good). Any device
# interrupt makes QEMU look at the APIC again: press a key (the i8042's IRQ 1) through the
# monitor and wait up to 20 s for the heartbeat. Succeeds (0) when L1 spoke again.
wake_l1() {
	[ "$arch" = x86_64 ] || return 1
	monitor "sendkey shift" >/dev/null
	i=0
	while [ "$i" -lt 10 ] && kill -0 "$qpid" 2>/dev/null; do
		sleep 2
		if [ "$(stat -c %Y "$run/share/heartbeat" 2>/dev/null || echo 0)" -gt "$beat" ]; then
			log "L1 was silent for $((now - beat)) s and woke on a key press (QEMU had lost" \
				"an interrupt); going on"
			return 0
		fi
		i=$((i + 1))
	done
	return 1
}

# run_l1: boot L1 once and run the command (QEMU in the background, watched for stalls);
# sets qrc (QEMU's status, 124 on --timeout), stalled (1 when stopped as stalled) and gap (the
# longest silence of L1's heartbeat once it began, seconds).
run_l1() {
	stalled=0
	left=$((timeout - ($(date +%s) - start)))
	[ "$left" -gt 0 ] || { qrc=124; return; }
	rm -f "$run/monitor.sock"
	set +e
	# shellcheck disable=SC2086 # $qemu_machine is a list of arguments
	timeout --kill-after=10 "$left" "$qemu" $qemu_machine -name nested-l1,debug-threads=on \
		-m "$mem" -nographic -no-reboot -nodefaults -serial stdio -nic none \
		-monitor "unix:$run/monitor.sock,server=on,wait=off" \
		-kernel "$kdir/vmlinuz" -initrd "$run/l1.cpio" \
		-append "console=$console quiet panic=-1 rdinit=/init" \
		-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
		-virtfs "local,path=$run/share,mount_tag=out,security_model=none,multidevs=remap" \
		</dev/null >"$run/share/console.log" 2>&1 &
	qpid=$!
	boot=$(date +%s)
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 5
		now=$(date +%s)
		# until L1's first heartbeat, its boot gets $boot_grace seconds more (a loaded
		# machine boots L1 slowly)
		beat=$(stat -c %Y "$run/share/heartbeat" 2>/dev/null || echo 0)
		limit=$stall
		if [ "$beat" -lt "$boot" ]; then
			beat=$boot
			limit=$((stall + boot_grace))
		else
			[ $((now - beat)) -le "$gap" ] || gap=$((now - beat))
		fi
		if [ $((now - beat)) -gt "$limit" ] && kill -0 "$qpid" 2>/dev/null && ! wake_l1; then
			stall_report $((attempt + 1))
			# the report takes seconds: a machine that finished or spoke meanwhile lives on
			if ! kill -0 "$qpid" 2>/dev/null ||
				[ "$(stat -c %Y "$run/share/heartbeat" 2>/dev/null || echo 0)" -gt "$beat" ]; then
				rm -f "$run/share/stall-$((attempt + 1)).txt"
				continue
			fi
			stalled=1
			# QEMU (a child of timeout) first, then timeout itself; KILL, since a frozen
			# machine has nothing to save
			pkill -KILL -P "$qpid" 2>/dev/null
			kill -KILL "$qpid" 2>/dev/null
			break
		fi
	done
	wait "$qpid" 2>/dev/null
	qrc=$?
	set -e
}

start=$(date +%s)
attempt=0
gap=0
while :; do
	run_l1
	[ "$stalled" -eq 1 ] || break
	# the command finished before L1 froze (in its sync or poweroff): that is its result
	[ ! -s "$run/share/rc" ] || break
	attempt=$((attempt + 1))
	cp "$run/share/console.log" "$run/share/console-stalled-$attempt.log"
	log "L1 gave no sign of life for $limit s (QEMU TCG stalled; its console is in" \
		"console-stalled-$attempt.log, what QEMU did in stall-$attempt.txt of the run directory)"
	[ "$attempt" -le "$retries" ] ||
		die "the nested machine stalled $attempt times (no sign of life from L1 for $limit s the last time);" \
			"its console: $(tail -n 5 "$run/share/console.log" | tr '\n' ' ')"
	log "booting L1 again (retry $attempt of $retries); the command finds what it wrote"
	# the new boot keeps what the command wrote (a command that records its steps resumes);
	# only this boot's own files go
	rm -f "$run/share/rc" "$run/share/heartbeat" "$run/share/console.log"
	for o in stdout stderr; do
		[ ! -s "$run/share/$o" ] || printf '\n[nested: L1 booted again after a stall]\n' >>"$run/share/$o"
	done
done
elapsed=$(($(date +%s) - start))
[ -s "$run/share/stdout" ] && cat "$run/share/stdout"
[ -s "$run/share/stderr" ] && cat "$run/share/stderr" >&2
if [ ! -s "$run/share/rc" ]; then
	[ ! -f "$run/share/console.log" ] || tail -n 30 "$run/share/console.log" >&2
	[ "$qrc" -eq 124 ] && die "the nested machine did not finish within $timeout s"
	die "the nested machine stopped before the command finished (QEMU status $qrc; its console is above)"
fi
log "L1 ran for $elapsed s ($(grep -o 'L1 ready after [0-9.]* s' "$run/share/console.log" || echo 'no ready line');" \
	"longest silence of its heartbeat $gap s)"
exit "$(cat "$run/share/rc")"
