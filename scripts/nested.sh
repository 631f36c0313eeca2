#!/bin/sh
# scripts/nested.sh - run a command on a real KVM: inside a QEMU TCG machine with nested SVM.
#
# Usage: scripts/nested.sh [--mem MiB] [--timeout SEC] [--out DIR] [--] COMMAND
#        scripts/nested.sh --fetch-kernel      (only fetch/cache the L1 kernel, print its dir)
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
#   proc/sys/dev, tmpfs on /tmp and /run, and a second, writable 9p share (the run directory)
#   at /run/nested, then chroots and runs COMMAND with `sh -c` in the current directory, with
#   the MICROVM_* variables, PATH and HOME of the caller. L1 has no network card: loopback and
#   the namespaces a test makes are all there is.
#
#   COMMAND's stdout and stderr come back on this script's stdout and stderr, and its exit
#   status is this script's. Failures of the tier itself exit 125 with a message that says
#   what to do (QEMU missing: the command that installs it). --out DIR keeps the run directory
#   (stdout, stderr, rc, console.log, and whatever COMMAND wrote to /run/nested) in DIR.
#
#   --mem     L1 memory (default 4096 MiB)     --timeout  whole run, seconds (default 1800)
#
# Environment: MICROVM_CACHE (cache root), MICROVM_QEMU (QEMU binary, default
#   qemu-system-x86_64), MICROVM_NESTED_KEEP=1 (keep the run directory, print its path).
set -eu

home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
cache=${MICROVM_CACHE:-$home/.cache/microvm}/l1-kernel
qemu=${MICROVM_QEMU:-qemu-system-x86_64}
mem=4096
timeout=1800
out=
mode=run
# Order matters: each module needs the ones before it.
modules="virt/lib/irqbypass drivers/crypto/ccp/ccp arch/x86/kvm/kvm arch/x86/kvm/kvm-amd
drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/9p/9pnet
net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p fs/overlayfs/overlay
drivers/net/tun drivers/net/veth drivers/net/dummy drivers/vhost/vhost_iotlb drivers/vhost/vhost
net/vmw_vsock/vsock net/vmw_vsock/vmw_vsock_virtio_transport_common drivers/vhost/vhost_vsock"
# Bump when the list above changes (the cache keeps only these modules).
recipe=2

