#!/usr/bin/python3
"""mkcpio.py - pack a directory into a reproducible cpio "newc" archive (initramfs).

Usage: mkcpio.py ROOT [--node PATH:c|b:MAJOR:MINOR:MODE]... > archive.cpio

The archive depends only on the names, contents, modes and symlink targets under ROOT:
entries are sorted by name, owners are 0:0, every mtime is 0 (or $SOURCE_DATE_EPOCH),
inode numbers are assigned in order, hard links are stored as separate files. --node adds
a device node that the build user could not create on disk (dev/console, which the kernel
opens for init before devtmpfs is mounted). GNU cpio cannot do the last two without root.
"""
import os
import stat
import sys


def header(ino, mode, nlink, mtime, size, rdev, name):
    """Return a newc header plus the NUL-terminated, 4-byte padded name."""
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, nlink, mtime, size, 0, 0,
              os.major(rdev), os.minor(rdev), len(encoded), 0]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields) + encoded
    return hdr + b"\0" * (-len(hdr) % 4)


def entries(root):
    """Yield (name, lstat) for everything under root, sorted, parents first."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            out.append((os.path.relpath(full, root), full))
    for rel, full in sorted(out):
        yield rel, full, os.lstat(full)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        return 2
    root = argv[1]
    nodes = []
    args = argv[2:]
    while args:
        if args[0] != "--node" or len(args) < 2:
            sys.stderr.write("mkcpio.py: bad arguments %r\n" % args)
            return 2
        path, kind, major, minor, mode = args[1].split(":")
        fmt = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
        nodes.append((path, fmt | int(mode, 8), os.makedev(int(major), int(minor))))
        args = args[2:]
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    out = sys.stdout.buffer
    written = 0
    ino = 1

    def emit(data):
        nonlocal written
        out.write(data)
        written += len(data)

    items = list(entries(root))
    names = {rel for rel, _, _ in items}
    for path, mode, rdev in nodes:
        if path in names:
            sys.stderr.write("mkcpio.py: %s exists in %s\n" % (path, root))
            return 1
    merged = [(rel, full, st, None) for rel, full, st in items]
    merged += [(path, None, None, (mode, rdev)) for path, mode, rdev in nodes]
    merged.sort(key=lambda e: e[0])
    for rel, full, st, node in merged:
        if node:
            emit(header(ino, node[0], 1, mtime, 0, node[1], rel))
        elif stat.S_ISDIR(st.st_mode):
            emit(header(ino, st.st_mode, 2, mtime, 0, 0, rel))
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(full).encode()
            emit(header(ino, st.st_mode, 1, mtime, len(target), 0, rel))
            emit(target + b"\0" * (-len(target) % 4))
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                data = f.read()
            emit(header(ino, st.st_mode, 1, mtime, len(data), 0, rel))
            emit(data + b"\0" * (-len(data) % 4))
        else:
            sys.stderr.write("mkcpio.py: unsupported file type: %s\n" % full)
            return 1
        ino += 1
    emit(header(0, 0, 1, 0, 0, 0, "TRAILER!!!"))
    # pad to a 512-byte block like cpio(1) does
    emit(b"\0" * (-written % 512))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
