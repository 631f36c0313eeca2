#!/bin/sh
# windows-package.sh [BUILD_WIN [OUTDIR]] - the self-contained Windows package: a zip a user
# unpacks anywhere, or an application's installer takes apart (`make windows-package`).
#
# Theory of operation
#   The layout is Meson's: `meson install --destdir` of the mingw-w64 cross build BUILD_WIN
#   (stripped) into a staging directory, whose install prefix becomes the package's top
#   folder microvm-<version>-windows-x86_64/ (the version is the Meson project's):
#     bin/microvm.exe, include/microvm/*.h, lib/libmicrovm.a, lib/pkgconfig/microvm.pc,
#     share/man/..., share/doc/microvm/LICENSE, README.txt (docs/README-windows.txt.in);
#   then what only the package holds:
#     - libuv and cJSON, which libmicrovm.a needs (its microvm.pc requires them): their
#       static library, headers, .pc file and licence, file by file, from where the cross
#       build's pkg-config found each (BUILD_WIN/windows-deps.txt, written by meson.build;
#       scripts/build-win-deps.sh built them from Debian's source packages);
#     - the guest image's rootfs.tar.gz (guest/image/build.sh --print-path, x86_64), put
#       into bin/ next to microvm.exe, where the WSL2 backend looks for it (src/wsl/wsl.c);
#     - the licences of what is not microvm's: share/doc/PACKAGE/copyright of every Debian
#       package with files in the rootfs (guest/image/packages.sh) and of
#       mingw-w64-x86-64-dev (winpthreads and the MinGW-w64 runtime, linked statically
#       into microvm.exe), and SOURCES.txt: the Debian source package and version each
#       of them came from, with the written offer of their source (the usual one of the
#       GPL-2's section 3(b): for three years, from whoever distributes the package) and
#       how to get it from Debian meanwhile.
#   Then:
#     - every lib/pkgconfig/*.pc gets prefix=${pcfiledir}/../.. (relocatable: the folder can
#       be anywhere; pkg-config with PKG_CONFIG_LIBDIR=<folder>/lib/pkgconfig just works),
#       and none may name a directory of this machine;
#     - every .exe and .dll in the package may import only Windows' own DLLs (objdump -p):
#       the cross build links libgcc, winpthreads, libuv and cJSON statically, and a DLL
#       of theirs imported here would be missing on the user's machine.  objdump must
#       succeed and list kernel32.dll (every program imports it), or the check would pass
#       on output it did not understand;
#     - python3's zipfile writes OUTDIR/microvm-<version>-windows-x86_64.zip (Debian's
#       python3, no zip program needed).
#   The staging directory is OUTDIR/package/ (OUTDIR is BUILD_WIN unless given; emptied
#   first).  The zip of an earlier run is removed as soon as its name is known (the
#   version, from BUILD_WIN), before any other check: a run that fails leaves no zip
#   behind.  Nothing goes into git, and nothing is written outside OUTDIR.
#   It takes a few seconds (the rootfs is the bulk: it is stored as it is, already gzip).
#
#   stdout: the zip's path as the last line.
#   Environment: OBJDUMP (default x86_64-w64-mingw32-objdump).
set -eu

build=${1:-build-win}
outdir=${2:-$build}
top=$(cd "$(dirname "$0")/.." && pwd)
objdump=${OBJDUMP:-x86_64-w64-mingw32-objdump}
die() {
	echo "windows-package: $*" >&2
	exit 1
}

[ -f "$build/build.ninja" ] || die "no cross build in $build (make windows-package sets it up)"
build=$(cd "$build" && pwd)
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
# the Meson project's version and install prefix
info=$(meson introspect --projectinfo --buildoptions "$build" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["projectinfo"]["version"])
print(next(o["value"] for o in d["buildoptions"] if o["name"] == "prefix"))')
version=$(echo "$info" | sed -n 1p)
prefix=$(echo "$info" | sed -n 2p)
name=microvm-$version-windows-x86_64
stage=$outdir/package
zip=$outdir/$name.zip

