"""The host SOCKS5 server (libmicrovm, served by `microvm up`) against exact protocol cases.

The real microvm-agent runs in the test's own network namespace (the guest's place) with an
echo service on its loopback, no VPN: these tests pin the SOCKS server's own behaviour -
1,000 concurrent relays byte for byte, half-close, garbage, authentication, refusals, timeouts,
slow clients - quickly and deterministically.  test_socks_vpn.py runs the whole chain through
OpenVPN with curl and ssh.  The echo target listens in a second namespace of the test's own,
on TARGET (named echo.test in the agent's /etc/hosts), joined to the agent's by a veth pair:
the agent's destination policy refuses its own addresses and loopback.
"""
import concurrent.futures
import json
import pathlib
import random
import resource
import shutil
import socket
import subprocess
import sys
import time

import pytest

import authlib
from sockslib import (AgentNs, Appliance, free_port, need_root, netns, recv_exact,
                      socks_open, wait_line, wait_port_in_ns)

ECHO = 7000
TARGET = "10.79.0.1"        # the echo namespace's end of the veth
AGENT_IP = "10.79.0.2"      # the agent namespace's end
TARGET_NAME = "echo.test"
ECHO_SERVER = r"""
import resource, socket, sys, threading
resource.setrlimit(resource.RLIMIT_NOFILE, (16384, 16384))
def serve(c):
    with c:
        while d := c.recv(65536):
            c.sendall(d)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[2], int(sys.argv[1])))
ls.listen(4096)
print("ready", flush=True)
while True:
    threading.Thread(target=serve, args=(ls.accept()[0],), daemon=True).start()
"""


