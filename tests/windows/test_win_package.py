"""The Windows package, installed and used as a user and an application would (run by
scripts/test-windows.sh after `make windows-package`).

    microvm-<version>-windows-x86_64.zip  ->  C:\\Program Files\\microvm\\  (inside Wine's prefix)
      bin\\microvm.exe up --detach   (no --rootfs, no MICROVM_* override: bin\\rootfs.tar.gz)
        ->  the real agent from that rootfs, behind the wsl.exe double
      SOCKS5 127.0.0.1:1080  ->  the agent's inbound proxy  ->  a TCP service on the "LAN"
      status --json, down, uninstall
      app.c  --(x86_64-w64-mingw32-gcc, pkg-config on the package's microvm.pc)-->  app.exe
        ->  mvm_version() and a SOCKS5 server of its own started and stopped, under Wine

Every file the user needs comes from the unpacked zip: microvm.exe, the rootfs it imports,
the headers, libmicrovm.a, libuv.a, libcjson.a and their .pc files; a package missing one
of them fails here.  Only the wsl.exe double (MICROVM_WSL_EXE) comes from the build tree.

The "WSL VM" network is a namespace of the test's own (FAKE_WSL_NETNS) with a veth to a
"LAN" namespace holding the target service (the agent refuses loopback destinations,
guest/agent/policy.c, so the target is across the veth).  One `up` serves every check, in
file order, the last being `uninstall`.  Needs root, the cross build (MICROVM_BUILD_WIN)
and the package in it.
"""
import hashlib
import json
import os
import pathlib
import pwd
import shlex
import shutil
import socket
import subprocess
import threading
import uuid
import zipfile

import pytest

# (test_win_up puts tests/integration, vpnlib's home, on the path)
from test_win_up import BUILD, WINE, win_path
import sockslib  # noqa: E402
import vpnlib  # noqa: E402

CC = "x86_64-w64-mingw32-gcc"
LAN_IP, WSL_IP = "10.78.0.1", "10.78.0.2"
TARGET_PORT = 7000
BANNER = b"hello from the LAN\n"


def project_version():
    info = subprocess.run(["meson", "introspect", "--projectinfo", str(BUILD)],
                          capture_output=True, text=True, check=True).stdout
    return json.loads(info)["version"]


class Lan:
    """The WSL VM's namespace and a LAN namespace across a veth, with a banner+echo
    service on LAN_IP:TARGET_PORT."""

    def __init__(self):
        self.wsl = vpnlib.Netns("wsl")
        self.lan = vpnlib.Netns("lan")
        veth = "mvp" + uuid.uuid4().hex[:8]
        subprocess.run(["ip", "link", "add", veth + "a", "netns", self.lan.name, "type",
                        "veth", "peer", "name", veth + "b", "netns", self.wsl.name],
                       check=True)
        self.lan.run("ip", "addr", "add", LAN_IP + "/24", "dev", veth + "a")
        self.lan.run("ip", "link", "set", veth + "a", "up")
        self.wsl.run("ip", "addr", "add", WSL_IP + "/24", "dev", veth + "b")
        self.wsl.run("ip", "link", "set", veth + "b", "up")

        def listen():
            s = socket.socket()
            s.bind((LAN_IP, TARGET_PORT))
            s.listen(16)
            return s
        self.srv = self.lan.call(listen)
        self.peers = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, addr = self.srv.accept()
            except OSError:
                return
            self.peers.append(addr[0])
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        with c:
            c.sendall(BANNER)
            while (d := c.recv(65536)):
                c.sendall(d)

    def close(self):
        try:
            self.srv.shutdown(socket.SHUT_RDWR)    # wakes the accept() in _serve
        except OSError:
            pass
        self.srv.close()
        self.wsl.close()
        self.lan.close()