# no zip of an earlier run stays behind if this one fails
rm -rf "$stage" "$zip" "$zip.tmp"
deps=$build/windows-deps.txt
[ -f "$deps" ] || die "no $deps (meson.build writes it in a Windows build)"
command -v "$objdump" >/dev/null || die "$objdump missing (scripts/install-deps.sh windows)"
image=$(sh "$top/guest/image/build.sh" --print-path 2>/dev/null) ||
	die "no guest image for this build: run \`make image\` first"
[ -f "$image/rootfs.tar.gz" ] || die "$image/rootfs.tar.gz missing"

mkdir -p "$stage"
meson install -C "$build" --no-rebuild --strip --quiet --destdir "$stage/destdir" >/dev/null
[ -d "$stage/destdir$prefix" ] || die "meson install wrote nothing under $prefix"
mv "$stage/destdir$prefix" "$stage/$name"
rm -rf "$stage/destdir"
pkg=$stage/$name
[ -f "$pkg/bin/microvm.exe" ] || die "meson install did not install bin/microvm.exe"
install -m 0644 "$image/rootfs.tar.gz" "$pkg/bin/rootfs.tar.gz"

# dep NAME - a value of windows-deps.txt
dep() {
	v=$(sed -n "s|^$1=||p" "$deps")
	[ -n "$v" ] || die "$deps has no $1"
	echo "$v"
}
# put FILE DEST - FILE into the package as DEST
put() {
	[ -f "$1" ] || die "$1 missing"
	install -D -m 0644 "$1" "$pkg/$2"
}
uv_lib=$(dep uv_libdir)
uv_inc=$(dep uv_includedir)
cjson_lib=$(dep cjson_libdir)
cjson_inc=$(dep cjson_includedir)
put "$uv_lib/libuv.a" lib/libuv.a
put "$(dep uv_pcfile)" lib/pkgconfig/libuv.pc
put "$uv_inc/uv.h" include/uv.h
for h in "$uv_inc"/uv/*.h; do
	put "$h" "include/uv/${h##*/}"
done
put "$uv_lib/../share/doc/libuv/LICENSE" share/doc/libuv/LICENSE
put "$cjson_lib/libcjson.a" lib/libcjson.a
put "$(dep cjson_pcfile)" lib/pkgconfig/libcjson.pc
put "$cjson_inc/cjson/cJSON.h" include/cjson/cJSON.h
put "$cjson_lib/../share/doc/cjson/LICENSE" share/doc/cjson/LICENSE
# their .pc files name this machine's directories: ${prefix}-relative, as microvm.pc
for pc in libuv libcjson; do
	# shellcheck disable=SC2016 # ${prefix} is pkg-config's, written as it is
	sed -i -e '1i prefix=' -e '/^prefix=/d' -e 's|^libdir=.*|libdir=${prefix}/lib|' \
		-e 's|^includedir=.*|includedir=${prefix}/include|' "$pkg/lib/pkgconfig/$pc.pc"
done