@pytest.fixture(scope="module")
def agent_ns(build_dir, tmp_path_factory):
    need_root()
    d = tmp_path_factory.mktemp("agent")
    with netns("mvmsocks") as ns, netns("mvmecho") as tns:
        veth = "mvs" + ns[-8:]
        subprocess.run(["ip", "-n", ns, "link", "add", veth + "a", "type", "veth", "peer",
                        "name", veth + "b", "netns", tns], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", AGENT_IP + "/24", "dev", veth + "a"],
                       check=True)
        subprocess.run(["ip", "-n", tns, "addr", "add", TARGET + "/24", "dev", veth + "b"],
                       check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", veth + "a", "up"], check=True)
        subprocess.run(["ip", "-n", tns, "link", "set", veth + "b", "up"], check=True)
        etc = pathlib.Path("/etc/netns") / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n::1 localhost\n"
                                   f"{TARGET} {TARGET_NAME}\n")
        echo = subprocess.Popen(["ip", "netns", "exec", tns, sys.executable, "-c", ECHO_SERVER,
                                 str(ECHO), TARGET], stdout=subprocess.PIPE, text=True)
        secret_file = d / "secret"
        authlib.write_secret(secret_file, authlib.new_secret())
        agent = subprocess.Popen(["ip", "netns", "exec", ns,
                                  str(build_dir / "guest/agent/microvm-agent"),
                                  "--transport", "tcp", "--listen", "127.0.0.1",
                                  "--auth-secret-file", str(secret_file),
                                  "--state-dir", str(d / "state"), "--run-dir", str(d / "run")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_line(echo, "ready", 20)
            wait_port_in_ns(ns, 7602)
            wait_port_in_ns(ns, 1025)
            yield AgentNs(ns, secret_file)
        finally:
            for p in (agent, echo):
                p.kill()
                p.wait()
            echo.stdout.close()
            shutil.rmtree(etc, ignore_errors=True)


@pytest.fixture(scope="module")
def appliance(microvm_bin, agent_ns, tmp_path_factory):
    app = Appliance(microvm_bin, agent_ns, tmp_path_factory.mktemp("up"),
                    extra=["--idle-timeout", "30"])
    yield app
    app.close()


def test_echo_roundtrip_ipv4_and_domain(appliance):
    for host in (TARGET, TARGET_NAME):
        rep, s = socks_open(appliance.port, host, ECHO)
        assert rep == 0
        s.sendall(b"ping " + host.encode())
        s.shutdown(socket.SHUT_WR)          # half-close: the answer still comes back
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        assert data == b"ping " + host.encode()
        s.close()


def test_refused_target_maps_to_reply_5(appliance):
    rep, _ = socks_open(appliance.port, TARGET, 1)           # nothing listens on port 1
    assert rep == 0x05


@pytest.mark.parametrize("host,port", [
    ("127.0.0.1", 1025), ("127.0.0.1", 7602), ("localhost", 1025), ("::1", 7602),
    ("::ffff:127.0.0.1", 1025), ("127.1.2.3", 7602), (AGENT_IP, 1025), (AGENT_IP, 7602),
    ("0.0.0.0", 1025), ("10.0.2.2", 1080), ("10.0.2.3", 53), ("169.254.169.254", 80),
    ("fe80::1", 80), ("224.0.0.1", 80), ("255.255.255.255", 80),
])
def test_destination_policy_not_allowed(appliance, host, port):
    # The agent's own ports, its addresses, loopback, the user-mode network's gateway
    # and DNS, link-local and multicast: SOCKS reply 0x02 "not allowed by ruleset".
    rep, s = socks_open(appliance.port, host, port)
    assert rep == 0x02, rep
    rep, s = socks_open(appliance.port, TARGET, ECHO)    # still serving
    assert rep == 0
    s.close()


def test_bind_and_udp_associate_not_supported(appliance):
    for cmd in (2, 3):
        s = socket.create_connection(("127.0.0.1", appliance.port), timeout=5)
        s.sendall(b"\x05\x01\x00")
        assert recv_exact(s, 2) == b"\x05\x00"
        s.sendall(bytes([5, cmd, 0, 1, 127, 0, 0, 1, 0, 80]))
        reply = recv_exact(s, 10)
        assert reply[1] == 0x07
        assert s.recv(1) == b""            # then a clean close (FIN, not a reset)
        s.close()


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00",             # SOCKS4
    b"\x05\x00",                                         # no methods at all
    bytes(random.Random(7).randrange(256) for _ in range(3000)),
])
def test_garbage_gets_clean_close(appliance, garbage):
    s = socket.create_connection(("127.0.0.1", appliance.port), timeout=5)
    s.sendall(garbage)
    start = time.monotonic()
    data = b""
    while chunk := s.recv(4096):         # raises on a reset or a hang (timeout)
        data += chunk
    assert time.monotonic() - start < 4
    assert len(data) <= 12               # at most a refusal reply, never relayed data
    s.close()
    rep, s = socks_open(appliance.port, TARGET, ECHO)   # still serving
    assert rep == 0
    s.close()


