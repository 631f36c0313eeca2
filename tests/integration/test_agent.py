"""microvm-agent against a real OpenVPN 2.6 server, all in test-made network namespaces.

One server (module scope) serves every test; the agent runs over TCP in the client
namespace. See vpnlib.py for the test bed.
"""
import ipaddress
import os
import json
import pathlib
import signal
import socket
import subprocess
import time

import pytest

import authlib
import sandboxlib
import vpnlib

pytestmark = pytest.mark.skipif(vpnlib.needs_root() is not None,
                                reason=vpnlib.needs_root() or "")


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


# -- sandbox (docs/security.md, "Sandboxing") -----------------------------------------------

def test_agent_and_openvpn_are_sandboxed(agent, profile):
    # The agent: seccomp filter, no_new_privs, only CAP_NET_ADMIN (tun, routes),
    # CAP_SETUID/CAP_SETGID (a profile's "user nobody") and CAP_KILL left, bounding set too.
    keep = sandboxlib.AGENT_CAPS
    st = sandboxlib.status(agent.pid)
    sandboxlib.assert_filtered(st, capeff=keep)
    assert sandboxlib.caps(st, "CapBnd") == keep
    assert sandboxlib.caps(st, "CapPrm") == keep
    # OpenVPN, exec'd under the agent's filter, works and got no more than the agent had.
    connect_alice(agent, profile)
    ovpn = agent.openvpn_pid()
    assert ovpn
    st = sandboxlib.status(ovpn)
    sandboxlib.assert_filtered(st, capeff=keep)
    assert sandboxlib.caps(st, "CapBnd") == keep


def test_openvpn_drops_to_nobody_under_the_sandbox(agent, bed):
    # A profile's "user"/"group": OpenVPN needs CAP_SETUID/CAP_SETGID and setgroups() etc.
    # from the agent's list, then runs as nobody with CAP_NET_ADMIN only (which it keeps to
    # take its routes down); the agent can still stop it (CAP_KILL).
    assert agent.request({"cmd": "vpn_set_profile", "name": "nobody.ovpn",
                          "content": bed.profile(extra="user nobody\ngroup nogroup\n")}) \
        == {"status": "ok"}
    try:
        connect_alice(agent, "nobody.ovpn")
        st = sandboxlib.status(agent.openvpn_pid())
        assert st["Uid"].split()[:2] == ["65534", "65534"], st
        sandboxlib.assert_filtered(st, capeff=1 << sandboxlib.CAP_NET_ADMIN)
    finally:
        assert agent.request({"cmd": "vpn_stop"})["status"] == "disconnected"


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
    s = agent.connect(agent.control_port)
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
        c.send_raw(b'{"cmd":"ping","pad":"' + b"x" * (8 * 1024 * 1024 + 10))
        r = c.read_line()
        assert r["status"] == "error" and "longer than 8 MiB" in r["error"]
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
    # an unknown name is refused with the names that are stored
    r = agent.request({"cmd": "vpn_start", "profile": "missing.ovpn"})
    assert r["status"] == "error"
    assert r["error"].startswith("no such profile 'missing.ovpn' (stored: "), r
    assert "Z.conf, a_1.ovpn, b-2.ovpn" in r["error"], r


def test_large_profile(agent):
    content = "".join(f"# line {i:07d} with some padding to make it longer\n"
                      for i in range(16000))          # ~880 KiB
    assert 800_000 < len(content) < 1024 * 1024 - 100
    with agent.conn() as c:
        assert c.request({"cmd": "vpn_set_profile", "name": "big.ovpn",
                          "content": content}) == {"status": "ok"}
        assert c.request({"cmd": "ping"}) == {"status": "pong"}
    assert (agent.dir / "state" / "profiles" / "big.ovpn").read_text() == content


