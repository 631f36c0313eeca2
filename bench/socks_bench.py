#!/usr/bin/python3
"""socks_bench.py - throughput and connection-setup latency through a SOCKS5 proxy or direct.

Client side only; socks.sh sets up the places.  Modes:
  serve-source PORT        a TCP server that sends --mib MiB of zeros to each client
  serve-echo PORT          a TCP echo server
  throughput HOST PORT [--socks ADDR:PORT]   MiB/s receiving --mib MiB, median of --runs
  latency HOST PORT [--socks ADDR:PORT]      median us of connect + SOCKS CONNECT + 1-byte
                                             echo round trip, over --count connections
Prints one number (the median) on stdout.
"""
import argparse
import socket
import statistics
import struct
import sys
import threading
import time

CHUNK = 1 << 20


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise ConnectionError("EOF")
        buf += c
    return buf


def dial(host, port, socks):
    if not socks:
        return socket.create_connection((host, port))
    addr, sport = socks.rsplit(":", 1)
    s = socket.create_connection((addr, int(sport)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # greeting, then the request: two round trips, like curl (microsocks needs them apart)
    s.sendall(b"\x05\x01\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        raise ConnectionError("SOCKS method refused")
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", port))
    if recv_exact(s, 10)[1] != 0:
        raise ConnectionError("SOCKS refused")
    return s


def serve(port, handler, bind="127.0.0.1"):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((bind, port))
    ls.listen(1024)
    print("ready", flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def source(mib):
    zeros = bytes(CHUNK)

    def handler(c):
        try:
            for _ in range(mib):
                c.sendall(zeros)
        finally:
            c.close()
    return handler


def echo(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while d := c.recv(65536):
            c.sendall(d)
    finally:
        c.close()


def throughput(a):
    rates = []
    buf = bytearray(CHUNK)
    for _ in range(a.runs):
        start = time.perf_counter()
        s = dial(a.host, a.port, a.socks)
        got = 0
        while n := s.recv_into(buf):
            got += n
        s.close()
        if got != a.mib * CHUNK:
            sys.exit(f"short transfer: {got} bytes")
        rates.append(a.mib / (time.perf_counter() - start))
    return statistics.median(rates)


def latency(a):
    times = []
    for _ in range(a.count):
        start = time.perf_counter()
        s = dial(a.host, a.port, a.socks)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        recv_exact(s, 1)
        times.append((time.perf_counter() - start) * 1e6)
        s.close()
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("host_or_port")
    p.add_argument("port", nargs="?", type=int)
    p.add_argument("--socks")
    p.add_argument("--mib", type=int, default=512)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--bind", default="127.0.0.1")
    a = p.parse_args()
    if a.mode == "serve-source":
        serve(int(a.host_or_port), source(a.mib), a.bind)
    elif a.mode == "serve-echo":
        serve(int(a.host_or_port), echo, a.bind)
    a.host = a.host_or_port
    print(f"{throughput(a) if a.mode == 'throughput' else latency(a):.1f}")


if __name__ == "__main__":
    main()