for pc in "$pkg"/lib/pkgconfig/*.pc; do
	# shellcheck disable=SC2016 # ${pcfiledir} is pkg-config's, written as it is
	sed -i 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$pc"
	grep -q '^prefix=' "$pc" || die "${pc#"$pkg"/} has no prefix="
	! grep -Eq '(^|[=[:space:]])/' "$pc" || die "${pc#"$pkg"/} names a directory of this machine"
done

# The licences of the parts that are not microvm's, and where their source is: in the
# rootfs, every Debian package with files there; in microvm.exe and beside libmicrovm.a,
# libuv and cJSON (Debian's source packages, built by build-win-deps.sh, which names their
# versions in VERSIONS in their prefix) and winpthreads with the MinGW-w64 runtime
# (mingw-w64-x86-64-dev), linked in statically.
sh "$top/guest/image/packages.sh" "$image" >"$stage/rootfs-packages" ||
	die "the Debian packages of the rootfs are not known (guest/image/packages.sh)"
while read -r bin _; do
	put "/usr/share/doc/$bin/copyright" "share/doc/$bin/copyright"
done <"$stage/rootfs-packages"
put /usr/share/doc/mingw-w64-x86-64-dev/copyright share/doc/mingw-w64-x86-64-dev/copyright
mingw=$(dpkg-query -W -f '${source:Version}' mingw-w64-x86-64-dev) ||
	die "mingw-w64-x86-64-dev is not installed (scripts/install-deps.sh windows)"
# srcver NAME - the version of source package NAME that build-win-deps.sh built
srcver() {
	v=$(sed -n "s/^$1 //p" "$uv_lib/../VERSIONS")
	[ -n "$v" ] || die "$uv_lib/../VERSIONS does not name $1 (scripts/build-win-deps.sh)"
	echo "$v"
}
uv_src=$(srcver libuv1)
cjson_src=$(srcver cjson)
row() { printf '  %-20s %-26s %s\n' "$@"; }
{
	cat <<EOF
microvm $version for Windows: where the source of each part is

microvm itself (bin\microvm.exe, lib\libmicrovm.a, and the agent and init in
bin\rootfs.tar.gz) is under the MIT licence (share\doc\microvm\LICENSE); its source is
microvm's source tree at version $version.

Every other part was built by Debian, or here from Debian's source packages, and is
named below with the Debian source package and version it was built from; that source
package is its complete corresponding source.  Some of these parts are under the GNU
GPL or LGPL.  The licence of each is in share\doc\PACKAGE\copyright (PACKAGE: the
binary package).

Written offer of the source code
  For at least three years from the date you received this package, whoever distributed
  it to you will give you, or any third party, on request a complete machine-readable
  copy of the corresponding source code of every part named below (the Debian source
  package NAME at version VERSION, as listed), on a medium customarily used for software
  interchange, for a charge no more than the cost of physically performing the
  distribution, under the terms of that part's licence.  Ask the distributor of this
  package for it.

  Meanwhile, you can get it from Debian yourself: on Debian, with a deb-src entry in
  APT's sources, \`apt-get source NAME=VERSION\` fetches source package NAME at VERSION
  from the Debian archive; versions the archive no longer carries are kept in Debian's
  snapshot archive.

Linked into bin\microvm.exe (and into a program built with lib\libmicrovm.a):
EOF
	row "source package" version "what"
	row libuv1 "$uv_src" "libuv (MIT: share\doc\libuv\LICENSE)"
	row cjson "$cjson_src" "cJSON (MIT: share\doc\cjson\LICENSE)"
	row mingw-w64 "$mingw" "winpthreads and the MinGW-w64 runtime (mingw-w64-x86-64-dev)"
	printf '\nIn bin\\rootfs.tar.gz (the appliance'"'"'s Linux system):\n'
	row "binary package" version "source package and version"
	while read -r bin bver src sver; do
		row "$bin" "$bver" "$src $sver"
	done <"$stage/rootfs-packages"
} >"$pkg/SOURCES.txt"
rm -f "$stage/rootfs-packages"

# Windows' own DLLs (and the API sets): what a program in the package may import
allowed=' advapi32.dll bcrypt.dll crypt32.dll dbghelp.dll gdi32.dll iphlpapi.dll
	kernel32.dll msvcrt.dll ntdll.dll ole32.dll oleaut32.dll psapi.dll secur32.dll
	shell32.dll shlwapi.dll user32.dll userenv.dll version.dll ws2_32.dll '
find "$pkg" -type f \( -iname '*.exe' -o -iname '*.dll' \) >"$stage/programs"
[ -s "$stage/programs" ] || die "no program in the package"
bad=
while IFS= read -r f; do
	rel=${f#"$pkg"/}
	out=$("$objdump" -p "$f" 2>"$stage/objdump.err") ||
		die "$objdump -p $rel failed: $(head -c 300 "$stage/objdump.err")"
	dlls=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr '[:upper:]' '[:lower:]')
	case " $(echo "$dlls" | tr '\n' ' ') " in
	*" kernel32.dll "*) ;;
	*) die "$objdump -p $rel lists no kernel32.dll among its imports: output not understood" ;;
	esac
	for dll in $dlls; do
		case $dll in
		api-ms-win-*) continue ;;
		esac
		case $allowed in
		*[[:space:]]"$dll"[[:space:]]*) ;;
		*) bad="$bad $rel:$dll" ;;
		esac
	done
done <"$stage/programs"
rm -f "$stage/programs" "$stage/objdump.err"
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
