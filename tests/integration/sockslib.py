"""Helpers for the SOCKS5 / `microvm up` integration tests (test_socks*.py).

- netns(): a network namespace of the test's own, loopback up, removed afterwards with every
  process still in it.
- Appliance: `microvm up` attached to an agent inside a namespace (--agent-netns), on a free
  loopback port and a private control socket; `cli()` runs other microvm commands against it.
- socks_open(): a raw SOCKS5 client that returns the socket or the reply code.
- curl(): curl as the SOCKS5 client; vpn_state(): `microvm vpn status --json`, parsed.
"""
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import time
import uuid

import pytest


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")


@contextlib.contextmanager
def netns(prefix="mvmsocks"):
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True,
                              text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_line(proc, text, timeout):
    """Read proc.stdout until a line containing text; return all lines read."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no '{text}' within {timeout}s; output: {''.join(lines)}")


class AgentNs(str):
    """A namespace name that also says where the secret of the agent running in it is."""

    def __new__(cls, name, secret_file):
        obj = super().__new__(cls, name)
        obj.secret_file = secret_file
        return obj


class Appliance:
    """`microvm up` attached to the agent inside namespace `ns`.

    The agent's secret file (--agent-secret-file) is @secret_file, or ns.secret_file when
    @ns is an AgentNs.
    """

    def __init__(self, microvm_bin, ns, tmp_path, extra=(), stdin=None, addr="127.0.0.1",
                 secret_file=None):
        self.bin = str(microvm_bin)
        self.port = free_port()
        self.control = str(tmp_path / "ctl" / "control.sock")
        self.env = dict(os.environ, MICROVM_CONTROL=self.control)
        secret_file = secret_file or getattr(ns, "secret_file", None)
        args = [self.bin, "up", "--agent-netns", f"/run/netns/{ns}",
                "--agent-secret-file", str(secret_file),
                "--socks", f"[{addr}]:{self.port}", "--boot-timeout", "20", *extra]
        self.proc = subprocess.Popen(args, env=self.env, text=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if stdin is not None:
            self.proc.stdin.write(stdin)
        self.proc.stdin.close()
        self.startup = wait_line(self.proc, "microvm is up", 30)

    def cli(self, *args, input=None, timeout=60):
        return subprocess.run([self.bin, *args], env=self.env, input=input, text=True,
                              capture_output=True, timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.cli("down", timeout=30)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def vpn_state(app):
    """`microvm vpn status --json` of @app (anything with Appliance's cli()), parsed."""
    r = app.cli("vpn", "status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def curl(*args):
    """`curl -sS --max-time 20 ARGS` (the proxy among @args), its CompletedProcess."""
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                          text=True, timeout=30)


def socks_open(port, host, dport, auth=None, timeout=10, proxy="127.0.0.1"):
    """SOCKS5 CONNECT through proxy:port.  Returns (reply_code, socket or None)."""
    s = socket.create_connection((proxy, port), timeout=timeout)
    s.sendall(b"\x05\x01" + (b"\x02" if auth else b"\x00"))
    ver, method = recv_exact(s, 2)
    assert ver == 5
    if method == 0xFF:
        s.close()
        return None, None
    if auth:
        user, pw = (x.encode() for x in auth)
        s.sendall(bytes([1, len(user)]) + user + bytes([len(pw)]) + pw)
        if recv_exact(s, 2)[1] != 0:
            s.close()
            return "auth", None
    try:
        addr = b"\x01" + socket.inet_aton(host)
    except OSError:
        addr = b"\x03" + bytes([len(host)]) + host.encode()
    s.sendall(b"\x05\x01\x00" + addr + struct.pack(">H", dport))
    reply = recv_exact(s, 10)
    if reply[1] != 0:
        s.close()
        return reply[1], None
    return 0, s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def wait_port_in_ns(ns, port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}"],
                           capture_output=True, text=True)
        if r.stdout.strip():
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} in {ns}")



