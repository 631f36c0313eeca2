#!/bin/sh
# install-win-deps.sh - `meson install` step of the Windows cross build: install libuv and
# cJSON (the libraries libmicrovm.a needs, built by scripts/build-win-deps.sh) beside it, so
# that the installed prefix links on its own.
#
# Usage (from meson.add_install_script, Windows builds only):
#   install-win-deps.sh DEPS_PREFIX PREFIX
#
# Theory of operation
#   libmicrovm for Windows is a static library, and its microvm.pc says `Requires: libuv,
#   libcjson`: an application links libuv.a and libcjson.a too, and pkg-config must find
#   libuv.pc and libcjson.pc.  Debian has no mingw-w64 build of either, so they come from
#   the prefix build-win-deps.sh made (DEPS_PREFIX, the cache directory the cross build's
#   pkg-config points at), which holds exactly those two packages: its lib/, include/ and
#   share/ (their licences) are copied as they are into the install prefix
#   ($MESON_INSTALL_DESTDIR_PREFIX), and in the pkg-config files every mention of DEPS_PREFIX
#   becomes ${prefix}, with prefix=PREFIX (the install prefix) as for Meson's own microvm.pc.
#   scripts/windows-package.sh then makes all of them relocatable.
set -eu

[ $# -eq 2 ] || { echo "usage: install-win-deps.sh DEPS_PREFIX PREFIX" >&2; exit 2; }
src=$1
prefix=$2
dest=${MESON_INSTALL_DESTDIR_PREFIX:?run by meson install}
if [ ! -f "$src/lib/pkgconfig/libuv.pc" ] || [ ! -f "$src/lib/pkgconfig/libcjson.pc" ]; then
	echo "install-win-deps: no libuv.pc/libcjson.pc in $src" >&2
	exit 1
fi

for d in lib include share; do
	[ -d "$src/$d" ] || continue
	mkdir -p "$dest/$d"
	cp -R "$src/$d/." "$dest/$d/"
done
for pc in "$dest"/lib/pkgconfig/libuv.pc "$dest"/lib/pkgconfig/libcjson.pc; do
	# drop a prefix= line of its own, then name the install prefix first
	sed -i -e '/^prefix=/d' -e "s|$src|\${prefix}|g" "$pc"
	sed -i "1i prefix=$prefix" "$pc"
done
echo "install-win-deps: libuv and cJSON from $src"
