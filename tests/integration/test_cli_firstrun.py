"""The first minutes of a new user with `microvm up`, `vpn`, `status` (root: namespaces).

`microvm up` attaches to microvm-agent in vpnlib.Testbed's client namespace, with a real
OpenVPN server behind it.  Checked here: a profile imported as corp.ovpn is connected as
`corp` (and the other way round), an unknown name lists the stored ones and says what to do,
an error does not linger in `status` once the next command succeeds, `status` starts with one
line that explains the state, and `vpn connect` and `up` show progress on a terminal but not
in a script.
"""
import json
import subprocess
import threading

import pytest

import authlib
import vpnlib
from ptylib import Pty
from sockslib import Appliance, netns


@pytest.fixture(scope="module")
def bed(vpn_bed):
    return vpn_bed


@pytest.fixture(scope="module")
def agent(vpn_agent):
    return vpn_agent


@pytest.fixture(scope="module")
def app(microvm_bin, bed, agent, tmp_path_factory):
    d = tmp_path_factory.mktemp("up")
    a = Appliance(microvm_bin, bed.client.name, d, secret_file=agent.secret_file)
    (d / "corp.ovpn").write_text(bed.profile())
    r = a.cli("vpn", "import", str(d / "corp.ovpn"))
    assert r.returncode == 0 and r.stdout == "imported corp.ovpn\n", r.stdout + r.stderr
    yield a
    a.close()


def connect(app, name, user="alice", password=None):
    pw = vpnlib.USERS[user] if password is None else password
    return app.cli("vpn", "connect", name, "--user", user, "--password-stdin",
                   input=pw + "\n", timeout=120)


def status(app):
    r = app.cli("status", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def headline(app):
    r = app.cli("status")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("microvm:   "), r.stdout
    return first[len("microvm:   "):], r.stdout


def test_a_unknown_name_lists_stored_ones_and_does_not_linger(app):
    assert headline(app)[0].startswith("up, no VPN connected: connect one with 'microvm vpn "
                                       "connect NAME --user USER'")
    r = connect(app, "nope")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "microvm vpn connect: no such profile 'nope' (stored: corp.ovpn)",
        "  next: import it with 'microvm vpn import FILE'; 'microvm vpn profiles' lists the "
        "stored ones"], r.stderr
    assert "no such profile 'nope'" in status(app)["last_error"]
    # the README's spelling: imported as corp.ovpn, connected as corp
    r = connect(app, "corp")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("connected: corp, tunnel address 10.77.8."), r.stdout
    st = status(app)
    assert st["last_error"] == "", st
    assert st["vpn"]["state"] == "connected" and st["vpn"]["profile"] == "corp.ovpn", st
    text, out = headline(app)
    assert text == ("up, the VPN is connected: connections through the SOCKS5 proxy below "
                    "reach it"), out
    assert "error:" not in out
    # the other spelling names the same session: it joins instead of being refused
    r = connect(app, "corp.ovpn")
    assert r.returncode == 0, r.stderr
    r = app.cli("vpn", "disconnect")
    assert r.returncode == 0, r.stderr
    assert headline(app)[0].startswith("up, no VPN connected")


def test_b_wrong_password_says_what_to_do(app):
    r = connect(app, "corp", password="wrong")
    assert r.returncode == 1
    assert "authentication failed" in r.stderr
    assert "  next: check --user and the password, then connect again" in r.stderr
    _, out = headline(app)
    assert "error:     authentication failed" in out
    # a successful import is the next command: the error is gone
    r = app.cli("vpn", "import", str(app.control).rsplit("/", 2)[0] + "/corp.ovpn")
    assert r.returncode == 0, r.stderr
    assert status(app)["last_error"] == ""


def test_c_progress_on_a_terminal(app, bed):
    with Pty([app.bin, "vpn", "connect", "corp", "--user", "webok"], env=app.env) as t:
        t.expect("VPN password:")
        t.send(vpnlib.USERS["webok"] + "\n")
        t.expect("http://auth.test/login/webok")
        t.expect("waiting for web authentication...")
        text, _ = headline(app)
        assert text.startswith("up, the VPN server waits for you to log in"), text
        bed.approve("webok")
        assert t.wait(120) == 0, t.output
        assert "connected: corp, tunnel address" in t.output
        assert "pa" not in t.output.split("VPN password:")[1].split("\n")[0]   # no echo
    assert app.cli("vpn", "disconnect").returncode == 0


def test_d_quiet_in_scripts(app, bed):
    out = {}

    def run():
        out["r"] = connect(app, "corp", user="webok")
    t = threading.Thread(target=run)
    t.start()
    bed.approve("webok")
    t.join(120)
    r = out["r"]
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "Web authentication required. Open this URL in a browser:",
        "  http://auth.test/login/webok",
        r.stdout.splitlines()[2]]
    assert r.stdout.splitlines()[2].startswith("connected: corp, tunnel address")
    assert r.stderr == "", r.stderr      # no progress line, no carriage returns
    assert app.cli("vpn", "disconnect").returncode == 0


def test_e_status_when_the_agent_is_gone(app, agent):
    agent.stop()
    try:
        text, _ = headline(app)
        assert text == ("the VM runs but its agent does not answer (still booting, or it "
                        "failed): 'microvm console' shows the guest"), text
    finally:
        agent.start()


def test_f_up_shows_progress_on_a_terminal_only(microvm_bin, tmp_path):
    # an agent that never answers: `up` waits --boot-timeout seconds, then fails
    secret = tmp_path / "secret"
    authlib.write_secret(secret, authlib.new_secret())
    with netns("mvmfirst") as ns:
        argv = [str(microvm_bin), "up", "--agent-netns", f"/run/netns/{ns}", "--boot-timeout",
                "3", "--agent-secret-file", str(secret), "--control", str(tmp_path / "c.sock")]
        with Pty(argv) as t:
            t.expect("microvm up: waiting for the agent... 1 s", 20)
            assert t.wait(30) == 1
        assert "agent did not answer" in t.output
        assert "  next: --boot-timeout SEC waits longer" in t.output
        # the progress line is erased before the error is printed
        assert "\r\x1b[K" in t.output
        tail = t.output[t.output.rindex("\r\x1b[K"):]
        assert "waiting for the agent..." not in tail, tail
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 1 and "agent did not answer" in r.stderr
        assert "waiting for the agent..." not in r.stderr and "\r" not in r.stderr, r.stderr


def test_g_port_in_use_names_the_next_step(microvm_bin, app, bed, agent, tmp_path):
    r = subprocess.run([str(microvm_bin), "up", "--agent-netns", f"/run/netns/{bed.client.name}",
                        "--agent-secret-file", str(agent.secret_file),
                        "--socks", f"127.0.0.1:{app.port}", "--boot-timeout", "20",
                        "--control", str(tmp_path / "c.sock")], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "Address already in use" in r.stderr, r.stderr
    assert ("  next: 'microvm status' shows whether an appliance already runs; --socks "
            "127.0.0.1:PORT picks another port") in r.stderr, r.stderr