class Installed:
    """The package unpacked into C:\\Program Files\\microvm, and how to run its programs."""

    def __init__(self, tmp, lan):
        self.version = project_version()
        self.name = f"microvm-{self.version}-windows-x86_64"
        self.zip = BUILD / f"{self.name}.zip"
        assert self.zip.is_file(), f"{self.zip} missing: run `make windows-package`"
        self.prefix = pathlib.Path(os.environ.get("WINEPREFIX", BUILD / "wine"))
        if not (self.prefix / "drive_c").is_dir():   # a prefix of its own: Wine makes it
            subprocess.run([WINE, "wineboot", "--init"], env=self.env_base(), check=True,
                           capture_output=True, timeout=120)
        self.install_dir = self.prefix / "drive_c/Program Files/microvm"
        shutil.rmtree(self.install_dir, ignore_errors=True)
        self.install_dir.mkdir(parents=True)
        with zipfile.ZipFile(self.zip) as z:
            self.names = z.namelist()
            z.extractall(self.install_dir)
        self.root = self.install_dir / self.name
        self.root_win = "C:\\Program Files\\microvm\\" + self.name
        self.exe = self.root / "bin/microvm.exe"
        self.tmp = tmp
        state = tmp / "fake-wsl"
        state.mkdir()
        self.wsl_log = state / "log"
        # no MICROVM_* of the test run (rootfs, build): only the wsl.exe double and its
        # start timeout, as a user's machine with WSL would have wsl.exe
        self.env = dict(self.env_base(),
                        MICROVM_WSL_EXE=win_path(BUILD / "tests/windows/fake_wsl.exe"),
                        FAKE_WSL_DIR=win_path(state),
                        FAKE_WSL_NETNS=f"/run/netns/{lan.wsl.name}",
                        MICROVM_WSL_START_TIMEOUT="60")
        user = pwd.getpwuid(os.getuid()).pw_name
        self.appdir = self.prefix / "drive_c/users" / user / "AppData/Local/microvm"
        shutil.rmtree(self.appdir, ignore_errors=True)

    @staticmethod
    def env_base():
        env = {k: v for k, v in os.environ.items() if not k.startswith("MICROVM_")}
        env.setdefault("WINEPREFIX", str(BUILD / "wine"))
        env["WINEDEBUG"] = "-all"
        return env

    def run(self, *args, timeout=90):
        """microvm.exe ARGS, started from a directory of its own (not the package's)."""
        return subprocess.run([WINE, str(self.exe), *args], env=self.env, cwd=self.tmp,
                              capture_output=True, text=True, timeout=timeout)

    def up_detach(self, timeout=240):
        """`up --detach`, its output into files (Wine hands its own stderr to the
        background process too: a pipe would stay open while it runs)."""
        out, err = self.tmp / "detach.out", self.tmp / "detach.err"
        with open(out, "w") as o, open(err, "w") as e:
            r = subprocess.run([WINE, str(self.exe), "up", "--detach"], env=self.env,
                               cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                               timeout=timeout)
        return r.returncode, out.read_text(), err.read_text()

    def close(self):
        shutil.rmtree(self.install_dir, ignore_errors=True)
        shutil.rmtree(self.appdir, ignore_errors=True)


@pytest.fixture(scope="module")
def lan():
    sockslib.need_root()
    b = Lan()
    yield b
    b.close()


@pytest.fixture(scope="module")
def pkg(lan, tmp_path_factory):
    p = Installed(tmp_path_factory.mktemp("pkg"), lan)
    yield p
    if p.run("status").returncode == 0:     # a failed test left `up` running
        p.run("down")
    p.close()


def test_a_the_zip_is_one_folder_with_what_a_user_and_an_app_need(pkg):
    assert {n.split("/")[0] for n in pkg.names} == {pkg.name}, sorted(pkg.names)[:5]
    for f in ("bin/microvm.exe", "bin/rootfs.tar.gz", "README.txt",
              "include/microvm/microvm.h", "include/microvm/version.h",
              "lib/libmicrovm.a", "lib/libuv.a", "lib/libcjson.a",
              "lib/pkgconfig/microvm.pc", "lib/pkgconfig/libuv.pc",
              "lib/pkgconfig/libcjson.pc", "share/doc/libuv/LICENSE",
              "share/doc/cjson/LICENSE", "share/doc/microvm/LICENSE",
              "share/man/man1/microvm-up.1"):
        assert (pkg.root / f).is_file(), f
    assert pkg.version in (pkg.root / "README.txt").read_text()
    # microvm.exe is the only program: no DLL of libgcc, winpthreads, libuv... beside it
    assert [p.name for p in (pkg.root / "bin").iterdir()
            if p.suffix.lower() == ".dll"] == []


def test_b_up_detach_from_program_files_imports_the_packaged_rootfs(pkg):
    rc, out, err = pkg.up_detach()
    assert rc == 0, out + err
    assert "microvm is up" in out, out + err
    # the double imported the tarball next to microvm.exe, under "Program Files"
    imports = [ln for ln in pkg.wsl_log.read_text().splitlines() if ln.startswith("import ")]
    assert imports == [f"import microvm {win_path_c(pkg.appdir)}\\wsl "
                       f"{pkg.root_win}\\bin\\rootfs.tar.gz"], imports
    digest = hashlib.sha256((pkg.root / "bin/rootfs.tar.gz").read_bytes()).hexdigest()
    assert (pkg.appdir / "wsl/image.sha256").read_text().split()[0] == digest