def test_garbage_after_greeting_and_bad_atyp(appliance):
    s = socket.create_connection(("127.0.0.1", appliance.port), timeout=5)
    s.sendall(b"\x05\x01\x00")
    assert recv_exact(s, 2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x09garbage")
    reply = recv_exact(s, 10)
    assert reply[1] == 0x08                # address type not supported
    assert s.recv(100) == b""
    s.close()


def test_silent_client_is_timed_out(microvm_bin, agent_ns, tmp_path):
    # the handshake timeout is 10 s; nothing else may be held up meanwhile
    app = Appliance(microvm_bin, agent_ns, tmp_path)
    try:
        idle = socket.create_connection(("127.0.0.1", app.port), timeout=20)
        rep, s = socks_open(app.port, TARGET, ECHO)
        assert rep == 0
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        s.close()
        start = time.monotonic()
        assert idle.recv(1) == b""
        assert 5 < time.monotonic() - start < 15
    finally:
        app.close()


def _roundtrip(port, i):
    payload = random.Random(i).randbytes(1024 + (i * 37) % 8192)
    rep, s = socks_open(port, TARGET, ECHO, timeout=60)
    assert rep == 0, f"connection {i}: reply {rep}"
    return s, payload


def test_thousand_concurrent_connections_byte_exact(appliance):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    n = 1000
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        conns = list(pool.map(lambda i: _roundtrip(appliance.port, i), range(n)))
    # all 1,000 are open at once now; then every one echoes its own payload back
    st = appliance.cli("status", "--json")
    assert st.returncode == 0
    # 1,000 is the cap (below the 1,024 streams of the vsock device): one more is told so
    rep, s = socks_open(appliance.port, "127.0.0.1", ECHO)
    assert (rep, s) == (0x01, None)
    wait_line(appliance.proc, "connection limit reached (1000 open)", 10)

    def finish(item):
        s, payload = item
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        s.close()
        return got == payload

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        results = list(pool.map(finish, conns))
    assert all(results), f"{results.count(False)} payloads differ"
    assert time.monotonic() - start < 60


def test_slow_reader_does_not_stall_others(appliance):
    # one client pushes for 2 s and never reads the echo: its buffers fill, others go on
    rep, slow = socks_open(appliance.port, TARGET, ECHO)
    assert rep == 0
    slow.setblocking(False)
    sent = 0
    blob = b"z" * 65536
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            sent += slow.send(blob)
        except BlockingIOError:
            time.sleep(0.05)
    assert sent > 0
    t = time.monotonic()
    rep, s = socks_open(appliance.port, TARGET, ECHO)
    assert rep == 0
    s.sendall(b"hello")
    assert recv_exact(s, 5) == b"hello"
    assert time.monotonic() - t < 2
    s.close()
    slow.close()


def test_auth_required_wrong_password_refused(microvm_bin, agent_ns, tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text("s3cret-pw\n")
    app = Appliance(microvm_bin, agent_ns, tmp_path,
                    extra=["--socks-user", "alice", "--socks-password-file", str(pwfile)])
    try:
        assert socks_open(app.port, TARGET, ECHO)[0] is None        # no-auth refused
        assert socks_open(app.port, TARGET, ECHO, auth=("alice", "wrong"))[0] == "auth"
        assert socks_open(app.port, TARGET, ECHO, auth=("bob", "s3cret-pw"))[0] == "auth"
        rep, s = socks_open(app.port, TARGET, ECHO, auth=("alice", "s3cret-pw"))
        assert rep == 0
        s.close()
        st = app.cli("status", "--json")
        assert '"auth":\ttrue' in st.stdout
        assert "s3cret-pw" not in st.stdout + "".join(app.startup)
    finally:
        app.close()


def test_socks_auth_secret_is_the_agents(microvm_bin, agent_ns, tmp_path):
    app = Appliance(microvm_bin, agent_ns, tmp_path, extra=["--socks-auth"])
    try:
        secret = tmp_path / "ctl" / "socks.secret"
        assert oct(secret.stat().st_mode & 0o777) == "0o600"
        user, pw = secret.read_text().split()
        assert user == "microvm" and len(pw) == 64
        assert pw not in "".join(app.startup)
        assert socks_open(app.port, TARGET, ECHO, auth=(user, pw[:-1] + "x"))[0] == "auth"
        rep, s = socks_open(app.port, TARGET, ECHO, auth=(user, pw))
        assert rep == 0
        s.close()
        # it is the agent's own secret, and the proxy never reaches the agent itself
        for host in ("127.0.0.1", "localhost", AGENT_IP):
            for port in (1025, 7602):
                rep, s = socks_open(app.port, host, port, auth=(user, pw))
                assert rep == 0x02, (host, port)      # not allowed by ruleset
    finally:
        app.close()
    assert not secret.exists()


def test_non_loopback_listen_needs_force(microvm_bin, agent_ns, tmp_path):
    r = subprocess.run([str(microvm_bin), "up", "--agent-netns", f"/run/netns/{agent_ns}",
                        "--agent-secret-file", str(agent_ns.secret_file),
                        "--socks", "0.0.0.0:0", "--control", str(tmp_path / "c.sock")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "non-loopback" in r.stderr and "--socks-allow-remote" in r.stderr


def test_json_status_says_running(appliance):
    st = appliance.cli("status", "--json")
    assert st.returncode == 0 and json.loads(st.stdout)["running"] is True
    vpn = appliance.cli("vpn", "status", "--json")
    assert vpn.returncode == 0
    assert json.loads(vpn.stdout)["running"] is True
    assert json.loads(vpn.stdout)["state"] == "disconnected"


def test_control_socket_lines_and_garbage(appliance):
    """`up`'s control socket (libuv): 0600; requests sent together get their answers in
    order; a silent client holds up no one; a line that is not JSON ends that connection
    without an answer and the server goes on."""
    import os
    import stat
    assert stat.S_IMODE(os.stat(appliance.control).st_mode) == 0o600

    def conn():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(appliance.control)
        return s, s.makefile("rb")

    idle, _ = conn()        # says nothing while the others are served
    s, f = conn()
    s.sendall(b'{"cmd":"vpn_profiles"}\n{"cmd":"status"}\n{"cmd":"nope"}\n')
    answers = [json.loads(f.readline()) for _ in range(3)]
    assert answers[0]["ok"] and isinstance(answers[0]["profiles"], list)
    assert answers[1]["ok"] and answers[1]["status"]["socks"]["running"]
    assert answers[2] == {"ok": False, "error": "unknown command"}
    s.sendall(b"this is not json\n")
    assert f.readline() == b""
    s.close()
    idle.close()
    st = appliance.cli("status", "--json")
    assert st.returncode == 0 and json.loads(st.stdout)["running"] is True


@pytest.mark.parametrize("body,want", [
    ("script-security 2\nup \"/bin/sh -c id\"\n",
     "line 3: 'script-security' is not allowed in an imported profile: above 1 it lets "
     "OpenVPN run programs"),
    ("up \"/bin/sh -c id\"\n",
     "line 3: 'up' is not allowed in an imported profile: it runs a program"),
    ("log /etc/pwned-log\n", "line 3: 'log' is not allowed in an imported profile: it writes "
     "a file"),
    ("writepid /etc/passwd\n", "line 3: 'writepid' is not allowed in an imported profile: it "
     "writes a file"),
], ids=["script-security", "up", "log", "writepid"])
def test_import_refused_profile_says_why(appliance, tmp_path, body, want):
    prof = tmp_path / "evil.ovpn"
    prof.write_text("client\nremote 192.0.2.1 1194\n" + body)
    r = appliance.cli("vpn", "import", str(prof))
    assert r.returncode == 1
    assert want in r.stderr, r.stderr
    assert "evil.ovpn" not in json.loads(appliance.cli("vpn", "profiles", "--json").stdout)


def test_import_profile_of_exactly_1mib(appliance, tmp_path):
    # control characters: JSON escapes each as \u00XX, 6 MiB on both control channels
    prof = tmp_path / "max.ovpn"
    # (comment lines, so that the profile passes the agent's allow-list)
    line = b"#" + b"\x01\x02\t" * 84 + b"\n"
    prof.write_bytes((line * (1024 * 1024 // len(line) + 1))[:1024 * 1024])
    r = appliance.cli("vpn", "import", str(prof))
    assert r.returncode == 0, r.stderr
    assert "max.ovpn" in json.loads(appliance.cli("vpn", "profiles", "--json").stdout)
    prof.write_bytes(b"#" * (1024 * 1024 + 1))
    r = appliance.cli("vpn", "import", str(prof), "--name", "over.ovpn")
    assert r.returncode == 1 and "too large" in r.stderr.lower(), r.stderr


def test_down_stops_proxy(microvm_bin, agent_ns, tmp_path):
    app = Appliance(microvm_bin, agent_ns, tmp_path)
    r = app.cli("down")
    assert r.returncode == 0
    app.proc.wait(timeout=15)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", app.port), timeout=2)
    r = app.cli("status")
    assert r.returncode == 1 and "not running" in r.stderr
    app.close()


def test_refused_console_requests_leave_nothing_behind(microvm_bin, agent_ns, tmp_path):
    """Attached to an agent there is no console: each `console` request is answered "no
    console" and its connection ends, a second request pipelined on it is not acted on, and
    nothing is left that keeps `up` from stopping at once on `down`."""
    app = Appliance(microvm_bin, agent_ns, tmp_path)
    try:
        for lines in (b'{"cmd":"console"}\n', b'{"cmd":"console"}\n{"cmd":"console"}\n',
                      b'{"cmd":"console"}\n{"cmd":"status"}\n'):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            s.connect(app.control)
            f = s.makefile("rb")
            s.sendall(lines)
            a = json.loads(f.readline())
            assert a["ok"] is False and a["error"].startswith("no console"), a
            assert f.readline() == b""          # ended: nothing after it is answered
            s.close()
        start = time.monotonic()
        r = app.cli("down")
        assert r.returncode == 0, r.stderr
        app.proc.wait(timeout=15)
        # a console handle left open kept the loop busy for 2 s before (and the manager unfreed)
        assert time.monotonic() - start < 1.9
    finally:
        app.close()


def test_ipv6_listen_and_idle_timeout(microvm_bin, agent_ns, tmp_path):
    app = Appliance(microvm_bin, agent_ns, tmp_path, addr="::1", extra=["--idle-timeout", "1"])
    try:
        rep, s = socks_open(app.port, TARGET, ECHO, proxy="::1")
        assert rep == 0
        s.sendall(b"abc")
        assert recv_exact(s, 3) == b"abc"
        start = time.monotonic()
        assert s.recv(1) == b""             # idle for 1 s: closed by the proxy
        assert 0.5 < time.monotonic() - start < 5
        s.close()
    finally:
        app.close()


@pytest.mark.parametrize("cmd", [["up"], ["vpn"], ["vpn", "connect"], ["status"], ["down"],
                                 ["console"]])
def test_help_teaches(microvm_bin, cmd):
    r = subprocess.run([str(microvm_bin), *cmd, "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0
    assert r.stdout.startswith(f"usage: microvm {cmd[0]}")
    assert "Example" in r.stdout


def test_password_never_on_argv(microvm_bin, tmp_path):
    # there is no option that takes a password; one given positionally is rejected
    r = subprocess.run([str(microvm_bin), "vpn", "connect", "p", "--password", "x"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    r = subprocess.run([str(microvm_bin), "vpn", "connect", "p", "--user", "u"],
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL,
                       env={"MICROVM_CONTROL": str(tmp_path / "none.sock"), "PATH": "/usr/bin"},
                       start_new_session=True)      # no terminal to prompt on
    assert r.returncode == 2
    assert "--password-stdin" in r.stderr


def test_detach(microvm_bin, agent_ns, tmp_path):
    env = dict(MICROVM_CONTROL=str(tmp_path / "d" / "ctl.sock"), PATH="/usr/bin:/bin")
    port = free_port()
    r = subprocess.run([str(microvm_bin), "up", "--agent-netns", f"/run/netns/{agent_ns}",
                        "--agent-secret-file", str(agent_ns.secret_file),
                        "--socks", f"127.0.0.1:{port}", "--detach"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "microvm is up" in r.stdout
    try:
        rep, s = socks_open(port, TARGET, ECHO)
        assert rep == 0
        s.close()
        st = subprocess.run([str(microvm_bin), "status"], env=env, capture_output=True,
                            text=True, timeout=30)
        assert st.returncode == 0 and "reachable" in st.stdout
    finally:
        d = subprocess.run([str(microvm_bin), "down"], env=env, capture_output=True,
                           text=True, timeout=30)
    assert d.returncode == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    log = (tmp_path / "d" / "up.log").read_text()
    assert "detached from the agent" in log
