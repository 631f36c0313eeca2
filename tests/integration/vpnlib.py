"""Reusable pieces for tests that need a real OpenVPN server and the guest agent.

Everything runs in network namespaces the test creates (root required):

    server netns  (SERVER_IP on the veth)
      - OpenVPN 2.6 server, UDP SERVER_IP:1194, pool VPN_NET/24, server address VPN_SERVER_IP
      - username/password verification script (USERS below); usernames starting with "web"
        are deferred: the server sends WEB_AUTH::<url> and the test approves or denies
      - a TCP target service on VPN_SERVER_IP:TARGET_PORT (reachable only through the
        tunnel): it sends TARGET_BANNER, echoes what it receives and, after the client's
        half-close, sends TARGET_BYE and closes
      - a DNS server on VPN_SERVER_IP:53 (pushed to clients with "dhcp-option DNS"):
        TARGET_NAME -> VPN_SERVER_IP, anything else -> NXDOMAIN
    client netns  (CLIENT_IP on the veth, no default route, resolv.conf -> 127.0.0.1)
      - microvm-agent over TCP on 127.0.0.1 (Agent below)

Typical use (module-scoped, the server is reused by every test of a module):

    @pytest.fixture(scope="module")
    def bed(tmp_path_factory):
        with vpnlib.Testbed(tmp_path_factory.mktemp("vpn")) as b:
            yield b

    @pytest.fixture(scope="module")
    def agent(bed, build_dir):
        with vpnlib.Agent(bed, build_dir / "guest/agent/microvm-agent") as a:
            yield a

    agent.request({"cmd": "ping"})          # one JSON line, one answer (authenticated)
    s, status = agent.proxy("10.77.8.1", 7000)   # an inbound proxy connection
    agent.connect(agent.control_port)       # an authenticated socket (made in the client netns)
    agent.connect_unauthenticated(7602)     # a raw one, for tests of the refusal

The agent runs over TCP, so it gets a fresh secret (--auth-secret-file, mode 0600;
agent.secret, agent.secret_file for `microvm up --agent-secret-file`) and every connection
made through Agent runs the authentication handshake (authlib.py) first.

Cleanup is guaranteed by the context managers: every process in the namespaces is killed
and the namespaces, veth and /etc/netns/<name> are removed, also after failures.
"""
import contextlib
import ctypes
import json
import os
import pathlib
import select
import signal
import socket
import subprocess
import textwrap
import threading
import time
import uuid

import authlib

