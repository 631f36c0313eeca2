"""`microvm.exe up` under Wine, end to end with real peers (run by scripts/test-windows.sh).

    curl / OpenSSH (Linux)  ->  SOCKS5 127.0.0.1:1080 served by microvm.exe (Wine)
      ->  the agent's inbound proxy, reached through fake_wsl.exe's localhost forwarding
      ->  microvm-agent from the guest image, in the "WSL VM" (the distro, chrooted)
      ->  OpenVPN tunnel  ->  HTTP and sshd that exist only on the VPN address

The WSL VM's network is vpnlib's client namespace (FAKE_WSL_NETNS): its veth to the server
namespace stands for WSL2's NAT; the OpenVPN server, its DNS and the services live in the
server namespace (vpnlib.Testbed, vpnlib.vpn_services).  This process and Wine are the
"Windows" side: the namespace scripts/test-windows.sh made for the run (loopback only), so
port 1080 and the agent's forwarded ports collide with nothing.

One `up` serves every check (Wine starts processes slowly): the module fixture starts it,
the tests run in file order, and the last one is `down`.  Needs root, the cross build
(MICROVM_BUILD_WIN) and the guest image (MICROVM_TEST_ROOTFS, its Unix path).
"""
import json
import os
import pathlib
import pwd
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
import vpnlib  # noqa: E402

WINE = os.environ.get("WINE", "/usr/lib/wine/wine64")
BUILD = pathlib.Path(os.environ.get("MICROVM_BUILD_WIN", "build-win")).resolve()
PAGE = "only inside the VPN, served to microvm.exe\n"
HTTP_PORT = 8080
SSH_PORT = 2222
SOCKS = "127.0.0.1:1080"


def win_path(p):
    """The Windows name of a Unix path (Wine's drive Z: is /)."""
    return "Z:" + str(p).replace("/", "\\")