def test_profile_of_exactly_1mib(agent):
    # worst case for JSON: control characters are escaped as \u00XX (6 bytes each)
    # (comment lines, so that the profile passes the allow-list)
    line = "#" + "\x01\x02\t" * 84 + "\n"
    content = (line * (1024 * 1024 // len(line) + 1))[:1024 * 1024]
    assert len(content.encode()) == 1024 * 1024
    line = json.dumps({"cmd": "vpn_set_profile", "name": "max.ovpn", "content": content})
    assert len(line) > 4 * 1024 * 1024
    with agent.conn() as c:
        c.send_raw(line.encode() + b"\n")
        assert c.read_line() == {"status": "ok"}
        r = c.request({"cmd": "vpn_set_profile", "name": "over.ovpn", "content": content + "x"})
        assert r["status"] == "error" and "larger than 1 MiB" in r["error"], r
        assert c.request({"cmd": "ping"}) == {"status": "pong"}
    assert (agent.dir / "state" / "profiles" / "max.ovpn").read_bytes() == content.encode()
    assert not (agent.dir / "state" / "profiles" / "over.ovpn").exists()


def test_status_when_idle(agent):
    assert agent.request({"cmd": "vpn_status"})["status"] == "disconnected"
    assert agent.request({"cmd": "vpn_stop"}) == {"status": "disconnected"}
    r = agent.request({"cmd": "vpn_check_webauth"})
    assert r["status"] == "error"


# -- VPN ------------------------------------------------------------------------------------

def tun_exists(bed, dev="tun0"):
    return bed.client.run("ip", "link", "show", dev, check=False).returncode == 0


def test_connect_status_and_stop(agent, bed, profile):
    r = connect_alice(agent, profile)
    assert ipaddress.ip_address(r["tun_ip"]) in ipaddress.ip_network(vpnlib.VPN_NET + "/24")
    assert r["tun_ip"] != vpnlib.VPN_SERVER_IP
    st = agent.request({"cmd": "vpn_status"})
    assert st["status"] == "connected" and st["tun_ip"] == r["tun_ip"]
    assert st["profile"] == profile
    assert tun_exists(bed)
    # the password never shows up: not in answers, not in the agent's or OpenVPN's log,
    # not on OpenVPN's command line
    pid = agent.openvpn_pid()
    cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    secret = vpnlib.USERS["alice"]
    for text in (json.dumps(st), agent.log_path.read_text(), cmdline,
                 (agent.dir / "run" / "openvpn.log").read_text()):
        assert secret not in text
    # a second vpn_start with the same profile returns the current state; another
    # profile is refused
    again = agent.request({"cmd": "vpn_start", "profile": profile})
    assert again == {"status": "connected", "tun_ip": r["tun_ip"]}
    assert agent.request({"cmd": "vpn_set_profile", "name": "other.ovpn",
                          "content": bed.profile()}) == {"status": "ok"}
    other = agent.request({"cmd": "vpn_start", "profile": "other.ovpn"})
    assert other["status"] == "error" and "vpn_stop first" in other["error"]

    assert agent.request({"cmd": "vpn_stop"}) == {"status": "disconnected"}
    assert not tun_exists(bed)
    assert agent.openvpn_pid() is None
    assert agent.request({"cmd": "vpn_status"})["status"] == "disconnected"


def test_profile_named_with_or_without_ovpn(agent, bed, profile):
    # stored as "test.ovpn": "test" starts it, and "test.ovpn" then joins the same session
    r = agent.request({"cmd": "vpn_start", "profile": "test", "username": "alice",
                       "password": vpnlib.USERS["alice"]})
    assert r["status"] == "connected", r
    st = agent.request({"cmd": "vpn_status"})
    assert st["status"] == "connected" and st["profile"] == "test.ovpn", st
    assert agent.request({"cmd": "vpn_start", "profile": "test.ovpn"}) == r
    assert agent.request({"cmd": "vpn_start", "profile": "test"}) == r
    assert agent.request({"cmd": "vpn_stop"}) == {"status": "disconnected"}
    # the other way round: stored without the extension, asked for with it
    assert agent.request({"cmd": "vpn_set_profile", "name": "plain",
                          "content": bed.profile()}) == {"status": "ok"}
    r = agent.request({"cmd": "vpn_start", "profile": "plain.ovpn", "username": "alice",
                       "password": vpnlib.USERS["alice"]})
    assert r["status"] == "connected", r
    assert agent.request({"cmd": "vpn_status"})["profile"] == "plain"


def test_wrong_password(agent, bed, profile):
    r = agent.request({"cmd": "vpn_start", "profile": profile, "username": "alice",
                       "password": "wrong"})
    assert r["status"] == "error" and "authentication failed" in r["error"], r
    vpnlib.wait_for(lambda: agent.openvpn_pid() is None, 10, "openvpn to exit")
    st = agent.request({"cmd": "vpn_status"})
    assert st["status"] == "disconnected" and "authentication failed" in st["reason"]
    assert all(state != "Z" for _, state, _ in agent.children())


def test_retry_right_after_failure(bed, agent_bin, tmp_path):
    # OpenVPN behind a wrapper that lingers 1.5 s after OpenVPN exits: a retry right after
    # "authentication failed" arrives while the old session is still exiting. It must wait
    # for that exit and start afresh, not get the old error.
    wrapper = tmp_path / "slow-openvpn"
    wrapper.write_text(f"""#!/bin/sh
{vpnlib.OPENVPN} "$@" &
child=$!
trap 'kill -TERM $child; wait $child; sleep 1.5; exit 0' TERM
wait $child
sleep 1.5
""")
    wrapper.chmod(0o755)
    with vpnlib.Agent(bed, agent_bin, control_port=1029, proxy_port=7606,
                      args=["--openvpn", str(wrapper), "--tun-dev", "tun2"]) as a:
        assert a.request({"cmd": "vpn_set_profile", "name": "p.ovpn",
                          "content": bed.profile()}) == {"status": "ok"}
        with a.conn() as c:
            r = c.request({"cmd": "vpn_start", "profile": "p.ovpn", "username": "alice",
                           "password": "wrong"})
            assert r["status"] == "error" and "authentication failed" in r["error"]
            t0 = time.monotonic()
            r = c.request({"cmd": "vpn_start", "profile": "p.ovpn", "username": "alice",
                           "password": vpnlib.USERS["alice"]})
            assert r["status"] == "connected", r
            assert time.monotonic() - t0 > 1.0      # it did wait for the old session
            assert c.request({"cmd": "vpn_stop"}) == {"status": "disconnected"}


def test_stop_escalates_to_sigkill(bed, agent_bin, tmp_path):
    # A supervised process that ignores SIGTERM: vpn_stop answers after the SIGKILL that
    # follows 5 s later. OpenVPN itself (a grandchild here) exits once its management
    # connection is gone.
    wrapper = tmp_path / "stubborn-openvpn"
    wrapper.write_text(f"""#!/bin/sh
trap '' TERM
{vpnlib.OPENVPN} "$@" &
echo $! > {tmp_path}/ovpn.pid
while :; do wait; done
""")
    wrapper.chmod(0o755)
    with vpnlib.Agent(bed, agent_bin, control_port=1030, proxy_port=7607,
                      args=["--openvpn", str(wrapper), "--tun-dev", "tun3"]) as a:
        assert a.request({"cmd": "vpn_set_profile", "name": "p.ovpn",
                          "content": bed.profile()}) == {"status": "ok"}
        connect_alice(a, "p.ovpn")
        ovpn = int((tmp_path / "ovpn.pid").read_text())
        t0 = time.monotonic()
        assert a.request({"cmd": "vpn_stop"}) == {"status": "disconnected"}
        assert 4.5 < time.monotonic() - t0 < 8
        assert a.children() == []
        vpnlib.wait_for(lambda: not os.path.exists(f"/proc/{ovpn}/cmdline") or
                        not open(f"/proc/{ovpn}/cmdline").read(), 10,
                        "openvpn to exit after losing its management connection")
        assert "SIGKILL" in a.log_path.read_text()


def test_missing_credentials(agent, bed, profile):
    # The server wants a username/password; the profile asks for it, the request has none.
    assert agent.request({"cmd": "vpn_set_profile", "name": "up.ovpn",
                          "content": bed.profile(extra="auth-user-pass\n")}) == {"status": "ok"}
    r = agent.request({"cmd": "vpn_start", "profile": "up.ovpn"})
    assert r["status"] == "error" and "username and password" in r["error"], r


def test_broken_profile(agent):
    # an allowed directive with a value OpenVPN refuses: OpenVPN's own error comes back
    assert agent.request({"cmd": "vpn_set_profile", "name": "broken.ovpn",
                          "content": "client\nproto nosuchproto\n"}) == {"status": "ok"}
    r = agent.request({"cmd": "vpn_start", "profile": "broken.ovpn", "username": "a",
                       "password": "b"})
    assert r["status"] == "error" and "nosuchproto" in r["error"], r


# -- profiles: the import allow-list ---------------------------------------------------------

def refusal(line, directive, why):
    return f"line {line}: '{directive}' is not allowed in an imported profile: {why}"


def test_profile_findings_refused_at_upload(agent, bed, tmp_path):
    # bed.profile() has 7 lines before `extra`: the offending directive is on line 8
    marker = tmp_path / "pwned"
    passwd = pathlib.Path("/etc/passwd").read_bytes()
    store = agent.dir / "state" / "profiles"
    cases = [
        (f"script-security 2\nup \"/bin/sh -c 'id >{marker}'\"\n",
         refusal(8, "script-security", "above 1 it lets OpenVPN run programs")),
        (f"up \"/bin/sh -c 'id >{marker}'\"\n", refusal(8, "up", "it runs a program")),
        ("log /etc/pwned-log\n", refusal(8, "log", "it writes a file")),
        ("writepid /etc/passwd\n", refusal(8, "writepid", "it writes a file")),
        ("ca /etc/shadow\n", refusal(8, "ca", "it names a file; put the content inline as "
                                       "<ca>...</ca>")),
        ("<up>\n/bin/sh\n</up>\n", "line 8: <up> is not allowed in an imported profile: only "
                                  "keys, certificates and <connection> blocks may be inline"),
    ]
    for extra, want in cases:
        r = agent.request({"cmd": "vpn_set_profile", "name": "evil.ovpn",
                           "content": bed.profile(extra=extra)})
        assert r == {"status": "error", "error": want}
        assert not (store / "evil.ovpn").exists()
        assert "evil.ovpn" not in agent.request({"cmd": "list_profiles"})["profiles"]
    assert not marker.exists() and not pathlib.Path("/etc/pwned-log").exists()
    assert pathlib.Path("/etc/passwd").read_bytes() == passwd
    assert "evil.ovpn refused: line 8" in (agent.dir / "agent.log").read_text()


def test_stored_profile_checked_again_at_start(agent, bed, tmp_path):
    # a profile that reached the store without an upload (an older agent, a disk image)
    marker = tmp_path / "pwned"
    (agent.dir / "state" / "profiles" / "planted.ovpn").write_text(
        bed.profile(extra=f"script-security 2\nup \"/bin/sh -c 'touch {marker}'\"\n"))
    r = agent.request({"cmd": "vpn_start", "profile": "planted.ovpn", "username": "alice",
                       "password": vpnlib.USERS["alice"]})
    assert r == {"status": "error", "error": "profile planted.ovpn refused: " +
                 refusal(8, "script-security", "above 1 it lets OpenVPN run programs")}
    assert agent.openvpn_pid() is None
    assert not marker.exists()


@pytest.mark.parametrize("scripts_allowed", [False, True], ids=["as-launched", "control"])
def test_openvpn_launch_keeps_scripts_off(bed, agent_bin, tmp_path, scripts_allowed):
    # The checker bypassed altogether: an "openvpn" wrapper puts options with scripts in
    # front of the agent's arguments, exactly where a profile's own lines end up. The agent's
    # trailing --script-security 1 must win. The control run appends --script-security 2
    # after the agent's arguments to show that the script would run otherwise.
    marker = tmp_path / "up-ran"
    evil = tmp_path / "evil.conf"
    evil.write_text(f"script-security 2\nup \"/bin/sh -c 'touch {marker}'\"\n")
    wrapper = tmp_path / "openvpn"
    tail = " --script-security 2" if scripts_allowed else ""
    wrapper.write_text(f'#!/bin/sh\nexec {vpnlib.OPENVPN} --config {evil} "$@"{tail}\n')
    wrapper.chmod(0o755)
    with vpnlib.Agent(bed, agent_bin, control_port=1035, proxy_port=7612,
                      args=["--openvpn", str(wrapper), "--tun-dev", "tun5",
                            "--vpn-timeout", "30"]) as a:
        assert a.request({"cmd": "vpn_set_profile", "name": "t.ovpn",
                          "content": bed.profile()}) == {"status": "ok"}
        r = a.request({"cmd": "vpn_start", "profile": "t.ovpn", "username": "alice",
                       "password": vpnlib.USERS["alice"]})
        log = (a.dir / "run" / "openvpn.log").read_text()
        a.request({"cmd": "vpn_stop"})
    if scripts_allowed:
        assert r["status"] == "connected", r
        assert marker.exists(), log
    else:
        assert not marker.exists(), log
        assert "script-security" in log, log


def test_unreachable_server_times_out(agent, bed):
    # Nobody answers on this port: the outcome is a timeout error within the given time.
    assert agent.request({"cmd": "vpn_set_profile", "name": "dead.ovpn",
                          "content": bed.profile(port=1195)}) == {"status": "ok"}
    t0 = time.monotonic()
    r = agent.request({"cmd": "vpn_start", "profile": "dead.ovpn", "username": "alice",
                       "password": "x", "timeout": 3})
    took = time.monotonic() - t0
    assert r["status"] == "error" and "timed out" in r["error"], r
    assert 2.5 < took < 10
    vpnlib.wait_for(lambda: agent.openvpn_pid() is None, 10, "openvpn to exit")
    # vpn_stop while a vpn_start waits: both get their answer at once
    with agent.conn() as c1, agent.conn() as c2:
        c1.send_raw(json.dumps({"cmd": "vpn_start", "profile": "dead.ovpn", "username": "a",
                                "password": "b", "timeout": 60}).encode() + b"\n")
        vpnlib.wait_for(agent.openvpn_pid, 10, "openvpn to start")
        # the same connection's next request waits behind the first
        c1.send_raw(b'{"cmd":"ping"}\n')
        t0 = time.monotonic()
        assert c2.request({"cmd": "vpn_stop"}) == {"status": "disconnected"}
        assert c1.read_line(10) == {"status": "error", "error": "vpn stopped"}
        assert c1.read_line(10) == {"status": "pong"}
        assert time.monotonic() - t0 < 6
    assert agent.openvpn_pid() is None


def test_webauth_approved(agent, bed, profile):
    with agent.conn() as c:
        r = c.request({"cmd": "vpn_start", "profile": profile, "username": "webok",
                       "password": "web"})
        assert r == {"status": "webauth_required",
                     "auth_url": "http://auth.test/login/webok"}
        st = c.request({"cmd": "vpn_status"})
        assert st["status"] == "webauth_required" and st["auth_url"] == r["auth_url"]
        assert c.request({"cmd": "vpn_check_webauth"}) == r
        # a second vpn_start of the same profile joins the session and gets its state
        assert agent.request({"cmd": "vpn_start", "profile": profile}) == r
        bed.approve("webok")

        def done():
            a = c.request({"cmd": "vpn_check_webauth"})
            assert a["status"] in ("webauth_required", "connected"), a
            return a if a["status"] == "connected" else None
        a = vpnlib.wait_for(done, 30, "web authentication to complete", interval=0.5)
        assert ipaddress.ip_address(a["tun_ip"]) in ipaddress.ip_network(vpnlib.VPN_NET + "/24")
        assert c.request({"cmd": "vpn_status"})["status"] == "connected"


def test_webauth_denied(agent, bed, profile):
    r = agent.request({"cmd": "vpn_start", "profile": profile, "username": "webno",
                       "password": "web"})
    assert r["status"] == "webauth_required"
    bed.deny("webno")

    def done():
        a = agent.request({"cmd": "vpn_check_webauth"})
        return a if a["status"] != "webauth_required" else None
    a = vpnlib.wait_for(done, 30, "web authentication to be denied", interval=0.5)
    assert a["status"] == "error" and "authentication failed" in a["error"], a
    vpnlib.wait_for(lambda: agent.openvpn_pid() is None, 10, "openvpn to exit")


def test_webauth_timeout(agent, bed, profile):
    # The server gives this user 3 s to finish; nobody approves.
    r = agent.request({"cmd": "vpn_start", "profile": profile, "username": "webslow",
                       "password": "web"})
    assert r["status"] == "webauth_required"

    def done():
        a = agent.request({"cmd": "vpn_check_webauth"})
        return a if a["status"] != "webauth_required" else None
    a = vpnlib.wait_for(done, 30, "web authentication to time out", interval=0.5)
    assert a["status"] == "error" and "web authentication" in a["error"], a
    vpnlib.wait_for(lambda: agent.openvpn_pid() is None, 10, "openvpn to exit")
    bed.pending("webslow")     # consume the server's note


def test_openvpn_killed(agent, bed, profile):
    connect_alice(agent, profile)
    pid = agent.openvpn_pid()
    os.kill(pid, signal.SIGKILL)

    def gone():
        st = agent.request({"cmd": "vpn_status"})
        return st if st["status"] == "disconnected" else None
    st = vpnlib.wait_for(gone, 10, "status disconnected")
    assert "killed by signal 9" in st["reason"]
    # reaped: no zombie left behind
    assert agent.children() == []
    assert not tun_exists(bed)


# -- inbound proxy --------------------------------------------------------------------------

def read_all(s, timeout=10):
    s.settimeout(timeout)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data
        data += d


def test_proxy_through_tunnel(agent, bed, profile):
    connect_alice(agent, profile)
    for host in (vpnlib.TARGET_NAME, vpnlib.VPN_SERVER_IP):
        s, status = agent.proxy(host, vpnlib.TARGET_PORT)
        with s:
            assert status == 0x00, host
            banner = b""
            while not banner.endswith(b"\n"):
                banner += s.recv(100)
            assert banner == vpnlib.TARGET_BANNER
            s.sendall(b"ping through the tunnel\n")
            # half-close: our EOF reaches the target, its answer still reaches us
            s.shutdown(socket.SHUT_WR)
            assert read_all(s) == b"ping through the tunnel\n" + vpnlib.TARGET_BYE
    # a closed port behind the tunnel: refused
    s, status = agent.proxy(vpnlib.VPN_SERVER_IP, 7009)
    s.close()
    assert status == 0x05
    # a name the VPN's DNS server does not know
    s, status = agent.proxy("nosuch.vpn.test", vpnlib.TARGET_PORT)
    s.close()
    assert status == 0x04


def test_proxy_without_vpn(agent, bed):
    agent.request({"cmd": "vpn_stop"})
    # the target is only reachable through the tunnel
    s, status = agent.proxy(vpnlib.VPN_SERVER_IP, vpnlib.TARGET_PORT)
    s.close()
    assert status == 0x03
    # unknown to the system resolver too
    s, status = agent.proxy(vpnlib.TARGET_NAME, vpnlib.TARGET_PORT)
    s.close()
    assert status == 0x04
    # nothing listens on this port of the server namespace (reachable over the veth)
    s, status = agent.proxy(vpnlib.SERVER_IP, 9)
    s.close()
    assert status == 0x05


@pytest.mark.parametrize("host,port", [
    ("127.0.0.1", 1025), ("127.0.0.1", 7602), ("localhost", 1025), ("::1", 1025),
    ("::ffff:127.0.0.1", 7602), ("127.9.9.9", 1025), ("0.0.0.0", 1025), ("::", 7602),
    (vpnlib.CLIENT_IP, 1025), (vpnlib.CLIENT_IP, 7602), ("10.0.2.2", 1080),
    ("10.0.2.3", 53), ("169.254.169.254", 80), ("fe80::1", 22), ("224.0.0.251", 5353),
    ("ff02::1", 22),
])
def test_proxy_destination_policy(agent, host, port):
    # The guest's own ports and addresses, loopback, the user-mode network's gateway and
    # DNS, link-local, unspecified, multicast: status 0x02, and nothing was connected.
    s, status = agent.proxy(host, port)
    assert status == 0x02
    assert read_all(s) == b""
    s.close()
    assert agent.request({"cmd": "ping"}) == {"status": "pong"}


def test_proxy_policy_follows_address_changes(agent, bed):
    # The agent keeps the guest's own addresses between connections (guest/agent/localaddr.c);
    # an address added or removed by anyone, without any VPN change, counts from the very
    # next connection on.  Its debug line "listed again" counts the listings: kept while
    # nothing changes (listing per connection, as without the netlink socket, fails here),
    # made again after each change.
    extra = "10.99.0.1"

    def proxy_status():
        s, status = agent.proxy(extra, 1025)
        s.close()
        return status

    def listed():
        return agent.log_count("the guest's addresses listed again")

    assert proxy_status() != 0x02  # not ours yet (and no route to it)
    n = listed()
    assert n >= 1
    for _ in range(4):
        assert proxy_status() != 0x02
    # the cache was used (a background change, an IPv6 address settling, may add one)
    assert listed() - n <= 1
    n = listed()
    bed.client.run("ip", "addr", "add", extra + "/32", "dev", "lo")
    try:
        assert proxy_status() == 0x02
        assert listed() > n
    finally:
        bed.client.run("ip", "addr", "del", extra + "/32", "dev", "lo")
    n = listed()
    assert proxy_status() != 0x02
    assert listed() > n


def test_proxy_policy_covers_the_tunnel_address(agent, bed, profile):
    # the tun address appears with the VPN: it is the guest's own too
    tun_ip = connect_alice(agent, profile)["tun_ip"]
    s, status = agent.proxy(tun_ip, 1025)
    s.close()
    assert status == 0x02
    # while the VPN's side of the tunnel stays reachable
    s, status = agent.proxy(vpnlib.VPN_SERVER_IP, vpnlib.TARGET_PORT)
    assert status == 0x00
    s.close()


@pytest.mark.parametrize("raw", [b"\x00", b"\x00rest", b"\x05ab", b"\x05abcde\x00",
                                 b"\x09127.0.0.1\x00\x00", b"\x03a/b\x00\x16",
                                 b"\x03a b\x00\x16"],
                         ids=["len0", "len0-more", "truncated-host", "truncated-port",
                              "port0", "slash", "space"])
def test_proxy_malformed_handshake(agent, raw):
    s = agent.connect(agent.proxy_port)
    with s:
        s.sendall(raw)
        if raw[0] and len(raw) < raw[0] + 3 and b"/" not in raw and b" " not in raw:
            s.shutdown(socket.SHUT_WR)      # truncated: the agent sees EOF
        assert read_all(s) == b"\x01"
    assert agent.request({"cmd": "ping"}) == {"status": "pong"}


def test_proxy_timeout_does_not_block_control(agent, bed):
    # SYNs to this port vanish: the connect can only time out (--connect-timeout 3).
    bed.server.run("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "7011", "-j", "DROP")
    try:
        t0 = time.monotonic()
        s = agent.connect(agent.proxy_port)
        s.sendall(b"\x09" + vpnlib.SERVER_IP.encode() + (7011).to_bytes(2, "big"))
        time.sleep(0.3)
        # meanwhile the control port answers at once
        t1 = time.monotonic()
        assert agent.request({"cmd": "ping"}) == {"status": "pong"}
        assert time.monotonic() - t1 < 1
        assert read_all(s, 15) == b"\x06"
        assert 2.5 < time.monotonic() - t0 < 8
        s.close()
    finally:
        bed.server.run("iptables", "-D", "INPUT", "-p", "tcp", "--dport", "7011", "-j", "DROP")


def test_thousand_relays(agent):
    import resource
    import selectors
    import threading
    n = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    # the echo server sits in the server namespace: loopback is not a proxy destination
    lsock = agent.bed.server.call(lambda: socket.create_server((vpnlib.SERVER_IP, 0),
                                                               backlog=2048))
    port = lsock.getsockname()[1]
    stop = threading.Event()

    def echo():
        sel = selectors.DefaultSelector()
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in sel.select(0.2):
                if key.fileobj is lsock:
                    try:
                        c, _ = lsock.accept()
                    except BlockingIOError:
                        continue
                    sel.register(c, selectors.EVENT_READ)
                    continue
                c = key.fileobj
                d = c.recv(65536)
                if d:
                    c.sendall(d)
                else:
                    c.shutdown(socket.SHUT_WR)
                    sel.unregister(c)
                    c.close()
        sel.close()

    t = threading.Thread(target=echo)
    t.start()
    socks = []
    try:
        def open_all():
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", agent.proxy_port), 10)
                authlib.authenticate(s, agent.secret, agent.proxy_port)
                s.sendall(bytes([len(vpnlib.SERVER_IP)]) + vpnlib.SERVER_IP.encode() +
                          port.to_bytes(2, "big") + f"msg-{i}".encode())
                socks.append(s)
        agent.ns.call(open_all)
        # all are open at once before any is finished
        assert agent.request({"cmd": "ping"}) == {"status": "pong"}
        for s in socks:
            s.shutdown(socket.SHUT_WR)
        sel = selectors.DefaultSelector()
        got = {}
        for i, s in enumerate(socks):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
            got[i] = b""
        left = n
        end = time.monotonic() + 60
        while left and time.monotonic() < end:
            for key, _ in sel.select(1):
                d = key.fileobj.recv(65536)
                if d:
                    got[key.data] += d
                else:
                    sel.unregister(key.fileobj)
                    left -= 1
        sel.close()
        assert left == 0
        for i in range(n):
            assert got[i] == b"\x00" + f"msg-{i}".encode(), i
    finally:
        stop.set()
        t.join()
        for s in socks:
            s.close()
        lsock.close()


# -- life cycle -----------------------------------------------------------------------------

def test_auth_secret_file_and_bad_options(bed, agent_bin, tmp_path):
    secret = "0123456789ABCDEF" * 4
    f = tmp_path / "secret"
    # upper case is accepted; get_auth_secret answers lower case; the key is the same bytes
    with vpnlib.Agent(bed, agent_bin, control_port=1027, proxy_port=7604, secret=secret,
                      args=["--openvpn", "/nonexistent/openvpn"]) as a:
        assert a.request({"cmd": "get_auth_secret"}) == {"status": "ok",
                                                          "auth_secret": secret.lower()}
        # no OpenVPN binary: a clear error, and the child is reaped
        assert a.request({"cmd": "vpn_set_profile", "name": "p",
                          "content": "client\n"})["status"] == "ok"
        r = a.request({"cmd": "vpn_start", "profile": "p"})
        assert r["status"] == "error" and "cannot run /nonexistent/openvpn" in r["error"], r
        assert a.children() == []
    authlib.write_secret(f, "tooshort")
    r = subprocess.run([str(agent_bin), "--transport", "tcp", "--auth-secret-file", str(f),
                        "--state-dir", str(tmp_path / "s"), "--run-dir", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "64 hex" in r.stderr
    r = subprocess.run([str(agent_bin), "--transport", "carrier-pigeon"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    r = subprocess.run([str(agent_bin), "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "--control-port" in r.stdout


def test_vsock_transport_listens(bed, agent_bin, tmp_path):
    # No vsock peer here (no vsock_loopback), but the agent must bind both vsock ports.
    port = 40000 + os.getpid() % 20000
    p = subprocess.Popen([str(agent_bin), "--transport", "vsock", "--control-port", str(port),
                          "--proxy-port", str(port + 1), "--state-dir", str(tmp_path / "s"),
                          "--run-dir", str(tmp_path / "r")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline()
        assert "listening (vsock)" in line, line
        for q in (port, port + 1):
            s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            with s, pytest.raises(OSError):
                s.bind((socket.VMADDR_CID_ANY, q))
    finally:
        p.terminate()
        assert p.wait(10) == 0
        p.stdout.close()


def test_poweroff_on_shutdown(bed, agent_bin):
    # As PID 1 of a PID namespace, reboot(RB_POWER_OFF) ends the namespace with SIGINT
    # (what a VM would see as power-off), visible as unshare's exit status.
    a = vpnlib.Agent(bed, agent_bin, control_port=1028, proxy_port=7605,
                     args=["--poweroff-on-shutdown"], wrapper=["unshare", "--pid", "--fork"])
    with a:
        assert a.request({"cmd": "shutdown"}) == {"status": "ok"}
        rc = a.proc.wait(15)
    assert rc in (-signal.SIGINT, 128 + signal.SIGINT), rc
    assert "powering off" in a.log_path.read_text()


def test_shutdown_stops_openvpn_and_exits(bed, agent_bin):
    a = vpnlib.Agent(bed, agent_bin, control_port=1026, proxy_port=7603,
                     args=["--tun-dev", "tun1"])
    with a:
        assert a.request({"cmd": "vpn_set_profile", "name": "p.ovpn",
                          "content": bed.profile()}) == {"status": "ok"}
        connect_alice(a, "p.ovpn")
        assert tun_exists(bed, "tun1")
        ovpn = a.openvpn_pid()
        with a.conn() as c:
            assert c.request({"cmd": "shutdown"}) == {"status": "ok"}
        assert a.proc.wait(15) == 100
        assert not os.path.exists(f"/proc/{ovpn}")
        assert not tun_exists(bed, "tun1")
