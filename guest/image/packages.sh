#!/bin/sh
# guest/image/packages.sh IMAGE_DIR - the Debian packages whose files an x86_64 guest image
# holds, for licences and source offers (scripts/windows-package.sh ships their copyright
# files and names their source packages).
#
# Theory of operation
#   build.sh copies OpenVPN and the shared-library closure of OpenVPN, init and the agent
#   (ldd) from this machine into the image, and writes IMAGE_DIR/MANIFEST (path, mode,
#   sha256 of every file).  Each regular file of the MANIFEST is looked up here:
#     - the image's own files (init, usr/bin/microvm-agent: this project's, MIT; etc/ from
#       guest/image/rootfs/) are skipped;
#     - every other file must be owned by an installed Debian package (dpkg-query -S, under
#       its usrmerged path or the /lib, /lib64, /bin, /sbin one the package may list) and
#       be that package's file byte for byte (the MANIFEST's sha256 is the installed file's,
#       so the installed version is the one in the image): a file that is not fails, since
#       its licence and version would be unknown.
#   The image's key hashes every copied file, so an image build.sh --print-path finds for
#   this machine passes; an arm64 image (its files are not this machine's) does not.
#
#   stdout, one line per package, sorted:
#     BINARY_PACKAGE VERSION SOURCE_PACKAGE SOURCE_VERSION
#   (BINARY_PACKAGE without its :arch; /usr/share/doc/BINARY_PACKAGE/copyright is its
#   licence).  Exit 1, naming the file, if a file has no package or differs from it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: packages.sh IMAGE_DIR" >&2; exit 2; }
manifest=$1/MANIFEST
die() {
	echo "image packages: $*" >&2
	exit 1
}
[ -f "$manifest" ] || die "no $manifest (guest/image/build.sh writes it)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "path mode sha256" lines of the regular files that are not the image's own
while read -r path mode sum; do
	case $mode in -\>) continue ;; esac         # a symlink: "path -> target"
	case $path in
	init | usr/bin/microvm-agent) continue ;;
	etc/*) [ -f "$here/rootfs/$path" ] && continue ;;
	esac
	echo "$path $sum"
done <"$manifest" >"$tmp/files"
[ -s "$tmp/files" ] || die "$manifest lists no Debian file"

# every name a package may have registered the file under: /usr/X and /X
while read -r path _; do
	echo "/$path"
	case $path in usr/lib/* | usr/lib64/* | usr/bin/* | usr/sbin/*) echo "/${path#usr/}" ;; esac
done <"$tmp/files" >"$tmp/names"
# "pkg[:arch][, pkg...]: /path" (paths no package has are reported on stderr: dropped)
tr '\n' '\0' <"$tmp/names" | xargs -0 dpkg-query -S 2>/dev/null |
	grep -v '^diversion by ' >"$tmp/owners" || true

while read -r path sum; do
	pkgs=
	for name in "/$path" "/${path#usr/}"; do
		pkgs=$(awk -v p="$name" '{ i = index($0, ": /") }
			i && substr($0, i + 2) == p { s = substr($0, 1, i - 1); gsub(/, /, " ", s); print s; exit }' \
			"$tmp/owners")
		[ -z "$pkgs" ] || break
	done
	[ -n "$pkgs" ] || die "/$path in the image: no installed Debian package owns it"
	if [ ! -f "$name" ] || [ "$(sha256sum <"$name" | cut -d' ' -f1)" != "$sum" ]; then
		die "/$path in the image differs from $name here (rebuild the image: make image)"
	fi
	for p in $pkgs; do echo "$p"; done
done <"$tmp/files" >"$tmp/owned"
# (no pipe after the loop: a die in it must end the script, not a subshell whose status
# a pipeline would drop; and dpkg-query -W without a name lists every installed package)
LC_ALL=C sort -u "$tmp/owned" >"$tmp/pkgs"
[ -s "$tmp/pkgs" ] || die "no Debian package owns a file of $manifest"

# shellcheck disable=SC2046 # one package name per word
dpkg-query -W -f '${binary:Package} ${Version} ${source:Package} ${source:Version}\n' \
	$(cat "$tmp/pkgs") >"$tmp/versions" ||
	die "dpkg-query -W failed on $(tr '\n' ' ' <"$tmp/pkgs")"
sed 's/^\([^ :]*\):[^ ]*/\1/' "$tmp/versions" | LC_ALL=C sort -u
