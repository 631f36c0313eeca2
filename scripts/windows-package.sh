#!/bin/sh
# windows-package.sh BUILD_WIN - the self-contained Windows package: a zip a user unpacks
# anywhere, or an application's installer takes apart (`make windows-package`).
#
# Theory of operation
#   The layout is Meson's: `meson install --destdir` of the mingw-w64 cross build BUILD_WIN
#   (stripped) into a staging directory, whose install prefix becomes the package's top
#   folder microvm-<version>-windows-x86_64/ (the version is the Meson project's):
#     bin/microvm.exe, include/microvm/*.h, lib/libmicrovm.a, lib/pkgconfig/microvm.pc,
#     share/man/..., README.txt (docs/README-windows.txt.in), and libuv and cJSON with their
#     .pc files and licences (scripts/install-win-deps.sh: libmicrovm.a needs them);
#   plus the guest image's rootfs.tar.gz (guest/image/build.sh --print-path, x86_64), put
#   into bin/ next to microvm.exe, where the WSL2 backend looks for it (src/wsl/wsl.c).
#   Then:
#     - every lib/pkgconfig/*.pc gets prefix=${pcfiledir}/../.. (relocatable: the folder can
#       be anywhere; pkg-config with PKG_CONFIG_LIBDIR=<folder>/lib/pkgconfig just works);
#     - every .exe and .dll in the package may import only Windows' own DLLs (objdump -p):
#       the cross build links libgcc, winpthreads, libuv and cJSON statically, and a DLL
#       of theirs imported here would be missing on the user's machine;
#     - python3's zipfile writes BUILD_WIN/microvm-<version>-windows-x86_64.zip (Debian's
#       python3, no zip program needed).
#   The staging directory is BUILD_WIN/package/ (emptied first, and the zip of an earlier
#   run removed); nothing goes into git.
#   It takes a few seconds (the rootfs is the bulk: it is stored as it is, already gzip).
#
#   stdout: the zip's path as the last line.
set -eu

build=${1:-build-win}
top=$(cd "$(dirname "$0")/.." && pwd)
objdump=${OBJDUMP:-x86_64-w64-mingw32-objdump}
die() {
	echo "windows-package: $*" >&2
	exit 1
}

[ -f "$build/build.ninja" ] || die "no cross build in $build (make windows-package sets it up)"
build=$(cd "$build" && pwd)
command -v "$objdump" >/dev/null || die "$objdump missing (scripts/install-deps.sh windows)"
image=$(sh "$top/guest/image/build.sh" --print-path 2>/dev/null) ||
	die "no guest image for this build: run \`make image\` first"
[ -f "$image/rootfs.tar.gz" ] || die "$image/rootfs.tar.gz missing"

# the Meson project's version and install prefix
info=$(meson introspect --projectinfo --buildoptions "$build" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["projectinfo"]["version"])
print(next(o["value"] for o in d["buildoptions"] if o["name"] == "prefix"))')
version=$(echo "$info" | sed -n 1p)
prefix=$(echo "$info" | sed -n 2p)
name=microvm-$version-windows-x86_64
stage=$build/package
zip=$build/$name.zip

# no zip of an earlier run stays behind if this one fails
rm -rf "$stage" "$zip"
mkdir -p "$stage"
meson install -C "$build" --no-rebuild --strip --quiet --destdir "$stage/destdir" >/dev/null
[ -d "$stage/destdir$prefix" ] || die "meson install wrote nothing under $prefix"
mv "$stage/destdir$prefix" "$stage/$name"
rm -rf "$stage/destdir"
pkg=$stage/$name
[ -f "$pkg/bin/microvm.exe" ] || die "meson install did not install bin/microvm.exe"
install -m 0644 "$image/rootfs.tar.gz" "$pkg/bin/rootfs.tar.gz"

for pc in "$pkg"/lib/pkgconfig/*.pc; do
	# shellcheck disable=SC2016 # ${pcfiledir} is pkg-config's, written as it is
	sed -i 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$pc"
done

# Windows' own DLLs (and the API sets): what a program in the package may import
allowed=' advapi32.dll bcrypt.dll crypt32.dll dbghelp.dll gdi32.dll iphlpapi.dll
	kernel32.dll msvcrt.dll ntdll.dll ole32.dll oleaut32.dll psapi.dll secur32.dll
	shell32.dll shlwapi.dll user32.dll userenv.dll version.dll ws2_32.dll '
bad=$(find "$pkg" -type f \( -iname '*.exe' -o -iname '*.dll' \) | while IFS= read -r f; do
	"$objdump" -p "$f" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr '[:upper:]' '[:lower:]' |
		while IFS= read -r dll; do
			case $dll in
			api-ms-win-*) continue ;;
			esac
			case $allowed in
			*[[:space:]]"$dll"[[:space:]]*) ;;
			*) printf ' %s:%s' "${f#"$pkg"/}" "$dll" ;;
			esac
		done
done)
[ -z "$bad" ] || die "imports a DLL that is not Windows' own:$bad"

# deflated, but the gzip'd rootfs stored as it is; the top folder the only entry at the root
/usr/bin/python3 - "$stage" "$name" "$zip" <<'EOF' || die "writing $zip failed"
import os, sys, zipfile
stage, name, out = sys.argv[1:]
with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
    for d, dirs, files in os.walk(os.path.join(stage, name)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            z.write(p, os.path.relpath(p, stage),
                    zipfile.ZIP_STORED if f.endswith(".gz") else zipfile.ZIP_DEFLATED)
os.rename(out + ".tmp", out)
EOF
echo "windows-package: $(du -h "$zip" | cut -f1) $zip" >&2
echo "$zip"
