#!/usr/bin/python3
"""nsbox_tcp.py - TCP throughput from a namespace box through libslirp versus host loopback.

Usage: nsbox_tcp.py NSBOX_RUN ROOTFS SIZE_MIB RUNS

For each run a receiver on 127.0.0.1 (an ephemeral port) reads exactly SIZE MiB, timed from
accept to the last byte.  The sender is busybox (dd | nc) either on the host to 127.0.0.1 or
in a box (nsbox-run --net-host-loopback) to 10.0.2.2, which slirp then turns into a
connection to the host's 127.0.0.1.  Prints the best MiB/s of RUNS runs for each path.
"""
import socket
import subprocess
import sys
import time


def once(sender_argv, size_mib):
    total = size_mib << 20
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(60)
    port = srv.getsockname()[1]
    argv = [a.replace("PORT", str(port)) for a in sender_argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        conn, _ = srv.accept()
        conn.settimeout(60)
        t0 = time.monotonic()
        buf = bytearray(1 << 20)
        got = 0
        while got < total:
            n = conn.recv_into(buf)
            if not n:
                break
            got += n
        dt = time.monotonic() - t0
        conn.close()
    finally:
        srv.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if got != total:
        raise SystemExit(f"transfer cut short: {got} of {total} bytes")
    return got / dt / (1 << 20)


def main():
    run, rootfs, size, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    count = size * 16  # 64 KiB blocks
    send = f"busybox dd if=/dev/zero bs=65536 count={count} 2>/dev/null | busybox nc {{}} PORT"
    paths = {
        "loopback": ["/bin/sh", "-c", send.format("127.0.0.1")],
        "slirp": [run, "--net-host-loopback", rootfs, "/bin/sh", "-c", send.format("10.0.2.2")],
    }
    for name, argv in paths.items():
        best = max(once(argv, size) for _ in range(runs))
        print(f"{name} {best:.0f}", flush=True)


if __name__ == "__main__":
    main()
