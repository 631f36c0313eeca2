#!/bin/sh
# install-guest-files.sh - `meson install` step: put the guest kernel and image, when they
# have been built, into $datadir/microvm/, where the runtime looks for them last
# (src/runtime/guest_files.c).
#
# Usage (from meson.add_install_script): install-guest-files.sh DATADIR
#
# Takes what `make kernel` and `make image` left in the build cache
# (${MICROVM_CACHE:-$HOME/.cache/microvm}/kernel/<key>/vmlinux and
# image/<key>/{initramfs.cpio.gz,rootfs.tar.gz}), the newest of each as the runtime does.
# Nothing is built here: what is missing is named, and the install goes on without it.
set -eu

datadir=$1
case $datadir in
/*) dest="${DESTDIR:-}$datadir/microvm" ;;
*) dest="$MESON_INSTALL_DESTDIR_PREFIX/$datadir/microvm" ;;
esac
cache=${MICROVM_CACHE:-${HOME:-/nonexistent}/.cache/microvm}

# newest PATTERN - the most recent file matching PATTERN, or nothing
newest() {
	# shellcheck disable=SC2086
	ls -t $1 2>/dev/null | head -n 1
}

for spec in kernel/vmlinux image/initramfs.cpio.gz image/rootfs.tar.gz; do
	kind=${spec%%/*}
	name=${spec#*/}
	src=$(newest "$cache/$kind/*/$name")
	if [ -z "$src" ] || [ ! -f "$src" ]; then
		echo "install-guest-files: no $name built (make $kind): not installed"
		continue
	fi
	mkdir -p "$dest"
	install -m 0644 "$src" "$dest/$name"
	echo "install-guest-files: $dest/$name"
done
