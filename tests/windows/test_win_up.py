"""`microvm.exe up` under Wine, end to end with real peers (run by scripts/test-windows.sh).

    curl / OpenSSH (Linux)  ->  SOCKS5 127.0.0.1:1080 served by microvm.exe (Wine)
      ->  the agent's inbound proxy, reached through fake_wsl.exe's localhost forwarding
      ->  microvm-agent from the guest image, in the "WSL VM" (the distro, chrooted)
      ->  OpenVPN tunnel  ->  HTTP and sshd that exist only on the VPN address

The WSL VM's network is vpnlib's client namespace (FAKE_WSL_NETNS): its veth to the server
namespace stands for WSL2's NAT; the OpenVPN server, its DNS and the services live in the
server namespace (vpnlib.Testbed and vpnlib.vpn_services, through the integration tests'
fixtures in vpnfixtures.py).  This process and Wine are the "Windows" side: the namespace
scripts/test-windows.sh made for the run (loopback only), so port 1080 and the agent's
forwarded ports collide with nothing.

One `up` serves every check (Wine starts processes slowly): the module fixture starts it,
the tests run in file order, and the last one is `down`.  Needs root, the cross build
(MICROVM_BUILD_WIN) and the guest image (MICROVM_TEST_ROOTFS, its Unix path).
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
import vpnfixtures  # noqa: E402
import vpnlib  # noqa: E402
from vpnfixtures import vpn_bed as bed  # noqa: E402,F401  (fixtures: the test bed)
from winlib import BUILD, WINE, MicrovmExe, win_path  # noqa: E402

PAGE = "only inside the VPN, served to microvm.exe\n"
HTTP_PORT = 8080
SSH_PORT = 2222
SOCKS = "127.0.0.1:1080"


services = vpnfixtures.services_fixture(PAGE, HTTP_PORT, SSH_PORT)


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
                        (["--backend", "nsbox"], "not available on this platform")):
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


def test_x_a_second_up_is_refused_and_the_first_runs_on(app):
    """One appliance per Windows user: a second `up` (on a control pipe of its own, so that
    it gets as far as starting the VM) fails with the appliance lock's message naming the
    first, and the first keeps its VM, agent and VPN connection."""
    r = app.run("up", "--control", r"\\.\pipe\microvm-second-control", "--rootfs",
                win_path(os.environ["MICROVM_TEST_ROOTFS_UNIX"]), timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the appliance of this Windows user is in use by microvm.exe (process " in \
        r.stderr, r.stderr
    assert "(microvm.exe down, or stop the app that runs it)" in r.stderr, r.stderr
    assert "microvm is up" not in r.stdout, r.stdout
    st = status(app)
    assert st["vm_running"] and st["agent_reachable"], st
    assert st["vpn"]["state"] == "connected", st
    assert app.up.poll() is None


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
    nothing_left_running(app, bed)


def nothing_left_running(app, bed):
    """After `down`: no agent, OpenVPN, relay or microvm.exe left; status says so."""
    # the agent and its OpenVPN are gone from the WSL VM's network, the double's relays too
    vpnlib.wait_for(lambda: not bed.client.pids(), 20, "the distro's processes to exit")

    # (zombies do not count: this pytest is PID 1 of the run's PID namespace and inherits
    # the exited processes whose parents are gone, without reaping them)
    def left():
        ps = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True,
                            text=True).stdout
        return [ln for ln in ps.splitlines() if not ln.lstrip().startswith("Z") and
                any(w in ln for w in ("fake_wsl", "wsl_distro", "microvm-agent",
                                      "microvm.exe"))]
    # a detached `up` is nobody's child here: it is gone shortly after `down` answers
    vpnlib.wait_for(lambda: not left(), 20, "microvm.exe and the double to exit")
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


def test_zy_up_detach_reports_why_it_failed(app, bed, tmp_path):
    """A background `up` that cannot start (WSL 2's virtual machine platform is off): the
    parent exits 1 with the child's own message, and nothing stays running."""
    r = app.run_detach(tmp_path, "--rootfs", win_path(os.environ["MICROVM_TEST_ROOTFS_UNIX"]),
                       env={"FAKE_WSL_MODE": "disabled"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Virtual Machine Platform" in r.stderr, r.stdout + r.stderr
    assert "microvm is up" not in r.stdout, r.stdout
    nothing_left_running(app, bed)


def test_zz_up_detach_connects_with_the_password_through_a_pipe(app, bed, tmp_path):
    """`up --detach` returns once the background `up` serves (it imports the image again:
    the distribution was uninstalled above); the VPN password reached it through a pipe."""
    image = os.environ["MICROVM_TEST_ROOTFS_UNIX"]
    prof = tmp_path / "corp.ovpn"
    prof.write_text(bed.profile())
    r = app.run_detach(tmp_path, "--rootfs", win_path(image), "--profile", win_path(prof),
                       "--user", "alice", "--password-stdin",
                       input=vpnlib.USERS["alice"] + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "microvm is up" in r.stdout, r.stdout + r.stderr
    st = status(app)
    assert st["vm_running"] and st["hypervisor"] == "WSL2", st
    assert st["vpn"]["state"] == "connected", st
    r = subprocess.run(["curl", "-sS", "--max-time", "30", "--socks5-hostname", SOCKS,
                        f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt"],
                       capture_output=True, text=True, timeout=40)
    assert r.returncode == 0 and r.stdout == PAGE, r.stderr
    # the background process logs to up.log; the password is nowhere in it
    log = (app.appdir / "up.log").read_text()
    assert vpnlib.USERS["alice"] not in log
    r = app.run("down", timeout=90)
    assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
    nothing_left_running(app, bed)