def win_path_c(p):
    """The Windows name of a path inside Wine's drive C:."""
    rel = pathlib.Path(p).relative_to(pathlib.Path(os.environ.get(
        "WINEPREFIX", BUILD / "wine")) / "drive_c")
    return "C:\\" + str(rel).replace("/", "\\")


def test_c_status_says_the_agent_answers(pkg):
    r = pkg.run("status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    st = json.loads(r.stdout)
    assert st["vm_running"] and st["agent_reachable"], st
    assert st["hypervisor"] == "WSL2", st
    assert st["socks"]["running"] and st["socks"]["port"] == 1080, st


def test_d_socks5_reaches_a_service_through_the_agent(pkg, lan):
    code, s = sockslib.socks_open(1080, LAN_IP, TARGET_PORT, timeout=30)
    assert code == 0, f"SOCKS5 reply {code}"
    with s:
        assert sockslib.recv_exact(s, len(BANNER)) == BANNER
        msg = os.urandom(100000)
        s.sendall(msg)
        assert sockslib.recv_exact(s, len(msg)) == msg
    # the connection came from the WSL VM's side of the veth, i.e. from the agent
    assert lan.peers and lan.peers[-1] == WSL_IP, lan.peers


def test_e_an_app_builds_against_the_package_and_runs(pkg, tmp_path):
    app = tmp_path / "app.c"
    # mvm_version() as asked; and enough of the library that libuv (the SOCKS5 server's
    # loop thread), winpthreads, Winsock, CNG and cJSON (the manager) must link and run
    app.write_text(r'''
#include <stdio.h>
#include <string.h>
#include <microvm/microvm.h>

int main(void)
{
	const char *v = mvm_version();
	struct mvm_socks_config cfg;
	mvm_vsock *vs = mvm_vsock_new_tcp("127.0.0.1");
	mvm_socks *s;
	char secret[65];

	printf("libmicrovm %s\n", v);
	if (strcmp(v, MVM_VERSION_STRING) || !vs ||
	    mvm_socks_generate_secret(secret, sizeof(secret)) || strlen(secret) != 64)
		return 1;
	mvm_socks_config_init(&cfg);
	cfg.port = 0;
	s = mvm_socks_new(&cfg, vs);
	if (!s || mvm_socks_start(s) || !mvm_socks_port(s))
		return 2;
	printf("socks5 on port %u, %s\n", (unsigned)mvm_socks_port(s),
	       mvm_vpn_state_name(MVM_VPN_CONNECTED));
	mvm_socks_stop(s);
	mvm_socks_free(s);
	mvm_vsock_free(vs);
	return 0;
}
''')
    # pkg-config as an app's build would use it: the package's .pc files only, relocated
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(pkg.root / "lib/pkgconfig"),
               PKG_CONFIG_PATH="")
    env.pop("PKG_CONFIG_SYSROOT_DIR", None)
    pc = subprocess.run(["pkg-config", "--static", "--cflags", "--libs", "microvm"],
                        env=env, capture_output=True, text=True)
    assert pc.returncode == 0, pc.stderr
    # (the folder's blanks come back escaped, as make and Meson read them)
    flags = shlex.split(pc.stdout)
    dirs = {(f[:2], os.path.realpath(f[2:])) for f in flags if f[:2] in ("-I", "-L")}
    assert dirs == {("-I", str(pkg.root / "include")), ("-I", str(pkg.root / "include/cjson")),
                    ("-L", str(pkg.root / "lib"))}, flags
    exe = tmp_path / "app.exe"
    cc = subprocess.run([CC, "-o", str(exe), str(app), *flags, "-static"],
                        capture_output=True, text=True, timeout=120)
    assert cc.returncode == 0, cc.stderr
    r = subprocess.run([WINE, str(exe)], env=pkg.env_base(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"libmicrovm {pkg.version}", r.stdout
    assert lines[1].startswith("socks5 on port ") and lines[1].endswith(", connected"), r.stdout


def test_y_down(pkg, lan):
    r = pkg.run("down")
    assert r.returncode == 0 and "stopped" in r.stdout, r.stdout + r.stderr
    vpnlib.wait_for(lambda: not lan.wsl.pids(), 20, "the distro's processes to exit")
    r = pkg.run("status", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["running"] is False, r.stdout


def test_z_uninstall(pkg):
    r = pkg.run("uninstall", "--purge")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "removed the WSL distribution" in r.stdout, r.stdout
    assert not pkg.appdir.exists(), list(pkg.appdir.rglob("*"))
    assert any(ln.startswith("unregister microvm")
               for ln in pkg.wsl_log.read_text().splitlines())
