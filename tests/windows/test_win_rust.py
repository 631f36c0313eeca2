"""The desktop app's flow through the Rust crate's VpnManager on Windows, under Wine, end to
end with a real OpenVPN server (run by scripts/test-windows.sh).

bindings/rust/microvm/examples/app_flow.rs, cross-built for x86_64-pc-windows-gnu by `make
windows` before this test runs (scripts/test-rust-windows.sh BUILD_WIN --build-only: a first
cargo build takes minutes, more than the test's own time), runs under Wine on the WSL2
backend:

    app_flow.exe (Wine): VpnManager::start_vm -> fake_wsl.exe imports the guest image and
      runs its microvm-agent in the "WSL VM" (the distro, chrooted, in vpnlib's client
      namespace) -> status (ping) -> vpn_connect with the password read from stdin ->
      OpenVPN in the distro -> the server namespace -> a GET through the SOCKS5 proxy that
      VpnManager serves on 127.0.0.1 (a free port, a generated password) -> the agent's
      inbound proxy -> the tunnel -> the page that exists only behind the VPN ->
      vpn_disconnect -> stop_vm

The test bed (server, services, the WSL VM's network) is test_win_up's; each test is one
run of the example (a few seconds each): with the password, with a wrong one (the VPN does
not come up: exit 1, the VM still stopped), with web authentication.  Needs root,
the cross build (MICROVM_BUILD_WIN) and the guest image (MICROVM_TEST_ROOTFS_UNIX).
"""
import os
import shutil
import subprocess

import pytest

# (test_win_up puts tests/integration, vpnlib's home, on the path)
from test_win_up import (BUILD, HTTP_PORT, PAGE, WINE, MicrovmExe, bed, services,  # noqa: F401
                         win_path)
import vpnlib  # noqa: E402

STEPS = ("VM started (WSL2)", "agent answers", "VPN connected, tunnel address 10.77.8.",
         # VpnManager made the proxy require a generated password (the example asks for it)
         "SOCKS5 proxy 127.0.0.1:", "authentication: username/password",
         "through SOCKS5", "VPN disconnected", "VM stopped")


@pytest.fixture(scope="module")
def app_flow():
    """examples/app_flow.exe, as `make windows` cross-built it before the Wine tier (no
    build here: a first one takes longer than this module may)."""
    exe = BUILD / "cargo/x86_64-pc-windows-gnu/debug/examples/app_flow.exe"
    assert exe.is_file(), (f"{exe} missing: build it first with "
                           f"`sh scripts/test-rust-windows.sh {BUILD} --build-only` "
                           "(make windows does)")
    return exe


def page_only_behind_the_vpn(bed):
    """From the WSL VM's network (bed.client: where the distro's traffic starts, the agent's
    and OpenVPN's), with no tunnel up: the server answers (a refused connection is its
    answer: its outer address serves no page), and the page's address is out of reach.  Once
    the VPN is down again, then, nothing but the tunnel led to the page."""
    with pytest.raises(ConnectionRefusedError):
        bed.client.connect(vpnlib.SERVER_IP, HTTP_PORT, timeout=3).close()
    with pytest.raises(OSError):
        bed.client.connect(vpnlib.VPN_SERVER_IP, HTTP_PORT, timeout=3).close()


def run_app_flow(exe, bed, tmp_path, user, password, meanwhile=None):  # noqa: F811
    """One run of the example on WSL2 with the test bed's profile; its exit status, stdout
    (bytes: the page, byte for byte) and stderr (its steps).  meanwhile(read_stderr) runs
    while it does.  The output goes through files: Wine hands its own stderr to the
    processes it starts (wsl.exe), see test_win_up."""
    image = os.environ.get("MICROVM_TEST_ROOTFS_UNIX")
    assert image and os.path.exists(image), "MICROVM_TEST_ROOTFS_UNIX: run via test-windows.sh"
    m = MicrovmExe(tmp_path, bed.client.name)
    prof = tmp_path / "corp.ovpn"
    prof.write_text(bed.profile())
    out, err = tmp_path / "app_flow.out", tmp_path / "app_flow.err"

    def read_err():
        return err.read_text(errors="replace").replace("\r", "")
    try:
        with open(out, "wb") as o, open(err, "wb") as e:
            p = subprocess.Popen([WINE, str(exe), "--backend", "wsl", "--rootfs", win_path(image),
                                  "--profile", win_path(prof), "--user", user, "--url",
                                  f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt"],
                                 env=m.env, stdin=subprocess.PIPE, stdout=o, stderr=e)
        try:
            p.stdin.write((password + "\n").encode())
            p.stdin.close()
            if meanwhile:
                meanwhile(read_err)
            rc = p.wait(300)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    finally:
        shutil.rmtree(m.appdir, ignore_errors=True)
    # stop_vm stopped the distro: no agent, no OpenVPN left in the WSL VM's network
    vpnlib.wait_for(lambda: not bed.client.pids(), 20, "the distro's processes to exit")
    return rc, out.read_bytes(), read_err()


def test_app_flow_through_the_vpn(app_flow, bed, services, tmp_path):  # noqa: F811
    rc, out, err = run_app_flow(app_flow, bed, tmp_path, "alice", vpnlib.USERS["alice"])
    assert rc == 0, err
    assert out == PAGE.encode(), (out, err)
    for step in STEPS:
        assert step in err, (step, err)
    # the password went through stdin only
    assert vpnlib.USERS["alice"] not in err
    # and the page exists only behind the VPN, whose tunnel is gone again
    page_only_behind_the_vpn(bed)


def test_app_flow_wrong_password_fails_cleanly(app_flow, bed, services, tmp_path):  # noqa: F811
    """The VPN does not come up: the example says so, fetches nothing, still stops the VM."""
    rc, out, err = run_app_flow(app_flow, bed, tmp_path, "alice", "not the password")
    assert rc == 1, err
    assert "VPN not connected" in err, err
    assert "VM started (WSL2)" in err and "VM stopped" in err, err
    assert "through SOCKS5" not in err and out == b"", (out, err)


def test_app_flow_with_web_authentication(app_flow, bed, services, tmp_path):  # noqa: F811
    """The server asks for web authentication: the example prints the URL and polls
    VpnManager::check_webauth until the test approves, then goes through SOCKS5."""
    def approve(read_err):
        vpnlib.wait_for(lambda: "to authenticate" in read_err(), 120, "the web authentication URL")
        assert "open http://auth.test/login/webok to authenticate" in read_err(), read_err()
        bed.approve("webok")
    rc, out, err = run_app_flow(app_flow, bed, tmp_path, "webok", vpnlib.USERS["webok"], approve)
    assert rc == 0, err
    assert out == PAGE.encode(), (out, err)
    assert "VPN connected" in err and "VM stopped" in err, err
