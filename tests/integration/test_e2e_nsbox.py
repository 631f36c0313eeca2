"""The product end to end on the namespace backend: `microvm up --backend nsbox` runs the
guest image's rootfs.tar.gz in a box (its own user, mount, PID, UTS, IPC and network
namespaces); the agent in it reaches a real OpenVPN server through libslirp, and curl and ssh
on the host reach services that exist only inside the VPN through the SOCKS5 proxy.

    curl/ssh -> SOCKS5 127.0.0.1:PORT (microvm up, host)
      -> vsock client -> box supervisor -> agent (TCP 127.0.0.1:7602 inside the box)
      -> OpenVPN in the box -> tun -> eth0 (TAP) -> libslirp -> host socket
      -> veth (this test's /30) -> OpenVPN server (vpnlib.Testbed's server namespace)
      -> HTTP and sshd on the VPN address 10.77.8.1

The VPN server is vpnlib.Testbed's; this module adds a veth pair between the host and the
server namespace (10.77.9.0/30, plus a /32 route to the server address over it), so that the
box's traffic, which leaves as ordinary sockets of the host, can reach it; the rest of
10.77.0.0/16 is made unreachable on the host for the module's duration, so nothing leaves
this machine.  At the end `microvm down` must leave nothing behind: no process from the box,
no namespace of it, no mount, no unpacked rootfs.
"""
import contextlib
import json
import os
import pathlib
import subprocess
import time
import uuid

import pytest

import sandboxlib
import vpnfixtures
import vpnlib
from sockslib import curl, free_port, recv_exact, socks_open, vpn_state, wait_line

TOP = pathlib.Path(__file__).resolve().parents[2]
PAGE = "only inside the VPN, reached from a namespace box\n"
HTTP_PORT = 8080
SSH_PORT = 2222
VIP = vpnlib.VPN_SERVER_IP
HOST_IP = "10.77.9.1"
LINK_IP = "10.77.9.2"
NET16 = "10.77.0.0/16"


def _run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


