"""The whole chain with real programs: curl / OpenSSH -> `microvm up` SOCKS5 (host) -> agent's
inbound proxy (microvm-agent over TCP in the client namespace) -> OpenVPN tunnel -> services
that exist only inside the VPN (in the server namespace, on the VPN address 10.77.8.1).

vpnlib.Testbed provides the OpenVPN server, its DNS and the namespaces; this module adds an
HTTP server and an sshd on the VPN address.  `microvm vpn ...` drives the VPN and
`microvm vpn status --json` is checked after every state change.
"""
import concurrent.futures
import json
import random
import resource
import socket
import subprocess
import time

import pytest

import vpnfixtures
import vpnlib
from sockslib import Appliance, curl, recv_exact, socks_open, vpn_state

PAGE = "only inside the VPN\n"
HTTP_PORT = 8080
SSH_PORT = 2222
VIP = vpnlib.VPN_SERVER_IP


@pytest.fixture(scope="module")
def bed(vpn_bed):
    return vpn_bed


@pytest.fixture(scope="module")
def agent(vpn_agent):
    return vpn_agent


# HTTP on VIP:8080 and sshd on VIP:2222 in the server namespace
services = vpnfixtures.services_fixture(PAGE, HTTP_PORT, SSH_PORT)


@pytest.fixture(scope="module")
def app(microvm_bin, bed, agent, services, tmp_path_factory):
    a = Appliance(microvm_bin, bed.client.name, tmp_path_factory.mktemp("up"),
                  secret_file=agent.secret_file)
    yield a
    a.close()


def test_a_connect_and_status(app, bed, tmp_path):
    assert vpn_state(app)["state"] == "disconnected"
    prof = tmp_path / "corp.ovpn"
    prof.write_text(bed.profile())
    r = app.cli("vpn", "import", str(prof))
    assert r.returncode == 0, r.stderr
    assert app.cli("vpn", "profiles").stdout.split() == ["corp.ovpn"]
    # a password with a space, a quote and a backslash travels intact, and off argv
    r = app.cli("vpn", "connect", "corp.ovpn", "--user", "alice", "--password-stdin",
                input=vpnlib.USERS["alice"] + "\n", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "connected" in r.stdout
    st = vpn_state(app)
    assert st["state"] == "connected"
    assert st["tun_ip"].startswith("10.77.8.")
    full = json.loads(app.cli("status", "--json").stdout)
    assert full["agent_reachable"] and full["vpn"]["state"] == "connected"
    assert full["socks"]["running"] and full["socks"]["port"] == app.port


def test_curl_socks5_hostname_and_socks5(app):
    proxy = f"127.0.0.1:{app.port}"
    # the name is resolved by the agent through the VPN's DNS
    r = curl("--socks5-hostname", proxy,
             f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == PAGE
    r = curl("--socks5", proxy, f"http://{VIP}:{HTTP_PORT}/page.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == PAGE


def test_ssh_through_proxy(app, services):
    vpnlib.check_ssh_through_socks(services, SSH_PORT, app.port)


def test_thousand_concurrent_relays_through_vpn(app):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    n = 1000

    def open_one(i):
        rep, s = socks_open(app.port, VIP, vpnlib.TARGET_PORT, timeout=60)
        assert rep == 0, f"connection {i}: reply {rep}"
        assert recv_exact(s, len(vpnlib.TARGET_BANNER)) == vpnlib.TARGET_BANNER
        return s

    def finish(i, s):
        payload = random.Random(i).randbytes(1000 + i * 7)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)          # half-close; the target answers "bye" after it
        got = b""
        while chunk := s.recv(65536):
            got += chunk
        s.close()
        return got == payload + vpnlib.TARGET_BYE

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        socks = list(pool.map(open_one, range(n)))     # all 1,000 open at once
        ok = list(pool.map(finish, range(n), socks))
    assert all(ok), f"{ok.count(False)} relays wrong"
    assert time.monotonic() - start < 90


def test_unreachable_target_reply(app):
    # nothing listens on this port at the VPN server: the target refuses
    assert socks_open(app.port, VIP, 9, timeout=20)[0] == 0x05
    # a name the VPN's DNS does not know: host unreachable (or general failure)
    rep, _ = socks_open(app.port, "nowhere.vpn.test", 80, timeout=20)
    assert rep in (0x01, 0x04)


def test_z_disconnect_webauth_and_wrong_password(app, bed):
    r = app.cli("vpn", "disconnect")
    assert r.returncode == 0, r.stderr
    assert vpn_state(app)["state"] == "disconnected"
    # without the tunnel the VPN address is out of reach
    r = curl("--socks5", f"127.0.0.1:{app.port}", f"http://{VIP}:{HTTP_PORT}/page.txt")
    assert r.returncode != 0

    # web authentication: the URL is printed, status shows it, approval completes it
    proc = subprocess.Popen([app.bin, "vpn", "connect", "corp.ovpn", "--user", "webok",
                             "--password-stdin", "--timeout", "60"], env=app.env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdin.write("web\n")
    proc.stdin.close()
    proc.stdin = None
    lines = []
    while "http://auth.test/login/webok" not in "".join(lines):
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        lines.append(line)
    st = vpn_state(app)
    assert st["state"] == "webauth_required"
    assert st["auth_url"] == "http://auth.test/login/webok"
    bed.approve("webok")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "connected" in out
    assert vpn_state(app)["state"] == "connected"
    r = curl("--socks5", f"127.0.0.1:{app.port}", f"http://{VIP}:{HTTP_PORT}/page.txt")
    assert r.stdout == PAGE

    # a wrong password: a clear failure, reflected in the status
    assert app.cli("vpn", "disconnect").returncode == 0
    r = app.cli("vpn", "connect", "corp.ovpn", "--user", "alice", "--password-stdin",
                input="wrong\n", timeout=120)
    assert r.returncode == 1
    assert "wrong" not in r.stdout + r.stderr
    st = vpn_state(app)
    assert st["state"] in ("disconnected", "error")
    assert st["tun_ip"] == ""


def test_zz_up_with_profile_connects_at_start(microvm_bin, bed, agent, tmp_path):
    prof = tmp_path / "start.ovpn"
    prof.write_text(bed.profile())
    app2 = Appliance(microvm_bin, bed.client.name, tmp_path, secret_file=agent.secret_file,
                     extra=["--profile", str(prof), "--user", "alice", "--password-stdin"],
                     stdin=vpnlib.USERS["alice"] + "\n")
    try:
        out = "".join(app2.startup)
        assert "VPN connected, tunnel address 10.77.8." in out
        assert vpnlib.USERS["alice"] not in out
        assert vpn_state(app2)["state"] == "connected"
        assert "start.ovpn" in app2.cli("vpn", "profiles").stdout.split()
        r = curl("--socks5-hostname", f"127.0.0.1:{app2.port}",
                 f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt")
        assert r.stdout == PAGE
        assert app2.cli("vpn", "disconnect").returncode == 0
    finally:
        app2.close()