class MicrovmExe:
    """microvm.exe and the environment every run of it gets."""

    def __init__(self, tmp, client_ns):
        state = tmp / "fake-wsl"
        state.mkdir()
        self.exe = BUILD / "src/cli/microvm.exe"
        self.env = dict(os.environ, WINEDEBUG="-all",
                        MICROVM_WSL_EXE=win_path(BUILD / "tests/windows/fake_wsl.exe"),
                        FAKE_WSL_DIR=win_path(state),
                        FAKE_WSL_NETNS=f"/run/netns/{client_ns}",
                        MICROVM_WSL_START_TIMEOUT="60")
        self.env.setdefault("WINEPREFIX", str(BUILD / "wine"))
        # Wine sets %LOCALAPPDATA% from the prefix's profile (the environment's value does
        # not reach the program): microvm.exe's directory there starts empty, as for a new
        # user, and the double's distro registry (FAKE_WSL_DIR) is new too
        user = pwd.getpwuid(os.getuid()).pw_name
        self.appdir = (pathlib.Path(self.env["WINEPREFIX"]) / "drive_c/users" / user /
                       "AppData/Local/microvm")
        shutil.rmtree(self.appdir, ignore_errors=True)

    def popen(self, *args, **kw):
        return subprocess.Popen([WINE, str(self.exe), *args], env=self.env, **kw)

    def run(self, *args, input=None, timeout=60):
        return subprocess.run([WINE, str(self.exe), *args], env=self.env, input=input,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    vpnlib.needs_root()
    with vpnlib.Testbed(tmp_path_factory.mktemp("vpn")) as b:
        yield b


@pytest.fixture(scope="module")
def services(bed, tmp_path_factory):
    with vpnlib.vpn_services(bed, tmp_path_factory.mktemp("svc"), PAGE, HTTP_PORT,
                             SSH_PORT) as d:
        yield d


@pytest.fixture(scope="module")
def app(bed, services, tmp_path_factory):
    """`microvm.exe up --rootfs <the guest image>`, running until test_z_down."""
    image = os.environ.get("MICROVM_TEST_ROOTFS_UNIX")
    assert image and os.path.exists(image), "MICROVM_TEST_ROOTFS_UNIX: run via test-windows.sh"
    m = MicrovmExe(tmp_path_factory.mktemp("win"), bed.client.name)
    m.up = m.popen("up", "--rootfs", win_path(image), stdin=subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = m.up.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "microvm is up" in line:
            break
    assert lines and "microvm is up" in lines[-1], "up failed:\n" + "".join(lines)
    m.up_output = lines
    yield m
    if m.up.poll() is None:
        m.up.kill()
        m.up.wait()
    shutil.rmtree(m.appdir, ignore_errors=True)


def status(app):
    r = app.run("status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_0_linux_only_commands_and_options_say_so(tmp_path):
    m = MicrovmExe(tmp_path, "none")
    r = m.run("run", "vmlinux")
    assert r.returncode == 2 and "only on Linux" in r.stderr, r.stderr
    for args, words in ((["--kernel", "vmlinux"], "--kernel: only on Linux"),
                        (["--agent-netns", "/run/netns/x"], "--agent-netns: only on Linux"),
                        (["--backend", "nsbox"], "not available on this platform"),
                        (["--detach"], "--detach: not on Windows yet")):
        r = m.run("up", *args)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
    r = m.run("up", "--help")
    assert r.returncode == 0 and "auto (default: wsl), wsl" in r.stdout, r.stdout


def test_a_up_runs_the_agent_in_wsl(app):
    st = status(app)
    assert st["vm_running"] and st["agent_reachable"], st
    assert st["hypervisor"] == "WSL2", st
    assert st["socks"]["running"] and st["socks"]["address"] == "127.0.0.1", st
    assert st["socks"]["port"] == 1080, st
    assert st["vpn"]["state"] == "disconnected", st


def test_b_vpn_connect_with_password_on_stdin(app, bed, tmp_path):
    prof = tmp_path / "corp.ovpn"
    prof.write_text(bed.profile())
    r = app.run("vpn", "import", win_path(prof))
    assert r.returncode == 0, r.stdout + r.stderr
    # the password (a space, a quote, a backslash) through Windows' stdin, off argv
    r = app.run("vpn", "connect", "corp.ovpn", "--user", "alice", "--password-stdin",
                input=vpnlib.USERS["alice"] + "\n", timeout=150)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "connected" in r.stdout
    st = status(app)
    assert st["vpn"]["state"] == "connected", st
    assert st["vpn"]["tun_ip"].startswith("10.77.8."), st


def test_c_curl_socks5_hostname(app):
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--socks5-hostname", SOCKS,
                        f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt"],
                       capture_output=True, text=True, timeout=40)
    assert r.returncode == 0, r.stderr
    assert r.stdout == PAGE
    # the service exists only behind the VPN: not from "Windows" directly
    r = subprocess.run(["curl", "-sS", "--max-time", "3",
                        f"http://{vpnlib.VPN_SERVER_IP}:{HTTP_PORT}/page.txt"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0


def test_d_ssh_through_the_proxy(app, services):
    vpnlib.check_ssh_through_socks(services, SSH_PORT, int(SOCKS.split(":")[1]),
                                   connect_timeout=30)


def test_e_console_shows_the_agent(app):
    r = app.run("console", "--no-follow")
    assert r.returncode == 0, r.stderr
    assert "microvm-agent" in r.stdout


def wsl_list(app):
    """The distributions the double has registered (`wsl.exe --list --quiet`, UTF-16LE)."""
    r = subprocess.run([WINE, str(BUILD / "tests/windows/fake_wsl.exe"), "--list", "--quiet"],
                       env=app.env, capture_output=True, timeout=60)
    # none left: exit status -1 and "... has no installed distributions" (as wsl.exe)
    assert r.returncode in (0, 255), r
    return [ln.strip() for ln in r.stdout.decode("utf-16-le").splitlines()]


def test_y_uninstall_is_refused_while_up_runs(app):
    r = app.run("uninstall")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "microvm down" in r.stderr and "nothing was removed" in r.stderr, r.stderr
    assert "microvm" in wsl_list(app)


def test_z_down_leaves_nothing_running(app, bed):
    r = app.run("down", timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopped" in r.stdout
    assert app.up.wait(60) == 0
    # the agent and its OpenVPN are gone from the WSL VM's network, the double's relays too
    vpnlib.wait_for(lambda: not bed.client.pids(), 20, "the distro's processes to exit")
    # (zombies do not count: this pytest is PID 1 of the run's PID namespace and inherits
    # the exited processes whose parents are gone, without reaping them)
    ps = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True).stdout
    left = [ln for ln in ps.splitlines() if not ln.lstrip().startswith("Z") and
            any(w in ln for w in ("fake_wsl", "wsl_distro", "microvm-agent", "microvm.exe"))]
    assert left == [], left
    r = app.run("status", "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["running"] is False


def test_z_uninstall_keeps_the_profiles_unless_purge(app):
    """After `down`: uninstall unregisters; again: nothing to remove; --purge: profiles go."""
    r = app.run("uninstall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removed the WSL distribution" in r.stdout, r.stdout
    assert "kept your VPN profiles" in r.stdout, r.stdout
    assert "microvm" not in wsl_list(app)
    profile = app.appdir / "state/profiles/corp.ovpn"
    assert profile.is_file(), list(app.appdir.rglob("*"))
    r = app.run("uninstall", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout) == {"removed": False, "purged": False}
    assert profile.is_file()
    r = app.run("uninstall", "--purge")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to remove" in r.stdout and "deleted the VPN profiles" in r.stdout, r.stdout
    assert not app.appdir.exists(), list(app.appdir.rglob("*"))
