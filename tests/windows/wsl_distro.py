#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""wsl_distro.py - the Linux half of fake_wsl.exe (tests/windows/fake_wsl.c).

Under Wine a Windows program can start a Linux program, but Wine does not hand that
program the Windows pipes it was given as stdin/stdout (it gets Wine's own descriptors).
So fake_wsl.exe listens on 127.0.0.1, starts this helper with the port and a one-time
token, and the helper connects back: the connection carries the program's stdin (from
wsl.exe's stdin) and its stdout+stderr (to wsl.exe's stdout).  When the program has
exited the helper writes its exit status to STATUS (then closes the connection), and
fake_wsl.exe exits with it, as wsl.exe does.

    wsl_distro.py PORT TOKEN STATUS import TAR ROOT      unpack a distro's tarball
    wsl_distro.py PORT TOKEN STATUS remove ROOT          delete an unregistered distro
    wsl_distro.py PORT TOKEN STATUS terminate PIDDIR     kill what runs in a distro
    wsl_distro.py PORT TOKEN STATUS run ROOT DRIVE_C PIDDIR UID PROG [ARG...]

run is what WSL does for `wsl.exe -d NAME ...`: PROG (a path inside the distro: the
user's login shell for `--`, the program itself for `--exec`) runs with ROOT as its root
directory, in a mount namespace of its own with /proc, /dev, a tmpfs /run and /tmp, and
the Windows drive C: (DRIVE_C, Wine's drive_c) at /mnt/c, as user UID.  A PROG missing
in the distro fails like WSL's init does ("execvpe PROG failed 2", status 1).

The distro has a network namespace of its own (loopback only); with FAKE_WSL_NETNS=PATH
(a network namespace, /run/netns/NAME, that the test made) its programs run in that one
instead: the WSL VM's network, where a veth to a server namespace stands for WSL2's NAT.
WSL's localhost forwarding is emulated either way: a TCP port the distro listens on at 127.0.0.1, 0.0.0.0, ::1 or ::
(seen in /proc/PID/net/tcp{,6}) gets a listener on 127.0.0.1 on the Windows side (the
test's namespace) relaying into the distro; ports bound to any other address stay
unreachable, as on Windows.  Needs root.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading

# what a distro's processes see: WSL's mounts (the rootfs has the empty mount points)
SETUP = r'''
root=$1 drive=$2 uid=$3
shift 3
mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" &&
mount -t tmpfs -o mode=755 tmpfs "$root/run" && mkdir -p "$root/mnt/c" "$root/tmp" &&
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp" && mount --bind "$drive" "$root/mnt/c" &&
ip link set lo up || { echo "wsl_distro: cannot set up the distro" >&2; exit 1; }
exec chroot --userspec="$uid:$uid" "$root" "$@"
'''


CLONE_NEWNET = 0x40000000
# a listener on these is forwarded (hex as in /proc/net/tcp{,6})
FORWARDED = {"0100007F", "00000000", "00000000000000000000000001000000",
             "00000000000000000000000000000000"}


class Forwarder:
    """WSL's localhost forwarding for the distro whose first process is @pid."""

    def __init__(self, pid):
        self.pid = pid
        self.ports = set()
        self.listeners = []
        self.done = threading.Event()
        self.active = 0     # relays still carrying the distro's bytes to Windows
        self.idle = threading.Condition()
        self.libc = ctypes.CDLL(None, use_errno=True)
        threading.Thread(target=self.watch, daemon=True).start()

    def listening(self):
        """The forwardable ports the distro listens on now."""
        ports = set()
        for name in ("tcp", "tcp6"):
            try:
                with open("/proc/%d/net/%s" % (self.pid, name)) as f:
                    lines = f.readlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                addr, port = fields[1].split(":")
                if fields[3] == "0A" and addr in FORWARDED:
                    ports.add(int(port, 16))
        return ports

    def watch(self):
        own = os.readlink("/proc/self/ns/net")
        # unshare(1) makes the namespace right after the fork: wait until it has
        while not self.done.is_set():
            try:
                if os.readlink("/proc/%d/ns/net" % self.pid) != own:
                    break
            except OSError:
                return
            self.done.wait(0.02)
        try:
            self.nsfd = os.open("/proc/%d/ns/net" % self.pid, os.O_RDONLY)
        except OSError:
            return
        while not self.done.is_set():
            for port in self.listening() - self.ports:
                self.ports.add(port)
                try:
                    ls = socket.socket()
                    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    ls.bind(("127.0.0.1", port))
                    ls.listen(64)
                except OSError:
                    continue    # taken on the Windows side: WSL cannot forward it either
                self.listeners.append(ls)
                threading.Thread(target=self.accept, args=(ls, port), daemon=True).start()
            self.done.wait(0.05)

    def accept(self, ls, port):
        while True:
            try:
                outer, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(outer, port), daemon=True).start()

    def relay(self, outer, port):
        # this thread enters the distro's network namespace to connect there
        if self.libc.setns(self.nsfd, CLONE_NEWNET) != 0:
            outer.close()
            return
        try:
            inner = socket.create_connection(("127.0.0.1", port), timeout=5)
            inner.settimeout(None)
        except OSError:
            outer.close()
            return
        with self.idle:
            self.active += 1
        threading.Thread(target=self.to_windows, args=(inner, outer), daemon=True).start()
        pipe(outer, inner)

    def to_windows(self, inner, outer):
        pipe(inner, outer)
        with self.idle:
            self.active -= 1
            self.idle.notify_all()

    def stop(self):
        self.done.set()
        for ls in self.listeners:
            try:
                ls.shutdown(socket.SHUT_RDWR)   # wakes the thread in accept()
            except OSError:
                pass
            ls.close()
        # what the distro said last (the answer to "shutdown") still reaches Windows
        with self.idle:
            self.idle.wait_for(lambda: self.active == 0, timeout=5)


def pipe(src, dst):
    """Copy @src to @dst until EOF, then pass the EOF on."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def run(conn, args):
    """Run PROG in the distro, its stdio relayed over @conn; return its exit status."""
    root, drive_c, piddir, uid, prog = args[:5]
    if not os.path.exists(os.path.join(root, prog.lstrip("/"))):
        conn.sendall(b"<3>WSL (%d) ERROR: CreateProcessEntryCommon:505: execvpe %s failed 2\n"
                     b"<3>WSL (%d) ERROR: CreateProcessEntryCommon:508: Create process not "
                     b"expected to return\n" % (os.getpid(), prog.encode(), os.getpid()))
        return 1
    netns = os.environ.get("FAKE_WSL_NETNS")
    enter = ["nsenter", "--net=" + netns] if netns else []
    cmd = enter + ["unshare", "--mount"] + ([] if netns else ["--net"]) + [
        "--propagation", "private", "--", "/bin/sh", "-c", SETUP, "sh", root, drive_c,
        uid] + args[4:]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    forwarder = Forwarder(proc.pid)
    os.makedirs(piddir, exist_ok=True)
    pidfile = os.path.join(piddir, str(proc.pid))
    open(pidfile, "w").close()

    def pump_in():
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                proc.stdin.write(data)
                proc.stdin.flush()
        except OSError:
            pass
        try:
            proc.stdin.close()
        except OSError:
            pass

    threading.Thread(target=pump_in, daemon=True).start()
    while True:
        data = proc.stdout.read1(65536)
        if not data:
            break
        try:
            conn.sendall(data)
        except OSError:
            pass
    status = proc.wait()
    forwarder.stop()
    try:
        os.unlink(pidfile)
    except OSError:
        pass
    return status if status >= 0 else 128 - status


def terminate(piddir):
    """Kill every process started in the distro (wsl --terminate)."""
    if not os.path.isdir(piddir):
        return 0
    for name in os.listdir(piddir):
        try:
            os.kill(int(name), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    return 0


def main():
    port, token, status_path, mode = sys.argv[1:5]
    args = sys.argv[5:]
    conn = socket.create_connection(("127.0.0.1", int(port)))
    conn.sendall(token.encode() + b"\n")
    status = 1
    try:
        if mode == "import":
            os.makedirs(args[1], exist_ok=True)
            status = subprocess.run(["tar", "-xzf", args[0], "-C", args[1]], stdout=conn,
                                    stderr=conn, check=False).returncode
        elif mode == "remove":
            shutil.rmtree(args[0], ignore_errors=True)
            status = 0
        elif mode == "terminate":
            status = terminate(args[0])
        elif mode == "run":
            status = run(conn, args)
    finally:
        with open(status_path + ".tmp", "w") as f:
            f.write("%d\n" % status)
        os.rename(status_path + ".tmp", status_path)
        conn.close()


if __name__ == "__main__":
    main()
