"""The Rust crate's example program (bindings/rust/microvm/examples/app_flow.rs), the desktop
app's flow, against a real OpenVPN server: start the VM on the namespace backend, ping the
agent, connect the VPN with a password, fetch a page that exists only inside the VPN through
the SOCKS5 proxy, stop the VM.

The VPN server, the host link to it and the services behind it are test_e2e_nsbox's fixtures
(vpnlib.Testbed; nothing leaves this machine).  Built with Debian's cargo, offline.  Needs
root (namespaces, veth, the OpenVPN server).
"""
import os
import pathlib
import subprocess

import pytest

import vpnlib
from test_e2e_nsbox import HTTP_PORT, PAGE, bed, hostlink, image, services  # noqa: F401

TOP = pathlib.Path(__file__).resolve().parents[2]
CRATES = TOP / "bindings" / "rust"


def cargo(build_dir, *args, timeout=900):
    env = dict(os.environ, MICROVM_BUILD=str(build_dir), PATH="/usr/bin:" + os.environ["PATH"])
    return subprocess.run(["/usr/bin/cargo", *args, "--offline"], cwd=CRATES, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def app_flow(build_dir):
    """The example program, built once for the module."""
    r = cargo(build_dir, "build", "--example", "app_flow")
    assert r.returncode == 0, r.stderr
    return CRATES / "target" / "debug" / "examples" / "app_flow"


def app_flow_argv(exe, image, bed, tmp_path, user):
    """The example's command line: nsbox, the test bed's profile, the page behind the VPN."""
    prof = tmp_path / "corp.ovpn"
    prof.write_text(bed.profile())
    return [str(exe), "--backend", "nsbox", "--rootfs", str(image), "--profile", str(prof),
            "--user", user, "--url", f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt"]


def test_app_flow_through_the_vpn(app_flow, image, bed, hostlink, services,  # noqa: F811
                                  tmp_path):
    r = subprocess.run(app_flow_argv(app_flow, image, bed, tmp_path, "alice"),
                       input=vpnlib.USERS["alice"] + "\n", capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr
    assert r.stdout == PAGE
    for step in ("VM started (nsbox)", "agent answers", "VPN connected, tunnel address 10.77.8.",
                 # the proxy required the generated password (the example asks for it)
                 "SOCKS5 proxy 127.0.0.1:", "authentication: username/password",
                 "through SOCKS5", "VPN disconnected", "VM stopped"):
        assert step in r.stderr, (step, r.stderr)
    # the password went through stdin only
    assert vpnlib.USERS["alice"] not in r.stderr


def test_app_flow_wrong_password_fails_cleanly(app_flow, image, bed, hostlink, services,  # noqa: F811
                                               tmp_path):
    r = subprocess.run(app_flow_argv(app_flow, image, bed, tmp_path, "alice"),
                       input="not the password\n", capture_output=True, text=True, timeout=240)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "VPN not connected" in r.stderr
    assert "VM stopped" in r.stderr
    assert r.stdout == ""


def test_app_flow_with_web_authentication(app_flow, image, bed, hostlink, services,  # noqa: F811
                                          tmp_path):
    """The server asks for web authentication: the example prints the URL, polls
    VpnManager::check_webauth until the test approves, then goes through SOCKS5."""
    p = subprocess.Popen(app_flow_argv(app_flow, image, bed, tmp_path, "webok"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        p.stdin.write(vpnlib.USERS["webok"] + "\n")
        p.stdin.close()
        p.stdin = None      # communicate() below must not touch it
        seen = []
        for line in p.stderr:
            seen.append(line)
            if "to authenticate" in line:
                break
        assert "open http://auth.test/login/webok to authenticate" in "".join(seen), seen
        bed.approve("webok")
        out, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, "".join(seen) + err
    assert out == PAGE
    assert "VPN connected" in err and "VM stopped" in err