@pytest.fixture(scope="module")
def image(build_dir):
    """The guest image's rootfs.tar.gz (guest/image/build.sh; cached by its inputs)."""
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, veth, OpenVPN server)")
    env = dict(os.environ, MICROVM_BUILD=str(build_dir))
    r = subprocess.run(["sh", str(TOP / "guest/image/build.sh")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rootfs = pathlib.Path(r.stdout.strip().splitlines()[-1]) / "rootfs.tar.gz"
    assert rootfs.is_file()
    return rootfs


@pytest.fixture(scope="module")
def bed(image, vpn_bed):
    """conftest's vpn_bed, made once the image is there."""
    return vpn_bed


@pytest.fixture(scope="module")
def hostlink(bed):
    """veth host <-> server namespace, and the host's route to the server address over it."""
    veth = "mve" + uuid.uuid4().hex[:8]
    _run("ip", "link", "add", veth + "h", "type", "veth", "peer", "name", veth + "s",
         "netns", bed.server.name)
    try:
        _run("ip", "addr", "add", HOST_IP + "/30", "dev", veth + "h")
        _run("ip", "link", "set", veth + "h", "up")
        bed.server.run("ip", "addr", "add", LINK_IP + "/30", "dev", veth + "s")
        bed.server.run("ip", "link", "set", veth + "s", "up")
        _run("ip", "route", "add", vpnlib.SERVER_IP + "/32", "via", LINK_IP, "dev", veth + "h")
        # Everything else of the test's 10.77/16 is unreachable from the host, so that the
        # box (whose traffic becomes the host's) can never send it off this machine, e.g. to
        # the VPN addresses while the tunnel is down.
        _run("ip", "route", "add", "unreachable", NET16)
        yield veth
    finally:
        _run("ip", "route", "del", "unreachable", NET16, check=False)
        _run("ip", "link", "del", veth + "h", check=False)   # takes its routes with it


# HTTP on VIP:8080 and sshd on VIP:2222 in the server namespace
services = vpnfixtures.services_fixture(PAGE, HTTP_PORT, SSH_PORT)


def ppid(pid):
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return 0


def box_pids(ancestor):
    """Processes under @ancestor started inside a box (they carry container=microvm-nsbox)."""
    pids = []
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if b"container=microvm-nsbox" not in (p / "environ").read_bytes().split(b"\0"):
                continue
            q = int(p.name)
            while q > 1 and q != ancestor:
                q = ppid(q)
            if q == ancestor:
                pids.append(int(p.name))
    return pids


def ns_users(ns_id):
    """Processes anywhere that are in namespace @ns_id (e.g. 'net:[4026532]')."""
    kind = ns_id.split(":")[0]
    users = []
    for p in pathlib.Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(p / "ns" / kind) == ns_id:
                    users.append(int(p.name))
    return users


class Up:
    """`microvm up --backend nsbox` in the foreground, on a free port and a private socket."""

    def __init__(self, microvm_bin, rootfs, tmp, tmpdir=None):
        self.bin = str(microvm_bin)
        self.port = free_port()
        self.tmpdir = tmpdir or tmp / "unpack"
        self.tmpdir.mkdir(exist_ok=True)
        self.env = dict(os.environ, MICROVM_CONTROL=str(tmp / "control.sock"),
                        TMPDIR=str(self.tmpdir))
        self.proc = subprocess.Popen(
            [self.bin, "up", "--backend", "nsbox", "--rootfs", str(rootfs),
             "--socks", f"127.0.0.1:{self.port}", "--boot-timeout", "20"],
            env=self.env, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.t0 = time.monotonic()
        self.startup = wait_line(self.proc, "microvm is up", 30)
        self.ready_s = time.monotonic() - self.t0

    def cli(self, *args, input=None, timeout=60):
        return subprocess.run([self.bin, *args], env=self.env, input=input, text=True,
                              capture_output=True, timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.cli("down", timeout=30)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def app(microvm_bin, image, bed, hostlink, services, tmp_path_factory):
    a = Up(microvm_bin, image, tmp_path_factory.mktemp("up"))
    yield a
    a.close()


def test_a_up_runs_in_a_box(app):
    st = json.loads(app.cli("status", "--json").stdout)
    assert st["agent_reachable"]
    assert "nsbox" in app.cli("status").stdout
    pids = box_pids(app.proc.pid)
    assert pids, "no process of the box found"
    for pid in pids:
        # every box process is in namespaces of its own, not the host's
        for kind in ("net", "mnt", "pid", "uts", "ipc", "user"):
            assert os.readlink(f"/proc/{pid}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}"), kind
    # the agent sees the box's root, not the host's
    agent = next(p for p in pids if b"microvm-agent" in pathlib.Path(f"/proc/{p}/cmdline")
                 .read_bytes())
    assert os.path.exists(f"/proc/{agent}/root/usr/bin/microvm-agent")
    assert not os.path.exists(f"/proc/{agent}/root/{TOP}")


def test_a_sandboxed(app):
    # `microvm up` itself: its SOCKS5 loop and slirp threads are filtered with no
    # capabilities; the connect workers keep CAP_SYS_ADMIN at most (setns for --agent-netns).
    pid = app.proc.pid
    for tid, comm in sandboxlib.threads(pid, "mvm-").items():
        st = sandboxlib.status(pid, tid)
        if comm == "mvm-socks-conn":
            assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", st
            assert sandboxlib.caps(st) & ~(1 << sandboxlib.CAP_SYS_ADMIN) == 0, st
        else:
            sandboxlib.assert_filtered(st)
    assert {"mvm-socks", "mvm-socks-conn", "mvm-slirp"} <= \
        set(sandboxlib.threads(pid, "mvm-").values())
    # The box: a bounded id map (never 0 0 4294967295) and an agent with CAP_NET_ADMIN only.
    agent = next(p for p in box_pids(pid) if b"microvm-agent" in pathlib.Path(
        f"/proc/{p}/cmdline").read_bytes())
    for m in ("uid_map", "gid_map"):
        assert 1 <= sandboxlib.id_map_size(pathlib.Path(f"/proc/{agent}/{m}").read_text()) \
            <= 65536
    keep = sandboxlib.AGENT_CAPS
    st = sandboxlib.status(agent)
    sandboxlib.assert_filtered(st, capeff=keep)
    assert sandboxlib.caps(st, "CapBnd") == keep


def test_b_import_and_connect_with_password(app, bed, tmp_path):
    assert vpn_state(app)["state"] == "disconnected"
    prof = tmp_path / "corp.ovpn"
    prof.write_text(bed.profile())
    r = app.cli("vpn", "import", str(prof))
    assert r.returncode == 0, r.stderr
    r = app.cli("vpn", "connect", "corp.ovpn", "--user", "alice", "--password-stdin",
                input=vpnlib.USERS["alice"] + "\n", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    st = vpn_state(app)
    assert st["state"] == "connected"
    assert st["tun_ip"].startswith("10.77.8.")


def test_c_curl_through_the_tunnel(app):
    proxy = f"127.0.0.1:{app.port}"
    r = curl("--socks5-hostname", proxy, f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == PAGE
    r = curl("--socks5", proxy, f"http://{VIP}:{HTTP_PORT}/page.txt")
    assert r.returncode == 0, r.stderr
    assert r.stdout == PAGE
    # a raw relay both ways (the target echoes, then says bye after our half-close)
    rep, s = socks_open(app.port, VIP, vpnlib.TARGET_PORT, timeout=20)
    assert rep == 0
    assert recv_exact(s, len(vpnlib.TARGET_BANNER)) == vpnlib.TARGET_BANNER
    payload = os.urandom(200000)
    s.sendall(payload)
    s.shutdown(1)
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    s.close()
    assert got == payload + vpnlib.TARGET_BYE


def test_d_ssh_through_the_tunnel(app, services):
    vpnlib.check_ssh_through_socks(services, SSH_PORT, app.port, user="root")


def test_e_disconnect_then_web_auth(app, bed):
    r = app.cli("vpn", "disconnect")
    assert r.returncode == 0, r.stderr
    assert vpn_state(app)["state"] == "disconnected"
    r = curl("--socks5", f"127.0.0.1:{app.port}", f"http://{VIP}:{HTTP_PORT}/page.txt")
    assert r.returncode != 0          # without the tunnel the VPN address is out of reach

    proc = subprocess.Popen([app.bin, "vpn", "connect", "corp.ovpn", "--user", "webok",
                             "--password-stdin", "--timeout", "60"], env=app.env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdin.write(vpnlib.USERS["webok"] + "\n")
    proc.stdin.close()
    proc.stdin = None
    wait_line(proc, "http://auth.test/login/webok", 60)
    assert vpn_state(app)["state"] == "webauth_required"
    bed.approve("webok")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert vpn_state(app)["state"] == "connected"
    r = curl("--socks5", f"127.0.0.1:{app.port}", f"http://{VIP}:{HTTP_PORT}/page.txt")
    assert r.stdout == PAGE
    assert app.cli("vpn", "disconnect").returncode == 0


def test_z_down_leaves_nothing(app):
    pids = box_pids(app.proc.pid)
    assert pids
    namespaces = {os.readlink(f"/proc/{pids[0]}/ns/{k}") for k in ("net", "mnt", "pid", "user")}
    r = app.cli("down", timeout=30)
    assert r.returncode == 0, r.stderr
    app.proc.wait(timeout=15)
    assert app.proc.returncode == 0
    assert box_pids(app.proc.pid) == []
    for ns in namespaces:
        assert ns_users(ns) == [], ns
    assert list(app.tmpdir.iterdir()) == []        # the unpacked rootfs is gone
    assert "microvm-nsbox" not in pathlib.Path("/proc/self/mountinfo").read_text()



def test_killed_host_takes_its_box_down(microvm_bin, image, tmp_path):
    """`microvm up` killed with SIGKILL: its box dies with it (parent-death signals), and the
    next start removes the private directory the dead host could not remove itself."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Up(microvm_bin, image, tmp_path / "a", tmpdir=tmp_path / "unpack")
    try:
        pids = box_pids(a.proc.pid)
        assert pids
        namespaces = {os.readlink(f"/proc/{pids[0]}/ns/{k}") for k in ("net", "mnt", "pid")}
        a.proc.kill()
        a.proc.wait(timeout=10)
        vpnlib.wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), 10,
                        "the box's processes to end")
        for ns in namespaces:
            vpnlib.wait_for(lambda n=ns: ns_users(n) == [], 10, f"{ns} to be released")
        assert len(list(a.tmpdir.iterdir())) == 1          # the dead host's upper layer
    finally:
        a.close()
    b = Up(microvm_bin, image, tmp_path / "b", tmpdir=tmp_path / "unpack")
    try:
        assert len(list(b.tmpdir.iterdir())) == 1          # only b's own now
        assert box_pids(b.proc.pid)
    finally:
        b.close()
    assert list(b.tmpdir.iterdir()) == []