OPENVPN = "/usr/sbin/openvpn"
SERVER_IP = "10.77.0.1"
CLIENT_IP = "10.77.0.2"
VPN_NET = "10.77.8.0"
VPN_SERVER_IP = "10.77.8.1"
VPN_PORT = 1194
TARGET_PORT = 7000
TARGET_NAME = "target.vpn.test"
TARGET_BANNER = b"hello from target\n"
TARGET_BYE = b"bye\n"
# username -> password accepted by the server's verification script.
USERS = {"alice": 'pa ss"w\\rd', "webok": "web", "webno": "web", "webslow": "web"}
# Pending-auth timeout (seconds) the server announces per deferred user (default 60).
WEBAUTH_TIMEOUT = {"webslow": 3}

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def needs_root():
    """Reason to skip, or None when the tests can run."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, tun devices)"
    if not os.path.exists(OPENVPN):
        return "needs openvpn"
    return None


def _run(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Netns:
    """A network namespace created for a test (unique name, removed by close())."""

    def __init__(self, role):
        self.name = f"mvt-{role}-{uuid.uuid4().hex[:8]}"
        _run("ip", "netns", "add", self.name)
        self.run("ip", "link", "set", "lo", "up")

    def run(self, *cmd, check=True):
        return _run("ip", "netns", "exec", self.name, *cmd, check=check)

    def popen(self, cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kw)

    def call(self, fn, *args):
        """Run fn(*args) in a thread that has entered this namespace; return its result.

        Sockets created by fn stay in this namespace and can be used from any thread.
        """
        out = {}

        def runner():
            fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            try:
                out["v"] = fn(*args)
            except BaseException as e:  # handed to the caller
                out["e"] = e

        t = threading.Thread(target=runner)
        t.start()
        t.join()
        if "e" in out:
            raise out["e"]
        return out["v"]

    def connect(self, host, port, timeout=10):
        """A TCP connection made from inside the namespace."""
        return self.call(socket.create_connection, (host, port), timeout)

    def pids(self):
        r = _run("ip", "netns", "pids", self.name, check=False)
        return [int(p) for p in r.stdout.split()]

    def close(self):
        for _ in range(20):
            pids = self.pids()
            if not pids:
                break
            for p in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            time.sleep(0.05)
        _run("ip", "netns", "del", self.name, check=False)
        etc = pathlib.Path("/etc/netns") / self.name
        if etc.exists():
            for f in etc.iterdir():
                f.unlink()
            etc.rmdir()


def wait_for(pred, timeout, what, interval=0.1):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


VERIFY_SCRIPT = r'''#!/usr/bin/python3
# OpenVPN auth-user-pass-verify script (via-file): $1 holds username and password.
import os, sys
USERS = %(users)r
TIMEOUTS = %(timeouts)r
state = %(state)r
user, pw = open(sys.argv[1]).read().split("\n")[:2]
if USERS.get(user) != pw:
    sys.exit(1)
if not user.startswith("web"):
    sys.exit(0)
# Deferred web authentication: tell the test where to answer, then ask the client to
# open the URL.
with open(os.path.join(state, "pending-" + user + ".tmp"), "w") as f:
    f.write(os.environ["auth_control_file"] + "\n" +
            os.environ.get("auth_failed_reason_file", "") + "\n")
os.rename(os.path.join(state, "pending-" + user + ".tmp"), os.path.join(state, "pending-" + user))
with open(os.environ["auth_pending_file"], "w") as f:
    f.write(str(TIMEOUTS.get(user, 60)) + "\nwebauth\nWEB_AUTH::http://auth.test/login/" +
            user + "\n")
sys.exit(2)
'''

SERVICES_SCRIPT = r'''#!/usr/bin/python3
# Target service and DNS server for the VPN tests (run inside the server namespace).
import socket, struct, sys, threading
ip, port, name, banner, bye = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def serve(c):
    with c:
        c.sendall(banner.encode() + b"\n")
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.sendall(bye.encode() + b"\n")

def tcp():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(1024)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 53))
    while True:
        q, peer = s.recvfrom(512)
        if len(q) < 12:
            continue
        i, labels = 12, []
        while i < len(q) and q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
            i += 1 + q[i]
        qend = i + 5
        qname, qtype = ".".join(labels).lower(), struct.unpack(">H", q[i + 1:i + 3])[0]
        flags = 0x8180 if qname == name else 0x8183
        an = 1 if qname == name and qtype == 1 else 0
        r = q[:2] + struct.pack(">HHHHH", flags, 1, an, 0, 0) + q[12:qend]
        if an:
            r += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
        s.sendto(r, peer)

threading.Thread(target=dns, daemon=True).start()
print("ready", flush=True)
tcp()
'''


def make_certs(d):
    """A test CA and a server certificate signed by it in @d (ca.crt, server.crt/.key)."""
    d = pathlib.Path(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run("openssl", "req", "-x509", *ec, "-days", "3650", "-subj", "/CN=test-ca",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    _run("openssl", "req", *ec, "-subj", "/CN=server", "-keyout", str(d / "server.key"),
         "-out", str(d / "server.csr"))
    (d / "srv.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                               "extendedKeyUsage=serverAuth\n")
    _run("openssl", "x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"),
         "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "3650",
         "-extfile", str(d / "srv.ext"), "-out", str(d / "server.crt"))


def client_profile(d, remote=SERVER_IP, port=VPN_PORT, extra=""):
    """Client profile text for a server whose CA is @d/ca.crt (inline)."""
    ca = (pathlib.Path(d) / "ca.crt").read_text()
    return textwrap.dedent(f"""\
        client
        dev tun
        proto udp
        remote {remote} {port}
        nobind
        remote-cert-tls server
        verb 3
        """) + extra + f"<ca>\n{ca}</ca>\n"


class Testbed:
    """Server and client namespaces, an OpenVPN server, a target service and DNS."""

    def __init__(self, workdir, start_timeout=20):
        """@start_timeout: seconds the OpenVPN server gets to start (more when emulated)."""
        self.dir = pathlib.Path(workdir)
        self.start_timeout = start_timeout
        self.server = None
        self.client = None
        self.procs = []

    # -- set-up ------------------------------------------------------------------------
    def __enter__(self):
        try:
            self._netns()
            self._certs()
            self._server()
            self._services()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _netns(self):
        self.server = Netns("srv")
        self.client = Netns("cli")
        veth = "mvt" + uuid.uuid4().hex[:8]
        _run("ip", "link", "add", veth + "a", "netns", self.server.name, "type", "veth",
             "peer", "name", veth + "b", "netns", self.client.name)
        self.server.run("ip", "addr", "add", SERVER_IP + "/24", "dev", veth + "a")
        self.server.run("ip", "link", "set", veth + "a", "up")
        self.client.run("ip", "addr", "add", CLIENT_IP + "/24", "dev", veth + "b")
        self.client.run("ip", "link", "set", veth + "b", "up")
        # The system resolver in the client namespace asks 127.0.0.1 (nothing listens):
        # names not served by the VPN's DNS fail fast and never leave the namespace.
        etc = pathlib.Path("/etc/netns") / self.client.name
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    def _certs(self):
        make_certs(self.dir)

    def _server(self):
        d = self.dir
        self.auth_state = d / "auth"
        self.auth_state.mkdir()
        (d / "tmp").mkdir()
        verify = d / "verify.py"
        verify.write_text(VERIFY_SCRIPT % {"users": USERS, "timeouts": WEBAUTH_TIMEOUT,
                                           "state": str(self.auth_state)})
        verify.chmod(0o755)
        conf = textwrap.dedent(f"""\
            dev tunsrv0
            dev-type tun
            proto udp
            local {SERVER_IP}
            port {VPN_PORT}
            topology subnet
            server {VPN_NET} 255.255.255.0
            ca {d}/ca.crt
            cert {d}/server.crt
            key {d}/server.key
            dh none
            verify-client-cert none
            username-as-common-name
            duplicate-cn
            script-security 2
            auth-user-pass-verify {verify} via-file
            tmp-dir {d}/tmp
            disable-dco
            push "dhcp-option DNS {VPN_SERVER_IP}"
            keepalive 5 30
            hand-window 120
            verb 3
            """)
        (d / "server.conf").write_text(conf)
        self.server_log = d / "server.log"
        log = open(self.server_log, "w")
        self.server_proc = self.server.popen([OPENVPN, "--config", str(d / "server.conf")],
                                             stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(self.server_proc)
        wait_for(lambda: "Initialization Sequence Completed" in self.server_log.read_text()
                 or self.server_proc.poll() is not None, self.start_timeout,
                 "the OpenVPN server")
        if self.server_proc.poll() is not None:
            raise RuntimeError("OpenVPN server failed:\n" + self.server_log.read_text())

    def _services(self):
        script = self.dir / "services.py"
        script.write_text(SERVICES_SCRIPT)
        p = self.server.popen(["/usr/bin/python3", str(script), VPN_SERVER_IP, str(TARGET_PORT),
                               TARGET_NAME, TARGET_BANNER.decode().strip(),
                               TARGET_BYE.decode().strip()],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs.append(p)
        line = p.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError("target services failed: " + line.decode(errors="replace"))

    # -- for tests ---------------------------------------------------------------------
    def profile(self, remote=SERVER_IP, port=VPN_PORT, extra=""):
        """Client profile text (CA inline) for this server."""
        return client_profile(self.dir, remote, port, extra)

    def pending(self, user, timeout=30):
        """Wait for the server to defer @user's web authentication; (control, reason) paths."""
        f = self.auth_state / ("pending-" + user)
        wait_for(f.exists, timeout, f"deferred authentication of {user}")
        control, reason = f.read_text().split("\n")[:2]
        f.unlink()
        return control, reason

    def approve(self, user, timeout=30):
        control, _ = self.pending(user, timeout)
        pathlib.Path(control).write_text("1")

    def deny(self, user, why="denied by test", timeout=30):
        control, reason = self.pending(user, timeout)
        if reason:
            pathlib.Path(reason).write_text(why)
        pathlib.Path(control).write_text("0")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(5)
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
        self.procs = []
        for ns in (self.client, self.server):
            if ns:
                ns.close()


