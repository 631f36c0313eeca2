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

from sockslib import free_port, socks_open, recv_exact, wait_line

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

        # a relay into the box: the agent's own control port answers through SOCKS
        rep, s = socks_open(port, "127.0.0.1", 1025)
        assert rep == 0
        s.sendall(b'{"cmd":"ping"}\n')
        assert b"pong" in recv_exact(s, 17)
        s.close()

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
    script = ("/usr/bin/microvm-agent --transport tcp --listen 127.0.0.1 & "
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
