"""The authenticated TCP transport (docs/protocol.md, "Authentication over TCP"), attack by
attack: each test does what an attacker on this machine would do and checks the safe outcome.

Needs root (network namespaces).  The agent runs over TCP in the test bed's client
namespace (vpnlib.Agent, which provisions a fresh secret); the fake agents are Python
processes in a namespace of their own.
"""
import hashlib
import hmac
import os
import select
import socket
import subprocess
import sys
import time

import pytest

import authlib
import vpnlib
from sockslib import netns, need_root


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    need_root()
    with vpnlib.Testbed(tmp_path_factory.mktemp("auth")) as b:
        yield b


@pytest.fixture(scope="module")
def agent_bin(build_dir):
    return build_dir / "guest/agent/microvm-agent"


@pytest.fixture(scope="module")
def agent(bed, agent_bin):
    with vpnlib.Agent(bed, agent_bin, control_port=1031, proxy_port=7608) as a:
        yield a


def read_all(s, timeout=10):
    """Everything @s sends until it closes (raises on timeout: the peer kept it open)."""
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            return data
        if not d:
            return data
        data += d


def hello_and_challenge(s):
    """Send a HELLO; return (nh, na, agent's MAC)."""
    nh = os.urandom(authlib.NONCE_LEN)
    s.sendall(authlib.MAGIC + nh)
    c = authlib.recv_exact(s, authlib.CHALLENGE_LEN)
    assert c[:8] == authlib.MAGIC
    return nh, c[8:40], c[40:]


def assert_alive(agent):
    assert agent.request({"cmd": "ping"}) == {"status": "pong"}


# -- an unauthenticated client gets nothing ------------------------------------------------

def test_unauthenticated_control_client_gets_nothing(agent):
    s = agent.connect_unauthenticated(agent.control_port)
    t0 = time.monotonic()
    s.sendall(b'{"cmd":"get_auth_secret"}\n{"cmd":"vpn_stop"}\n{"cmd":"shutdown"}\n')
    assert read_all(s) == b""               # closed at the first wrong byte, no answer
    assert time.monotonic() - t0 < 2
    s.close()
    assert_alive(agent)                      # and the shutdown was not obeyed
    assert "not an authentication handshake" in agent.log_path.read_text()


def test_unauthenticated_proxy_client_is_not_proxied(agent):
    # the target listens on the VPN server's side of the veth (the destination policy
    # refuses the guest's own loopback, whatever the handshake)
    lsock = agent.bed.server.call(socket.create_server, (vpnlib.SERVER_IP, 0))
    port = lsock.getsockname()[1]
    host = vpnlib.SERVER_IP.encode()
    try:
        s = agent.connect_unauthenticated(agent.proxy_port)
        s.sendall(bytes([len(host)]) + host + port.to_bytes(2, "big") + b"payload")
        assert read_all(s) == b""           # no status byte, just a close
        s.close()
        # nothing was connected on the client's behalf
        assert select.select([lsock], [], [], 1.0)[0] == []
        # the same request after the handshake is proxied
        s, status = agent.proxy(vpnlib.SERVER_IP, port)
        assert status == 0
        s.close()
        assert select.select([lsock], [], [], 5.0)[0] == [lsock]
    finally:
        lsock.close()


def test_handshake_time_is_bounded(agent):
    silent = agent.connect_unauthenticated(agent.control_port)
    partial = agent.connect_unauthenticated(agent.proxy_port)
    partial.sendall(authlib.MAGIC + b"\x00" * 5)
    t0 = time.monotonic()
    assert read_all(silent, 15) == b""
    assert read_all(partial, 15) == b""
    took = time.monotonic() - t0
    assert 4 < took < 12, took              # MVM_AUTH_TIMEOUT_MS (5 s), a tick, a busy machine
    silent.close()
    partial.close()
    assert_alive(agent)


# -- a wrong secret, replays, reflections -----------------------------------------------------

def test_wrong_secret_fails_both_ways(agent):
    # the client sees the agent does not prove *its* secret...
    with pytest.raises(authlib.AuthError):
        agent.connect(agent.control_port, secret=authlib.new_secret())
    # ...and a client that sends a proof anyway (not knowing the secret) is refused
    s = agent.connect_unauthenticated(agent.control_port)
    nh, na, _ = hello_and_challenge(s)
    s.sendall(authlib.mac(authlib.new_secret(), authlib.LABEL_HOST, agent.control_port, nh, na)
              + b'{"cmd":"get_auth_secret"}\n')
    assert read_all(s) == b""
    s.close()
    assert "wrong authentication proof" in agent.log_path.read_text()


def test_replayed_proof_is_refused(agent):
    # a genuine exchange, as an eavesdropper would record it
    s = agent.connect_unauthenticated(agent.control_port)
    nh, na, _ = hello_and_challenge(s)
    proof = authlib.mac(agent.secret, authlib.LABEL_HOST, agent.control_port, nh, na)
    s.sendall(proof + b'{"cmd":"ping"}\n')
    assert vpnlib.ControlConn(s).read_line() == {"status": "pong"}
    s.close()
    # replayed on a new connection (same HELLO, same proof): the agent's nonce is new
    s = agent.connect_unauthenticated(agent.control_port)
    s.sendall(authlib.MAGIC + nh)
    c = authlib.recv_exact(s, authlib.CHALLENGE_LEN)
    assert c[8:40] != na
    s.sendall(proof + b'{"cmd":"get_auth_secret"}\n')
    assert read_all(s) == b""
    s.close()


