#!/bin/sh
# bench/nsbox.sh - the namespace backend's figures (docs/performance.md, section "nsbox").
#
# Theory of operation
#   1. box lifecycle: hyperfine runs `nsbox-run ROOT /bin/sh -c true` (create, start, the
#      program, exit, destroy) from a directory rootfs and from the guest image's
#      rootfs.tar.gz (unpacked into a private directory every time);
#   2. `microvm up` to agent ready: hyperfine runs `microvm up --backend nsbox --no-socks
#      --detach` (it returns once the agent answered) with `microvm down` as cleanup; needs
#      the guest image (make image);
#   3. TCP throughput through slirp: the box sends SIZE MiB to a receiver on the host's
#      loopback, reached as 10.0.2.2 (guest -> TAP -> libslirp -> host socket; nsbox-run
#      --net-host-loopback turns that mapping on, it is off by default), versus the
#      same sender (busybox nc) on the host straight to 127.0.0.1: best of RUNS runs each.
#   Only loopback and the box's own namespaces are used.
#
# Usage: bench/nsbox.sh [SIZE_MIB] [RUNS]   (defaults 256, 3).  Root, or unprivileged user
# namespaces.  Environment: MICROVM_BUILD.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${MICROVM_BUILD:-$top/build}
run=$build/bench/nsbox-run
microvm=$build/src/cli/microvm
size=${1:-256}
runs=${2:-3}
py=/usr/bin/python3

[ -x "$run" ] || { echo "bench/nsbox.sh: build first (no $run)" >&2; exit 1; }
work=$(mktemp -d /tmp/bench-nsbox-XXXXXX)
cleanup() {
	"$build/src/cli/microvm" down --control "$work/control.sock" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

root=$work/root
mkdir -p "$root/bin" "$root/etc" "$root/proc" "$root/dev" "$root/run" "$root/tmp" "$root/sys"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

echo "== box lifecycle (nsbox-run ROOT /bin/sh -c true)"
hyperfine -N --warmup 3 --runs 30 --export-markdown "$work/life.md" \
	"$run $root /bin/sh -c true"
image=$(sh "$top/guest/image/build.sh" --print-path 2>/dev/null | tail -n 1 || true)
if [ -n "$image" ] && [ -f "$image/rootfs.tar.gz" ]; then
	hyperfine -N --warmup 2 --runs 20 --export-markdown "$work/life-tgz.md" \
		"$run $image/rootfs.tar.gz /usr/bin/microvm-agent --help"
	echo "== microvm up (nsbox) to agent ready"
	ctl=$work/control.sock
	# --prepare runs before every run: the previous run's appliance goes down (and is gone)
	hyperfine --warmup 1 --runs 10 --export-markdown "$work/up.md" \
		--prepare "$microvm down --control $ctl >/dev/null 2>&1; while $microvm status --control $ctl >/dev/null 2>&1; do sleep 0.01; done" \
		"$microvm up --backend nsbox --rootfs $image/rootfs.tar.gz --no-socks --detach --control $ctl"
	"$microvm" down --control "$ctl" >/dev/null 2>&1 || true
else
	echo "(no guest image: run 'make image' for the rootfs.tar.gz and 'microvm up' figures)"
fi

echo "== TCP throughput, $size MiB, best of $runs (busybox nc sender, python receiver)"
$py "$top/bench/nsbox_tcp.py" "$run" "$root" "$size" "$runs" >"$work/tcp.out"
lo=$(sed -n 's/^loopback //p' "$work/tcp.out")
sl=$(sed -n 's/^slirp //p' "$work/tcp.out")
echo "host loopback 127.0.0.1:        $lo MiB/s"
echo "box -> slirp -> host 10.0.2.2:  $sl MiB/s"
echo
echo "--- markdown ---"
cat "$work/life.md" ${image:+"$work/life-tgz.md"} 2>/dev/null || true
[ -f "$work/up.md" ] && cat "$work/up.md"
printf '\n| TCP, %s MiB, best of %s | MiB/s |\n|---|---|\n| host loopback (busybox nc -> 127.0.0.1) | %s |\n| box through libslirp (busybox nc -> 10.0.2.2) | %s |\n' \
	"$size" "$runs" "$lo" "$sl"