class ControlConn:
    """One control connection: many requests, one JSON answer line each."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self, timeout=60):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the agent")
            p = select.poll()
            p.register(self.sock, select.POLLIN)
            if not p.poll(left * 1000):
                continue
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("agent closed the control connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, obj, timeout=60):
        self.send_raw(json.dumps(obj).encode() + b"\n")
        return self.read_line(timeout)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Agent:
    """microvm-agent over TCP inside the test bed's client namespace."""

    def __init__(self, bed, binary, control_port=1025, proxy_port=7602, args=(), wrapper=(),
                 secret=None):
        self.bed = bed
        self.ns = bed.client
        self.binary = str(binary)
        self.control_port = control_port
        self.proxy_port = proxy_port
        self.dir = pathlib.Path(bed.dir) / ("agent-" + uuid.uuid4().hex[:6])
        self.args = list(args)
        self.wrapper = list(wrapper)   # e.g. ["unshare", "--pid", "--fork"]
        self.proc = None
        self.secret = secret or authlib.new_secret()
        self.secret_file = self.dir / "secret"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "agent.log"
        self.log = open(self.log_path, "a")
        authlib.write_secret(self.secret_file, self.secret)
        self.proc = self.ns.popen(
            [*self.wrapper, self.binary, "--transport", "tcp", "--listen", "127.0.0.1",
             "--control-port", str(self.control_port), "--proxy-port", str(self.proxy_port),
             "--state-dir", str(self.dir / "state"), "--run-dir", str(self.dir / "run"),
             "--auth-secret-file", str(self.secret_file), "--verbose", *self.args],
            stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("agent exited:\n" + self.log_path.read_text())
            try:
                self.connect(self.control_port, 1).close()
                return True
            except OSError:
                return False
        wait_for(up, 10, "the agent's control port")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    @property
    def pid(self):
        return self.proc.pid

    def log_count(self, text):
        """How many lines of the agent's output (--verbose) so far contain @text."""
        return sum(text in line for line in self.log_path.read_text().splitlines())

    def connect_unauthenticated(self, port, timeout=10):
        """A raw TCP connection to @port from inside the namespace (no handshake)."""
        return self.ns.connect("127.0.0.1", port, timeout)

    def connect(self, port, timeout=10, secret=None):
        """A TCP connection to @port that has passed the authentication handshake.

        @secret: the secret to prove (default: the agent's); raises authlib.AuthError when
        the agent does not prove it.
        """
        s = self.connect_unauthenticated(port, timeout)
        try:
            authlib.authenticate(s, secret or self.secret, port)
        except BaseException:
            s.close()
            raise
        return s

    def conn(self, timeout=10):
        return ControlConn(self.connect(self.control_port, timeout))

    def request(self, obj, timeout=60):
        with self.conn() as c:
            return c.request(obj, timeout)

    def children(self):
        """(pid, state, comm) of the agent's child processes."""
        out = []
        for task in pathlib.Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                for c in (task / "children").read_text().split():
                    with contextlib.suppress(FileNotFoundError):
                        stat = pathlib.Path(f"/proc/{c}/stat").read_text()
                        comm = stat[stat.index("(") + 1:stat.rindex(")")]
                        state = stat[stat.rindex(")") + 2]
                        out.append((int(c), state, comm))
        return out

    def openvpn_pid(self):
        for pid, state, comm in self.children():
            if comm == "openvpn" and state != "Z":
                return pid
        return None

    def proxy_open(self, host, port):
        """Send a proxy handshake and return the socket without waiting for the status."""
        s = self.connect(self.proxy_port)
        h = host.encode() if isinstance(host, str) else host
        s.sendall(bytes([len(h)]) + h + port.to_bytes(2, "big"))
        return s

    def proxy(self, host, port, timeout=20):
        """Open a proxy connection: (socket, status byte or None if closed)."""
        s = self.proxy_open(host, port)
        s.settimeout(timeout)
        b = s.recv(1)
        return s, (b[0] if b else None)

    def raw_control(self):
        """A plain TCP connection to the control port that does nothing (an idle client)."""
        return self.ns.connect("127.0.0.1", self.control_port)


@contextlib.contextmanager
def vpn_services(bed, d, page, http_port=8080, ssh_port=2222, ssh_command=None,
                 start_timeout=10):
    """An HTTP server (serving page.txt = @page) and an sshd on the VPN server's address.

    Both listen on VPN_SERVER_IP in the server namespace only, so they are reachable through
    the tunnel and nowhere else.  Host and user ed25519 keys are made in @d; yields @d (the
    user key is @d/user).  With @ssh_command every login runs that command (sshd's
    ForceCommand), so an interactive `ssh host` prints its output and ends.  Killed on exit.
    @start_timeout: seconds for both to listen (the nested tier's emulated machine needs more).
    """
    vip = VPN_SERVER_IP
    (d / "www").mkdir()
    (d / "www" / "page.txt").write_text(page)
    http = bed.server.popen(["/usr/bin/python3", "-m", "http.server", str(http_port),
                             "--bind", vip, "--directory", str(d / "www")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sshd = None
    try:
        for key in ("host", "user"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                           check=True)
        (d / "authorized_keys").write_text((d / "user.pub").read_text())
        (d / "authorized_keys").chmod(0o600)
        (d / "sshd_config").write_text(
            f"ListenAddress {vip}:{ssh_port}\nHostKey {d}/host\n"
            f"AuthorizedKeysFile {d}/authorized_keys\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nPidFile none\n"
            f"AllowUsers {os.environ.get('USER', 'root')} root\n" +
            (f"ForceCommand {ssh_command}\n" if ssh_command else ""))
        os.makedirs("/run/sshd", exist_ok=True)
        with open(d / "sshd.log", "w") as log:
            sshd = bed.server.popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                                    stdout=subprocess.DEVNULL, stderr=log)
        for port in (http_port, ssh_port):
            wait_for(lambda p=port: bed.server.run("ss", "-Hltn", f"sport = :{p}")
                     .stdout.strip(), start_timeout, f"a listener on port {port}")
        yield d
    finally:
        for p in (http, sshd):
            if p is not None:
                p.kill()
                p.wait()


def check_ssh_through_socks(keys, ssh_port, socks_port, user=None, connect_timeout=20):
    """OpenSSH to TARGET_NAME:@ssh_port through the SOCKS5 proxy 127.0.0.1:@socks_port
    (ProxyCommand `nc -X 5`, the name resolved behind the proxy), with the user key made by
    vpn_services() in @keys; asserts that a command ran where the VPN address lives."""
    user = user or os.environ.get("USER", "root")
    r = subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(keys / "user"), "-p", str(ssh_port),
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", f"ConnectTimeout={connect_timeout}",
         "-o", f"ProxyCommand=nc -X 5 -x 127.0.0.1:{socks_port} %h %p",
         f"{user}@{TARGET_NAME}", "echo through-vpn-$((6*7)); hostname -I"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "through-vpn-42"
    assert VPN_SERVER_IP in lines[1]      # the command ran where the VPN address lives