def test_proof_is_bound_to_port_and_direction(agent):
    # a proof made for the proxy port does not open the control port
    s = agent.connect_unauthenticated(agent.control_port)
    nh, na, agent_mac = hello_and_challenge(s)
    s.sendall(authlib.mac(agent.secret, authlib.LABEL_HOST, agent.proxy_port, nh, na)
              + b'{"cmd":"ping"}\n')
    assert read_all(s) == b""
    s.close()
    # the agent's own MAC reflected back is not a host proof
    s = agent.connect_unauthenticated(agent.control_port)
    nh, na, agent_mac = hello_and_challenge(s)
    assert agent_mac == authlib.mac(agent.secret, authlib.LABEL_AGENT, agent.control_port,
                                    nh, na)
    s.sendall(agent_mac + b'{"cmd":"ping"}\n')
    assert read_all(s) == b""
    s.close()
    assert_alive(agent)


def test_get_auth_secret_only_after_authentication(agent):
    with agent.conn() as c:
        assert c.request({"cmd": "get_auth_secret"}) == {"status": "ok",
                                                         "auth_secret": agent.secret}


# -- the agent's start-up ----------------------------------------------------------------------

def test_tcp_agent_refuses_to_start_without_a_private_secret(agent_bin, tmp_path):
    base = [str(agent_bin), "--transport", "tcp", "--listen", "127.0.0.1",
            "--control-port", "1", "--proxy-port", "2",
            "--state-dir", str(tmp_path / "s"), "--run-dir", str(tmp_path / "r")]
    r = subprocess.run(base, capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "--transport tcp needs the host's secret" in r.stderr, r.stderr
    f = tmp_path / "secret"
    f.write_text(authlib.new_secret() + "\n")
    f.chmod(0o644)
    r = subprocess.run(base + ["--auth-secret-file", str(f)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 1 and "readable by others" in r.stderr, r.stderr


# -- a fake agent learns nothing from `microvm up` -------------------------------------------

FAKE_AGENT = r"""
import os, socket, sys, threading
mode, log = sys.argv[1], sys.argv[2]
lock = threading.Lock()

def serve(c, port):
    got = b""
    c.settimeout(10)
    try:
        if mode == "impostor":
            # speaks the handshake, but cannot know the key: a random MAC
            got += c.recv(40)
            c.sendall(b"MVMAUTH1" + os.urandom(64))
        else:
            # the old, unauthenticated agent: "pong" to anything
            c.sendall(b'{"status":"pong"}\n')
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    with lock, open(log, "ab") as f:
        f.write(b"%d %s\n" % (port, got.hex().encode()))
    c.close()

def listen(port):
    ls = socket.create_server(("127.0.0.1", port))
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, port), daemon=True).start()

for p in (1025, 7602):
    threading.Thread(target=listen, args=(p,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


@pytest.mark.parametrize("mode", ["plain", "impostor"])
def test_fake_agent_gets_no_credentials(microvm_bin, tmp_path, mode):
    need_root()
    password = "s3cret-" + os.urandom(4).hex()
    prof = tmp_path / "corp.ovpn"
    prof.write_text("client\nremote 192.0.2.1 1194\n")
    sf = tmp_path / "agent.secret"
    authlib.write_secret(sf, authlib.new_secret())
    log = tmp_path / "fake.log"
    with netns("mvmfake") as ns:
        fake = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", FAKE_AGENT,
                                 mode, str(log)], stdout=subprocess.PIPE, text=True)
        try:
            assert fake.stdout.readline().strip() == "ready"
            t0 = time.monotonic()
            r = subprocess.run([str(microvm_bin), "up", "--agent", "tcp:127.0.0.1",
                                "--agent-netns", f"/run/netns/{ns}",
                                "--agent-secret-file", str(sf), "--boot-timeout", "20",
                                "--control", str(tmp_path / "c.sock"), "--no-socks",
                                "--profile", str(prof), "--user", "alice",
                                "--password-stdin"],
                               input=password + "\n", capture_output=True, text=True,
                               timeout=60)
            took = time.monotonic() - t0
        finally:
            fake.kill()
            fake.wait()
            fake.stdout.close()
    assert r.returncode != 0
    assert ("the agent at 127.0.0.1:1025 failed authentication "
            "(wrong secret or not our agent)") in r.stderr, r.stderr
    assert took < 10, took                      # fails at once, does not wait for a pong
    got = log.read_bytes().decode().split("\n") if log.exists() else []
    conns = [line.split(" ") for line in got if line]
    assert conns, "up never connected to the fake agent"
    for port, hexdata in conns:
        data = bytes.fromhex(hexdata)
        assert port == "1025", conns
        # nothing but a HELLO (magic and a nonce) ever reached the fake agent
        assert len(data) == authlib.HELLO_LEN and data.startswith(authlib.MAGIC), data
        assert b"alice" not in data and password.encode() not in data
