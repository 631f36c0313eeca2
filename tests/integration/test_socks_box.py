"""`microvm up` with a real runtime underneath (the nsbox backend and the guest image): the
manager's VM path - start, wait for the agent, hypervisor name, console fan-out to
`microvm console`, a SOCKS relay into the box, `microvm down` - rather than attach mode.
(test_e2e_nsbox.py adds OpenVPN on top of the same path.)
"""
import json
import os
import select
import pathlib
import subprocess
import time

import pytest

import socket

from sockslib import free_port, socks_open, wait_line

TOP = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rootfs(build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces)")
    env = dict(os.environ, MICROVM_BUILD=str(build_dir))
    r = subprocess.run(["sh", str(TOP / "guest/image/build.sh")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    path = pathlib.Path(r.stdout.strip().splitlines()[-1]) / "rootfs.tar.gz"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def shell_rootfs(rootfs, tmp_path_factory):
    """The guest image plus busybox as /usr/bin/sh (the image has no shell), for --box-exec."""
    import shutil
    import tarfile
    d = tmp_path_factory.mktemp("shellbox")
    tree = d / "tree"
    tree.mkdir()
    with tarfile.open(rootfs) as t:
        t.extractall(tree)
    shutil.copy("/bin/busybox", tree / "usr/bin/busybox")
    (tree / "usr/bin/sh").symlink_to("busybox")
    box = d / "box.tar.gz"
    subprocess.run(["tar", "czf", str(box), "-C", str(tree), "."], check=True)
    return box


def box_up(microvm_bin, rootfs, tmp_path, script, *extra):
    """`microvm up` on the nsbox backend running @script in the box; returns (env, process)."""
    env = dict(os.environ, MICROVM_CONTROL=str(tmp_path / "ctl.sock"))
    up = subprocess.Popen([str(microvm_bin), "up", "--backend", "nsbox", "--rootfs", str(rootfs),
                           "--socks", f"127.0.0.1:{free_port()}", "--box-exec", script, *extra],
                          env=env, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    return env, up


def box_gone(up):
    """End of a test: make sure `up` is gone (killed if the test did not get it down)."""
    if up.poll() is None:
        up.kill()
        up.wait()
    up.stdout.close()


def test_box_status_console_relay_down(microvm_bin, rootfs, tmp_path):
    env = dict(os.environ, MICROVM_CONTROL=str(tmp_path / "ctl.sock"))
    port = free_port()
    up = subprocess.Popen([str(microvm_bin), "up", "--backend", "nsbox", "--rootfs", str(rootfs),
                           "--socks", f"127.0.0.1:{port}"], env=env, text=True,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)

    def cli(*args, **kw):
        return subprocess.run([str(microvm_bin), *args], env=env, capture_output=True,
                              text=True, timeout=30, **kw)
    try:
        wait_line(up, "microvm is up", 60)
        st = json.loads(cli("status", "--json").stdout)
        assert st["vm_running"] and not st["attached"]
        assert st["hypervisor"] == "nsbox"
        assert st["agent_reachable"]
        assert st["vpn"]["state"] == "disconnected"

        # the console replays what the box printed so far: the agent's start-up line
        con = subprocess.Popen([str(microvm_bin), "console"], env=env, stdout=subprocess.PIPE)
        out = b""
        deadline = time.monotonic() + 20     # generous: the machine may be busy
        while b"microvm-agent" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([con.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(con.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
        con.terminate()
        con.communicate(timeout=10)
        assert b"microvm-agent" in out

        # a relay into the box reaches the agent's proxy, whose destination policy refuses
        # the box itself (its loopback and 10.0.2.15: the agent's own ports) and the
        # user-mode network's gateway (10.0.2.2:PORT looped into this very SOCKS server)
        for host, dport in (("127.0.0.1", 1025), ("127.0.0.1", 7602), ("10.0.2.15", 1025),
                            ("10.0.2.2", port), ("10.0.2.3", 53)):
            rep, s = socks_open(port, host, dport)
            assert rep == 0x02, (host, dport, rep)

        r = cli("down")
        assert r.returncode == 0
        assert up.wait(timeout=30) == 0
        r = cli("status")
        assert r.returncode == 1 and "not running" in r.stderr
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        up.stdout.close()


def test_console_input_reaches_the_box(microvm_bin, rootfs, tmp_path):
    """`microvm console` both ways: the box runs the agent plus a shell loop that answers
    what it reads on the console (the image has no shell: busybox-static is added)."""
    import shutil
    import tarfile
    tree = tmp_path / "tree"
    tree.mkdir()
    with tarfile.open(rootfs) as t:
        t.extractall(tree)
    shutil.copy("/bin/busybox", tree / "usr/bin/busybox")
    (tree / "usr/bin/sh").symlink_to("busybox")
    box = tmp_path / "box.tar.gz"
    subprocess.run(["tar", "czf", str(box), "-C", str(tree), "."], check=True)

    env = dict(os.environ, MICROVM_CONTROL=str(tmp_path / "ctl.sock"))
    script = ("/usr/bin/microvm-agent --transport tcp --listen 127.0.0.1 --auth-secret-fd 4 & "
              "while read l; do echo \"box got: $l\"; done; wait")
    up = subprocess.Popen([str(microvm_bin), "up", "--backend", "nsbox", "--rootfs", str(box),
                           "--socks", f"127.0.0.1:{free_port()}", "--box-exec", script],
                          env=env, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    try:
        wait_line(up, "microvm is up", 60)
        con = subprocess.Popen([str(microvm_bin), "console"], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
        con.stdin.write(b"hello console\n")
        con.stdin.flush()
        seen = b""
        deadline = time.monotonic() + 10
        os.set_blocking(con.stdout.fileno(), False)
        while b"box got: hello console" not in seen and time.monotonic() < deadline:
            chunk = con.stdout.read()
            seen += chunk or b""
            time.sleep(0.1)
        con.kill()
        con.wait()
        assert b"box got: hello console" in seen
        assert subprocess.run([str(microvm_bin), "down"], env=env, capture_output=True,
                              timeout=30).returncode == 0
        assert up.wait(timeout=30) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        up.stdout.close()


def test_console_no_follow_prints_what_is_there_and_exits(microvm_bin, shell_rootfs, tmp_path):
    """`microvm console --no-follow` against a guest that never stops talking: it prints the
    console's contents at that instant (the agent's start-up line, the ticks so far) and
    exits at once, rather than waiting for a quiet console (which never comes here)."""
    env, up = box_up(microvm_bin, shell_rootfs, tmp_path,
                     "/usr/bin/microvm-agent --transport tcp --listen 127.0.0.1 "
                     "--auth-secret-fd 4 & "
                     "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done")

    def ticks(out):
        return [int(l.split()[1]) for l in out.splitlines()
                if l.startswith("tick ") and l.split()[1].isdigit()]
    try:
        wait_line(up, "microvm is up", 60)
        runs = []
        for _ in range(2):
            time.sleep(0.3)         # a few more ticks between the two snapshots
            start = time.monotonic()
            r = subprocess.run([str(microvm_bin), "console", "--no-follow"], env=env,
                               capture_output=True, text=True, timeout=30)
            runs.append((r, time.monotonic() - start))
        for r, took in runs:
            assert r.returncode == 0, r.stderr
            assert took < 2, f"--no-follow took {took:.1f} s: it waited for a quiet console"
            assert "microvm-agent" in r.stdout, r.stdout
            t = ticks(r.stdout)
            assert t and t == list(range(t[0], t[0] + len(t))), r.stdout   # none missing
        # each run is a snapshot of its own instant: the second one sees later ticks
        assert ticks(runs[1][0].stdout)[-1] > ticks(runs[0][0].stdout)[-1]
        assert subprocess.run([str(microvm_bin), "down"], env=env, capture_output=True,
                              timeout=30).returncode == 0
        assert up.wait(timeout=30) == 0
    finally:
        box_gone(up)


def test_vm_only_options_get_a_notice_under_nsbox(microvm_bin, shell_rootfs, tmp_path):
    # the box exits at once (no agent): `up` fails, but first says what it ignores
    r = subprocess.run([str(microvm_bin), "up", "--backend", "nsbox", "--rootfs",
                        str(shell_rootfs),
                        "--memory", "64", "--kernel", "/nonexistent/vmlinux", "--initrd",
                        "/nonexistent/initrd", "--cmdline", "quiet", "--box-exec", "exit 0",
                        "--boot-timeout", "10", "--control", str(tmp_path / "c.sock"),
                        "--socks", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    notes = [l for l in r.stderr.splitlines() if "note:" in l]
    assert notes == ["microvm up: note: the nsbox backend does not use --memory, --kernel, "
                     "--initrd, --cmdline; ignored"], r.stderr
    assert "stopped before its agent answered" in r.stderr, r.stderr


def test_down_kills_a_box_that_ignores_sigterm(microvm_bin, shell_rootfs, tmp_path):
    """The manager's forced-kill path: the agent answers 'shutdown', but the box's shell
    ignores SIGTERM (so does its `sleep`), so stop_vm must kill it after --stop-timeout."""
    import uuid
    token = uuid.uuid4().hex
    script = ("trap '' TERM; /usr/bin/microvm-agent --transport tcp --listen 127.0.0.1 --auth-secret-fd 4 & "
              f"while :; do sleep 1; done; : {token}")
    env, up = box_up(microvm_bin, shell_rootfs, tmp_path, script, "--stop-timeout", "1.5")

    def box_alive():
        for p in pathlib.Path("/proc").iterdir():
            try:
                if p.name.isdigit() and token.encode() in (p / "cmdline").read_bytes():
                    return True
            except OSError:
                pass
        return False
    try:
        wait_line(up, "microvm is up", 60)
        assert box_alive()
        start = time.monotonic()
        r = subprocess.run([str(microvm_bin), "down"], env=env, capture_output=True,
                           text=True, timeout=60)
        took = time.monotonic() - start
        assert r.returncode == 0, r.stderr
        assert 1.5 <= took < 10, took
        out, _ = up.communicate(timeout=30)
        assert up.returncode == 0, out
        assert "the VM did not stop within 1500 ms: killed it" in out, out
        assert not box_alive()
    finally:
        box_gone(up)


@pytest.mark.parametrize("host_loopback", [False, True], ids=["default", "net-host-loopback"])
def test_box_gateway_reaches_host_loopback_only_when_asked(microvm_bin, shell_rootfs, tmp_path,
                                                           host_loopback):
    """From inside the box, 10.0.2.2:PORT is the host's 127.0.0.1:PORT only with
    --net-host-loopback (libslirp's host-loopback mapping, off by default)."""
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(1)
    lport = lsock.getsockname()[1]
    env = dict(os.environ, MICROVM_CONTROL=str(tmp_path / "ctl.sock"))
    script = ("/usr/bin/microvm-agent --transport tcp --listen 127.0.0.1 --auth-secret-fd 4 & "
              f"while :; do echo knock | busybox nc -w 1 10.0.2.2 {lport}; sleep 0.5; done")
    up = subprocess.Popen([str(microvm_bin), "up", "--backend", "nsbox", "--rootfs",
                           str(shell_rootfs), "--socks", f"127.0.0.1:{free_port()}",
                           "--box-exec", script,
                           *(["--net-host-loopback"] if host_loopback else [])],
                          env=env, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    got = b""
    try:
        wait_line(up, "microvm is up", 60)
        deadline = time.monotonic() + 6      # the box knocks every 0.5-1.5 s meanwhile
        while time.monotonic() < deadline and not got:
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            c.settimeout(3)
            got = c.recv(100)
            c.close()
        assert subprocess.run([str(microvm_bin), "down"], env=env, capture_output=True,
                              timeout=30).returncode == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        up.stdout.close()
        lsock.close()
    assert got == (b"knock\n" if host_loopback else b"")
