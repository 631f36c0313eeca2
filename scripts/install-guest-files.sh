#!/bin/sh
# install-guest-files.sh - `meson install` step: put the guest kernel and image, when they
# have been built, into $datadir/microvm/, where the runtime looks for them last
# (src/runtime/guest_files.c).
#
# Usage (from meson.add_install_script): install-guest-files.sh DATADIR
#
# Takes what `make kernel` and `make image` left in the build cache
# (${MICROVM_CACHE:-$HOME/.cache/microvm}/kernel/<key>/vmlinux and
# image/<key>/{initramfs.cpio.gz,rootfs.tar.gz}): the entry this build goes with (the keys
# guest/keys.sh recorded in $MESON_BUILD_ROOT/guest/guest-keys), as the runtime does, else the
# newest of each, saying that it may be stale.
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
	key=$(sed -n "s/^$kind \([0-9a-f]\{16\}\)\$/\1/p" \
		"${MESON_BUILD_ROOT:-/nonexistent}/guest/guest-keys" 2>/dev/null || true)
	src=
	if [ -n "$key" ] && [ -f "$cache/$kind/$key/$name" ]; then
		src=$cache/$kind/$key/$name
	else
		src=$(newest "$cache/$kind/*/$name")
		if [ -n "$src" ] && [ -f "$src" ]; then
			echo "install-guest-files: note: $name of this build not built (make $kind):" \
				"installing the newest cached one, $src, which may be stale"
		fi
	fi
	if [ -z "$src" ] || [ ! -f "$src" ]; then
		echo "install-guest-files: no $name built (make $kind): not installed"
		continue
	fi
	mkdir -p "$dest"
	install -m 0644 "$src" "$dest/$name"
	echo "install-guest-files: $dest/$name"
done
