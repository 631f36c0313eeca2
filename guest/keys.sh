#!/bin/sh
# guest/keys.sh - record which guest kernel and image this build goes with (run by ninja).
#
# Usage: guest/keys.sh OUTPUT BUILD_DIR [ARCH]
#
# Theory of operation
#   `microvm up` / `microvm run` without --kernel/--initrd take the guest kernel and image of
#   the build cache (src/runtime/guest_files.c). The cache is shared by every source tree and
#   build on the machine, so "the newest entry" may be another tree's, or one built before the
#   guest's sources changed. This script writes the cache keys that `make kernel` and `make
#   image` would use for this source tree and this build's init and agent:
#       kernel <key>      (guest/kernel/build.sh --print-key)
#       image <key>       (guest/image/build.sh --print-key, with MICROVM_BUILD=BUILD_DIR)
#   into OUTPUT (BUILD_DIR/guest/guest-keys), which the runtime reads. ARCH (x86_64, the
#   default, or arm64) is the architecture the build is for: an arm64 build (native or the
#   cross build-arm64) goes with the arm64 kernel and image. A key that cannot be
#   computed (no kernel source installed, no OpenVPN) is left out: the runtime then treats
#   every cache entry as not known to match. OUTPUT is rewritten only when it changes, so a
#   build with nothing new relinks nothing. Never fails the build.
set -u
out=$1
build=$2
arch=${3:-x86_64}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$out.tmp.$$
{
	k=$(sh "$here/kernel/build.sh" --arch "$arch" --print-key 2>/dev/null) && echo "kernel $k"
	i=$(MICROVM_BUILD=$build MICROVM_BUILD_ARM64=$build \
		sh "$here/image/build.sh" --arch "$arch" --print-key 2>/dev/null) && echo "image $i"
} >"$tmp"
if cmp -s "$tmp" "$out"; then
	rm -f "$tmp"
else
	mv "$tmp" "$out"
fi
exit 0
