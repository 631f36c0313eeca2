"""microvm-agent against a real OpenVPN 2.6 server, all in test-made network namespaces.

One server (module scope) serves every test; the agent runs over TCP in the client
namespace. See vpnlib.py for the test bed.
"""
import ipaddress
import json
import signal
import socket
import subprocess
import time

import pytest

import vpnlib

pytestmark = pytest.mark.skipif(vpnlib.needs_root() is not None,
                                reason=vpnlib.needs_root() or "")


@pytest.fixture(scope="module")
def agent_bin(build_dir):
    b = build_dir / "guest" / "agent" / "microvm-agent"
    if not b.exists():
        pytest.fail(f"{b} not built")
    return b


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    with vpnlib.Testbed(tmp_path_factory.mktemp("vpn")) as b:
        yield b


@pytest.fixture(scope="module")
def agent(bed, agent_bin):
    with vpnlib.Agent(bed, agent_bin, args=["--vpn-timeout", "30",
                                            "--connect-timeout", "3"]) as a:
        yield a


@pytest.fixture
def profile(agent, bed):
    assert agent.request({"cmd": "vpn_set_profile", "name": "test.ovpn",
                          "content": bed.profile()}) == {"status": "ok"}
    yield "test.ovpn"
    assert agent.request({"cmd": "vpn_stop"})["status"] == "disconnected"


def connect_alice(agent, profile):
    r = agent.request({"cmd": "vpn_start", "profile": profile, "username": "alice",
                       "password": vpnlib.USERS["alice"]})
    assert r["status"] == "connected", r
    return r


# -- control protocol -----------------------------------------------------------------------

def test_ping_and_many_requests_per_connection(agent):
    with agent.conn() as c:
        assert c.request({"cmd": "ping"}) == {"status": "pong"}
        # unknown fields are ignored
        assert c.request({"cmd": "ping", "extra": [1, 2], "x": None}) == {"status": "pong"}
        # several requests in one write, answered in order
        c.send_raw(b'{"cmd":"ping"}\n{"cmd":"get_auth_secret"}\r\n\n{"cmd":"ping"}\n')
        assert c.read_line() == {"status": "pong"}
        r = c.read_line()
        assert r["status"] == "ok" and len(r["auth_secret"]) == 64
        int(r["auth_secret"], 16)
        assert c.read_line() == {"status": "pong"}
        # the secret is stable for the agent's life
        assert c.request({"cmd": "get_auth_secret"})["auth_secret"] == r["auth_secret"]


def test_single_request_without_newline_then_half_close(agent):
    s = agent.ns.connect("127.0.0.1", agent.control_port)
    s.sendall(b'{"cmd":"ping"}')
    s.shutdown(socket.SHUT_WR)
    s.settimeout(10)
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    s.close()
    assert json.loads(data) == {"status": "pong"}


def test_errors_keep_connection_usable(agent):
    with agent.conn() as c:
        for bad in (b"not json", b"[1,2]", b'{"cmd":5}', b'{"nocmd":1}', b'{"cmd":"fly"}',
                    b'{"cmd":"vpn_set_profile","name":"x"}',
                    b'{"cmd":"vpn_start"}', b'{"cmd":"vpn_start","profile":"a","timeout":0}',
                    b'{"cmd":"vpn_start","profile":"a","username":"u\\npassword x"}'):
            c.send_raw(bad + b"\n")
            r = c.read_line()
            assert r["status"] == "error" and r["error"], (bad, r)
        assert c.request({"cmd": "ping"}) == {"status": "pong"}


def test_overlong_line_closes(agent):
    with agent.conn() as c:
        c.send_raw(b'{"cmd":"ping","pad":"' + b"x" * (1024 * 1024 + 10))
        r = c.read_line()
        assert r["status"] == "error" and "1 MiB" in r["error"]
        with pytest.raises((EOFError, ConnectionResetError, BrokenPipeError)):
            c.read_line(timeout=10)
    assert agent.request({"cmd": "ping"}) == {"status": "pong"}


def test_profiles_upload_list_and_names(agent):
    for name in ("b-2.ovpn", "a_1.ovpn", "Z.conf"):
        assert agent.request({"cmd": "vpn_set_profile", "name": name,
                              "content": f"# {name}\n"}) == {"status": "ok"}
    # replacing is atomic and keeps one entry
    assert agent.request({"cmd": "vpn_set_profile", "name": "a_1.ovpn",
                          "content": "# new\n"}) == {"status": "ok"}
    profiles = agent.request({"cmd": "list_profiles"})
    assert profiles["status"] == "ok"
    names = [n for n in profiles["profiles"] if n in ("b-2.ovpn", "a_1.ovpn", "Z.conf")]
    assert names == sorted(names) == ["Z.conf", "a_1.ovpn", "b-2.ovpn"]
    assert profiles["profiles"] == sorted(profiles["profiles"])
    store = agent.dir / "state" / "profiles"
    assert (store / "a_1.ovpn").read_text() == "# new\n"
    assert (store / "a_1.ovpn").stat().st_mode & 0o777 == 0o600
    assert not [f for f in store.iterdir() if f.name.startswith(".")]

    for bad in ("../evil", "a/b", "/etc/passwd", ".hidden", "..", "", "x" * 65, "a b",
                "a\x00b", "é.ovpn"):
        r = agent.request({"cmd": "vpn_set_profile", "name": bad, "content": "x"})
        assert r["status"] == "error", bad
        r = agent.request({"cmd": "vpn_start", "profile": bad})
        assert r["status"] == "error", bad
    assert agent.request({"cmd": "vpn_set_profile", "name": "x" * 64,
                          "content": ""}) == {"status": "ok"}
    assert not (agent.dir / "state" / "evil").exists()
    r = agent.request({"cmd": "vpn_start", "profile": "missing.ovpn"})
    assert r == {"status": "error", "error": "no such profile"}


def test_status_when_idle(agent):
    assert agent.request({"cmd": "vpn_status"})["status"] == "disconnected"
    assert agent.request({"cmd": "vpn_stop"}) == {"status": "disconnected"}
    r = agent.request({"cmd": "vpn_check_webauth"})
    assert r["status"] == "error"