die() {
	echo "nested: error: $*" >&2
	exit 125
}
log() { echo "nested: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--mem) mem=${2:?--mem needs MiB}; shift ;;
	--timeout) timeout=${2:?--timeout needs seconds}; shift ;;
	--out) out=${2:?--out needs a directory}; shift ;;
	--fetch-kernel) mode=fetch ;;
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
[ "$mode" = fetch ] || [ $# -gt 0 ] || die "no command given (try --help)"

# --- the L1 kernel --------------------------------------------------------------------------

# l1_pkg: the exact kernel package linux-image-amd64 depends on, and its version.
l1_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

fetch_kernel() {
	# apt-cache takes seconds: remember its answer until the package lists change
	stamp=$(stat -c %Y /var/lib/apt/lists 2>/dev/null || echo none)
	if [ -r "$cache/resolved" ] && read -r s d <"$cache/resolved" && [ "$s" = "$stamp" ] &&
		[ -s "$d/vmlinuz" ]; then
		echo "$d"
		return
	fi
	pkg=$(l1_pkg)
	if [ -z "$pkg" ]; then
		log "apt does not know linux-image-amd64 yet: apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		pkg=$(l1_pkg)
	fi
	[ -n "$pkg" ] || die "cannot tell which kernel package linux-image-amd64 depends on"
	ver=$(apt-cache show --no-all-versions "$pkg" | awk '/^Version:/ { print $2; exit }')
	[ -n "$ver" ] || die "apt-cache knows no version of $pkg"
	dir=$cache/${pkg}_$ver-r$recipe
	if [ -s "$dir/vmlinuz" ]; then
		echo "$stamp $dir" >"$cache/resolved"
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
		dpkg-deb -x "$tmp/${pkg}_"*.deb "$tmp/x" || die "cannot unpack $pkg"
		rel=${pkg#linux-image-}
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
	echo "$stamp $dir" >"$cache/resolved"
	echo "$dir"
}

# --- the L1 initramfs -----------------------------------------------------------------------

# write_init FILE: L1's /init (busybox sh). The command runs as /run/nested/cmd in the chroot.
write_init() {
	{
		echo '#!/bin/busybox sh'
		echo 'export PATH=/bin'
		echo 'mount -t proc proc /proc; mount -t sysfs sys /sys'
		echo 'mount -t devtmpfs dev /dev'
		for m in $modules; do echo "insmod /lib/modules/$(basename "$m").ko || echo 'nested: insmod $m failed'"; done
		cat <<'EOF'
fail() { echo "nested: L1: $*"; poweroff -f; }
[ -c /dev/kvm ] || fail "no /dev/kvm after loading kvm-amd"
mkdir -p /host /ov /out /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 host /host || fail "9p host"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out || fail "9p out"
mount -t tmpfs -o mode=0755 ov /ov
mkdir -p /ov/upper /ov/work
mount -t overlay -o lowerdir=/host,upperdir=/ov/upper,workdir=/ov/work overlay /newroot ||
	fail "overlay"
echo "nested: L1 ready after $(cut -d' ' -f1 /proc/uptime) s"
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
mount -t tmpfs shm /newroot/dev/shm
mount -t tmpfs -o mode=1777 tmp /newroot/tmp
mount -t tmpfs -o mode=0755 run /newroot/run
mkdir -p /newroot/run/nested
mount --move /out /newroot/run/nested
hostname nested-l1
chroot /newroot /bin/sh -c 'ip link set lo up 2>/dev/null; cd /; sh /run/nested/cmd \
	>/run/nested/stdout 2>/run/nested/stderr </dev/null; echo $? >/run/nested/rc'
sync
poweroff -f
EOF
	} >"$1"
}

# make_initramfs DIR KERNELDIR: DIR/l1.cpio
make_initramfs() {
	r=$1/root
	mkdir -p "$r/bin" "$r/lib/modules" "$r/proc" "$r/sys" "$r/dev"
	cp /bin/busybox "$r/bin/busybox"
	for a in sh mount insmod mkdir cut poweroff chroot hostname sync cat echo; do
		ln -s busybox "$r/bin/$a"
	done
	cp "$2"/modules/*.ko "$r/lib/modules/"
	write_init "$r/init"
	chmod 755 "$r/init"
	(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$1/l1.cpio"
}

# --- run --------------------------------------------------------------------------------------

command -v "$qemu" >/dev/null 2>&1 ||
	die "$qemu not found: install it with 'apt-get install qemu-system-x86' (or 'make deps')"
if ! { [ -x /bin/busybox ] && /bin/busybox --list | grep -qx insmod &&
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

start=$(date +%s)
set +e
timeout --kill-after=10 "$timeout" "$qemu" -machine q35,accel=tcg -cpu EPYC,+svm,+npt \
	-m "$mem" -smp 1 -nographic -no-reboot -nodefaults -serial stdio -nic none \
	-kernel "$kdir/vmlinuz" -initrd "$run/l1.cpio" \
	-append "console=ttyS0 quiet panic=-1 rdinit=/init" \
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$run/share,mount_tag=out,security_model=none,multidevs=remap" \
	</dev/null >"$run/share/console.log" 2>&1
qrc=$?
set -e
elapsed=$(($(date +%s) - start))
[ -s "$run/share/stdout" ] && cat "$run/share/stdout"
[ -s "$run/share/stderr" ] && cat "$run/share/stderr" >&2
if [ ! -s "$run/share/rc" ]; then
	tail -n 30 "$run/share/console.log" >&2
	[ $qrc -eq 124 ] && die "the nested machine did not finish within $timeout s"
	die "the nested machine stopped before the command finished (QEMU status $qrc; its console is above)"
fi
log "L1 ran for $elapsed s ($(grep -o 'L1 ready after [0-9.]* s' "$run/share/console.log" || echo 'no ready line'))"
exit "$(cat "$run/share/rc")"
