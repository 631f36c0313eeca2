"""`microvm up` checks its command line before it starts anything.

Every case attaches to an agent in an empty network namespace with a long --boot-timeout: if
an option were only checked after start-up, `up` would first wait for that agent (20 s) and
the test would see the wrong error, too late.  Messages must name the option and the valid
values.  (The nsbox notices for VM-only options are in test_socks_box.py.)
"""
import json
import subprocess
import time

import pytest

import authlib
from sockslib import need_root, netns


@pytest.fixture(scope="module")
def empty_ns():
    need_root()
    with netns("mvmcliup") as ns:
        yield ns


def up(microvm_bin, ns, tmp_path, *args, secret=True):
    start = time.monotonic()
    sf = tmp_path / "agent.secret"
    authlib.write_secret(sf, authlib.new_secret())
    r = subprocess.run([str(microvm_bin), "up", "--agent-netns", f"/run/netns/{ns}",
                        *(["--agent-secret-file", str(sf)] if secret else []),
                        "--boot-timeout", "20", "--control", str(tmp_path / "c.sock"), *args],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return r, time.monotonic() - start


@pytest.mark.parametrize("args, words", [
    (["--socks", "0.0.0.0:0"], ["--socks 0.0.0.0", "non-loopback", "--socks-allow-remote"]),
    (["--socks", "[::]:0"], ["--socks ::", "--socks-allow-remote"]),
    (["--socks", "localhost:1080"], ["--socks", "numeric"]),
    (["--backend", "qemu"], ["--backend", "'qemu'", "auto, kvm, nsbox"]),
    (["--backend", "wsl"], ["--backend wsl", "not available on this platform"]),
    (["--backend", "hvf"], ["--backend hvf", "not available on this platform"]),
    (["--memory", "8"], ["--memory", "'8'", "16 to 65536"]),
    (["--memory", "70000"], ["--memory", "16 to 65536"]),
    (["--memory", "1G"], ["--memory", "16 to 65536"]),
    (["--idle-timeout", "-1"], ["--idle-timeout", "'-1'", "positive number of seconds"]),
    (["--profile", "/nonexistent/corp.ovpn"], ["--profile /nonexistent/corp.ovpn",
                                              "No such file"]),
    (["--socks-user", "u", "--socks-password-file", "/nonexistent/pw"],
     ["--socks-password-file /nonexistent/pw"]),
])
def test_bad_option_fails_before_start(microvm_bin, empty_ns, tmp_path, args, words):
    r, took = up(microvm_bin, empty_ns, tmp_path, *args)
    assert r.returncode == 2, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert took < 5
    assert not (tmp_path / "c.sock").exists()


def test_profile_directory_is_refused_early(microvm_bin, empty_ns, tmp_path):
    r, took = up(microvm_bin, empty_ns, tmp_path, "--profile", str(tmp_path))
    assert r.returncode == 2 and f"--profile {tmp_path}" in r.stderr, r.stderr
    assert took < 5


def test_remote_socks_allowed_with_the_flag(microvm_bin, empty_ns, tmp_path):
    # with the flag the address passes the check; `up` then waits for the (absent) agent
    r, took = up(microvm_bin, empty_ns, tmp_path, "--socks", "0.0.0.0:0",
                 "--socks-allow-remote", "--boot-timeout", "1")
    assert r.returncode == 1
    assert "agent did not answer" in r.stderr, r.stderr


def test_vm_options_in_attach_mode_get_a_notice(microvm_bin, empty_ns, tmp_path):
    r, _ = up(microvm_bin, empty_ns, tmp_path, "--memory", "64", "--cmdline", "quiet",
              "--boot-timeout", "1")
    notes = [l for l in r.stderr.splitlines() if "note:" in l]
    assert notes == ["microvm up: note: --memory, --cmdline not used when attaching to an "
                     "agent; ignored"], r.stderr


def test_help_does_not_offer_missing_backends(microvm_bin):
    r = subprocess.run([str(microvm_bin), "up", "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0
    line = next(l for l in r.stdout.splitlines() if "--backend" in l)
    assert "auto (default), kvm, nsbox" in line
    assert "wsl, hvf: not available on this platform" in line


def test_profile_size_limit_is_1mib(microvm_bin, empty_ns, tmp_path):
    prof = tmp_path / "big.ovpn"
    prof.write_bytes(b"#" * (1024 * 1024 + 1))
    r, took = up(microvm_bin, empty_ns, tmp_path, "--profile", str(prof))
    assert r.returncode == 2 and "larger than 1 MiB" in r.stderr, r.stderr
    assert took < 5
    # exactly 1 MiB is a valid profile: `up` gets as far as waiting for the agent
    prof.write_bytes(b"#" * (1024 * 1024))
    r, _ = up(microvm_bin, empty_ns, tmp_path, "--profile", str(prof), "--boot-timeout", "1")
    assert r.returncode == 1 and "agent did not answer" in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", [["status"], ["vpn", "status"]])
def test_json_status_when_nothing_runs(microvm_bin, tmp_path, cmd):
    sock = tmp_path / "none" / "control.sock"
    r = subprocess.run([str(microvm_bin), *cmd, "--json", "--control", str(sock)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["running"] is False
    assert "not running" in out["error"] and str(sock) in out["error"]
    assert "not running" in r.stderr
    h = subprocess.run([str(microvm_bin), *cmd, "--help"], capture_output=True, text=True,
                       timeout=10).stdout
    assert '"running": false' in h


def test_attach_needs_a_private_agent_secret_file(microvm_bin, empty_ns, tmp_path):
    r, took = up(microvm_bin, empty_ns, tmp_path, secret=False)
    assert r.returncode == 2 and "--agent-secret-file" in r.stderr, r.stderr
    assert took < 5
    f = tmp_path / "open.secret"
    f.write_text(authlib.new_secret() + "\n")
    f.chmod(0o644)
    r, took = up(microvm_bin, empty_ns, tmp_path, "--agent-secret-file", str(f))
    assert r.returncode == 2, r.stderr
    assert f"--agent-secret-file {f}: readable by others" in r.stderr, r.stderr
    f.write_text("not hex\n")
    f.chmod(0o600)
    r, took = up(microvm_bin, empty_ns, tmp_path, "--agent-secret-file", str(f))
    assert r.returncode == 2 and "not 64 hex characters" in r.stderr, r.stderr
    assert not (tmp_path / "c.sock").exists()
