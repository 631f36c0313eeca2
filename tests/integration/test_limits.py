"""The agent's resource limits against the attacks that found them (docs/security.md).

Each test repeats one finding against a real microvm-agent (over TCP in a test-made client
namespace, with a real OpenVPN server where the tunnel matters) and checks the safe
outcome: no spinning on EMFILE, bounded memory, name lookups that do not starve each other,
a bounded profile store, relays reset when the VPN goes down. Needs root (namespaces).
"""
import contextlib
import os
import pathlib
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import vpnlib

pytestmark = pytest.mark.skipif(vpnlib.needs_root() is not None,
                                reason=vpnlib.needs_root() or "")

HZ = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    with vpnlib.Testbed(tmp_path_factory.mktemp("limits")) as b:
        yield b


def cpu_seconds(pid):
    """User + system CPU time of a process and its threads, in seconds."""
    f = pathlib.Path(f"/proc/{pid}/stat").read_text()
    fields = f[f.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def proc_status(pid, key):
    """A /proc/PID/status value in KiB (VmRSS, VmHWM)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def test_idle_control_flood_under_fd_limit(bed, agent_bin):
    """200 idle control connections, 48 descriptors: no spin, no log flood, still served."""
    with vpnlib.Agent(bed, agent_bin, wrapper=["prlimit", "--nofile=48", "--"],
                      args=["--control-idle-timeout", "2"]) as agent:
        cpu0 = cpu_seconds(agent.pid)
        idle = [agent.raw_control() for _ in range(200)]
        try:
            time.sleep(3)
            # descriptors ran out (the agent has far fewer than 200): it paused, not spun
            assert cpu_seconds(agent.pid) - cpu0 < 1.0
            log = agent.log_path.read_text()
            assert "control accept: Too many open files; pausing" in log
            assert log.count("Too many open files") < 20, log[-2000:]
            # a client behind all of them is answered once idle ones time out (they never
            # authenticate: each is closed 5 s after it is accepted, see auth.c)
            t0 = time.monotonic()
            with agent.conn(timeout=40) as c:
                assert c.request({"cmd": "ping"}, timeout=60) == {"status": "pong"}
            assert time.monotonic() - t0 < 40
            # the idle connections were closed by the agent
            s = idle[0]
            s.settimeout(5)
            assert s.recv(1) == b""
        finally:
            for s in idle:
                s.close()
        assert cpu_seconds(agent.pid) - cpu0 < 3.0
        assert agent.request({"cmd": "ping"}) == {"status": "pong"}


def test_control_connection_cap(bed, agent_bin):
    """Past 64 control connections a client is told why and closed; the 64 keep working."""
    with vpnlib.Agent(bed, agent_bin) as agent:
        conns = [agent.conn() for _ in range(64)]
        try:
            for c in conns:    # all of them are accepted and served
                assert c.request({"cmd": "ping"}) == {"status": "pong"}
            s = agent.connect(agent.control_port)   # authenticated: the cap is past auth
            with s:
                s.settimeout(10)
                data = b""
                while d := s.recv(4096):
                    data += d
            assert b"too many control connections (at most 64)" in data
            assert conns[0].request({"cmd": "ping"}) == {"status": "pong"}
        finally:
            for c in conns:
                c.close()
        vpnlib.wait_for(lambda: agent.request({"cmd": "ping"}) == {"status": "pong"}, 10,
                        "a free control slot")


def test_unfinished_big_lines_bounded_memory(bed, agent_bin):
    """20 connections each holding an unfinished ~8 MiB line: memory stays bounded."""
    big = b'{"cmd":"ping","pad":"' + b"x" * (8 * 1024 * 1024 - 100)
    with vpnlib.Agent(bed, agent_bin) as agent:
        conns = [agent.conn() for _ in range(20)]
        outcome = {}

        def push(i):
            try:
                conns[i].send_raw(big)
                outcome[i] = "held"
            except OSError:
                outcome[i] = "closed"
        threads = [threading.Thread(target=push, args=(i,)) for i in range(20)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert len(outcome) == 20
            hwm = proc_status(agent.pid, "VmHWM")
            # 16 MiB budget + 20 first buffers + the program: far below the 182 MB seen
            assert hwm < 48 * 1024, f"peak RSS {hwm} KiB"
            refused = told = 0
            for i, c in enumerate(conns):
                if outcome[i] == "closed":
                    refused += 1
                    continue
                with contextlib.suppress(TimeoutError):
                    try:
                        r = c.read_line(timeout=0.2)
                    except (EOFError, ConnectionResetError):
                        refused += 1
                        continue
                    assert r["status"] == "error" and "agent busy" in r["error"], r
                    refused += 1
                    told += 1
            # at most two whole lines fit in the budget at once
            assert refused >= 17, outcome
            # the agent drains what a refused client still sends, so the error line arrives
            # (not a reset that destroys it)
            assert told >= 15, (refused, told)
            assert "request buffers of all connections reached 16 MiB" in \
                agent.log_path.read_text()
            # a small request still works meanwhile
            assert agent.request({"cmd": "ping"}) == {"status": "pong"}
        finally:
            for c in conns:
                c.close()


BLACKHOLE_DNS = r'''
import socket, struct, sys
# Answers GOOD with 127.0.0.1 at once; every other query is dropped (never answered).
good = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(512)
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
        i += 1 + q[i]
    if ".".join(labels).lower() != good or len(q) < i + 5:
        continue
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    an = 1 if qtype == 1 else 0
    r = q[:2] + struct.pack(">HHHHH", 0x8180, 1, an, 0, 0) + q[12:i + 5]
    if an:
        r += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    s.sendto(r, peer)
'''


@contextlib.contextmanager
def blackhole_dns(bed, good):
    """The client namespace's resolver (127.0.0.1:53) answers only @good."""
    script = pathlib.Path(bed.dir) / "blackhole_dns.py"
    script.write_text(BLACKHOLE_DNS)
    p = bed.client.popen(["/usr/bin/python3", str(script), good], stdout=subprocess.PIPE)
    try:
        assert b"ready" in p.stdout.readline()
        yield
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def reset_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


# Without a policy the agent connects to the target (0x00); with a destination policy that
# refuses loopback it answers 0x02. Either way the name was resolved, at once.
RESOLVED = (0x00, 0x02)


def test_names_that_never_resolve_do_not_block_others(bed, agent_bin):
    with blackhole_dns(bed, "good.test"), \
            vpnlib.Agent(bed, agent_bin, args=["--connect-timeout", "30"]) as agent:
        slow = [agent.proxy_open(f"slow{i}.test", 80) for i in range(40)]
        try:
            time.sleep(0.3)
            # /etc/hosts-style names are answered without a lookup
            t0 = time.monotonic()
            s, st = agent.proxy("localhost", agent.control_port, timeout=10)
            s.close()
            assert st in RESOLVED and time.monotonic() - t0 < 1, st
            # a name the DNS server does answer is not stuck behind the 40
            t0 = time.monotonic()
            s, st = agent.proxy("good.test", agent.control_port, timeout=10)
            s.close()
            assert st in RESOLVED and time.monotonic() - t0 < 3, st
            # control is unaffected
            assert agent.request({"cmd": "ping"}) == {"status": "pong"}
        finally:
            for s in slow:
                reset_close(s)
        # 100 more that are abandoned at once: the queued ones are dropped, not resolved
        flood = [agent.proxy_open(f"gone{i}.test", 80) for i in range(100)]
        time.sleep(0.3)
        for s in flood:
            reset_close(s)
        time.sleep(0.3)
        t0 = time.monotonic()
        s, st = agent.proxy("good.test", agent.control_port, timeout=10)
        s.close()
        assert st in RESOLVED and time.monotonic() - t0 < 3, st
        # the queue is bounded: past 32 running and 64 waiting, a lookup is refused at once
        flood = [agent.proxy_open(f"many{i}.test", 80) for i in range(120)]
        try:
            time.sleep(0.5)     # refusals come at once; lookups take a second
            got = []
            for s in flood:
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    got.append(s.recv(1))
            assert got.count(b"\x01") >= 120 - 32 - 64 - 4, got
        finally:
            for s in flood:
                reset_close(s)
        assert "name lookups waiting already; refused" in agent.log_path.read_text()


def test_profile_store_limits(bed, agent_bin):
    with vpnlib.Agent(bed, agent_bin) as agent:
        for i in range(60):
            assert agent.request({"cmd": "vpn_set_profile", "name": f"p{i}.ovpn",
                                  "content": f"# {i}\n"}) == {"status": "ok"}
        r = agent.request({"cmd": "vpn_set_profile", "name": "p60.ovpn", "content": "# 60\n"})
        assert r == {"status": "error", "error": "too many profiles (at most 60); replace one"}
        assert len(agent.request({"cmd": "list_profiles"})["profiles"]) == 60
        # replacing is fine, up to 16 MiB for all of them
        mib = ("#" * 127 + "\n") * 8192   # 1 MiB of comment lines the allow-list takes
        for i in range(15):
            assert agent.request({"cmd": "vpn_set_profile", "name": f"p{i}.ovpn",
                                  "content": mib}) == {"status": "ok"}
        r = agent.request({"cmd": "vpn_set_profile", "name": "p15.ovpn", "content": mib})
        assert r == {"status": "error",
                     "error": "profile store full (at most 16 MiB for all profiles)"}
        assert (agent.dir / "state" / "profiles" / "p15.ovpn").read_text() == "# 15\n"
        assert "too many profiles" in agent.log_path.read_text()


def test_vpn_down_resets_relays_through_the_tunnel(bed, agent_bin):
    with vpnlib.Agent(bed, agent_bin, args=["--vpn-timeout", "30"]) as agent:
        assert agent.request({"cmd": "vpn_set_profile", "name": "t.ovpn",
                              "content": bed.profile()}) == {"status": "ok"}
        r = agent.request({"cmd": "vpn_start", "profile": "t.ovpn", "username": "alice",
                           "password": vpnlib.USERS["alice"]})
        assert r["status"] == "connected", r
        s, st = agent.proxy(vpnlib.VPN_SERVER_IP, vpnlib.TARGET_PORT)
        with s:
            assert st == 0
            banner = b""
            while not banner.endswith(b"\n"):
                banner += s.recv(100)
            assert banner == vpnlib.TARGET_BANNER
            os.kill(agent.openvpn_pid(), signal.SIGKILL)
            t0 = time.monotonic()
            s.settimeout(10)
            with pytest.raises(ConnectionResetError):
                s.recv(100)
            assert time.monotonic() - t0 < 3
        vpnlib.wait_for(lambda: "vpn down: reset 1 relays through the tunnel" in
                        agent.log_path.read_text(), 5, "the reset in the log")
        st = agent.request({"cmd": "vpn_status"})
        assert st["status"] == "disconnected" and "killed by signal 9" in st["reason"]
