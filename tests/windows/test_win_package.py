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
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import uuid
import zipfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
import sockslib  # noqa: E402
import vpnlib  # noqa: E402
from winlib import BUILD, WINE, MicrovmExe, wine_env  # noqa: E402

TOP = pathlib.Path(__file__).resolve().parents[2]
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


def tree_digest(top):
    """A digest of the names, kinds and contents of everything under TOP."""
    h = hashlib.sha256()
    for d, dirs, files in os.walk(top):
        dirs.sort()
        h.update(f"dir {os.path.relpath(d, top)}\0".encode())
        for f in sorted(files):
            p = pathlib.Path(d, f)
            h.update(f"file {p.relative_to(top)}\0".encode())
            h.update(os.readlink(p).encode() if p.is_symlink() else
                     hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


class Installed(MicrovmExe):
    """The package unpacked into C:\\Program Files\\microvm: its microvm.exe, run from a
    directory of its own, without the test run's MICROVM_* (rootfs, build): only the wsl.exe
    double and its start timeout, as a user's machine with WSL would have wsl.exe."""

    timeout = 90

    @staticmethod
    def base_env():
        return wine_env({k: v for k, v in os.environ.items() if not k.startswith("MICROVM_")})

    def __init__(self, tmp, lan):
        self.version = project_version()
        self.name = f"microvm-{self.version}-windows-x86_64"
        self.zip = BUILD / f"{self.name}.zip"
        assert self.zip.is_file(), f"{self.zip} missing: run `make windows-package`"
        self.prefix = pathlib.Path(self.base_env()["WINEPREFIX"])
        if not (self.prefix / "drive_c").is_dir():   # a prefix of its own: Wine makes it
            subprocess.run([WINE, "wineboot", "--init"], env=self.base_env(), check=True,
                           capture_output=True, timeout=120)
        self.install_dir = self.prefix / "drive_c/Program Files/microvm"
        shutil.rmtree(self.install_dir, ignore_errors=True)
        self.install_dir.mkdir(parents=True)
        with zipfile.ZipFile(self.zip) as z:
            self.names = z.namelist()
            z.extractall(self.install_dir)
        # docs/windows.md: nothing writes into the install folder (test_zz checks)
        self.unpacked = tree_digest(self.install_dir)
        self.root = self.install_dir / self.name
        self.root_win = "C:\\Program Files\\microvm\\" + self.name
        self.exe = self.root / "bin/microvm.exe"
        self.tmp = self.cwd = tmp
        super().__init__(tmp, lan.wsl.name)

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


def package_script(out, **env):
    """scripts/windows-package.sh BUILD OUT with ENV."""
    return subprocess.run(["sh", str(TOP / "scripts/windows-package.sh"), str(BUILD), str(out)],
                          env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=300)


def test_0_the_import_check_fails_when_objdump_does(tmp_path):
    """A failing objdump, or one whose output lists no DLL (not even kernel32.dll), stops
    the package script; and the run, failed, leaves no zip behind: the zip of an earlier
    run in its output directory (a stale one put there first) is gone."""
    zip_name = f"microvm-{project_version()}-windows-x86_64.zip"
    for out, objdump, said in (("a", "false", "false -p bin/microvm.exe failed"),
                               ("b", "true", "lists no kernel32.dll")):
        stale = tmp_path / out / zip_name
        stale.parent.mkdir()
        stale.write_bytes(b"PK\x05\x06" + bytes(18))     # an empty zip, of an earlier run
        r = package_script(tmp_path / out, OBJDUMP=objdump)
        assert r.returncode != 0 and said in r.stderr, r.stderr
        assert not stale.exists(), f"{stale}: the zip of an earlier run left behind"
    assert not list(tmp_path.rglob("*.zip*"))


def test_0_meson_install_installs_microvm_only(tmp_path):
    """`meson install` of the cross build puts no libuv or cJSON into the prefix (a
    mingw libuv.pc in /usr/local/lib/pkgconfig would be found by native builds): only
    the package script adds them."""
    r = subprocess.run(["meson", "install", "-C", str(BUILD), "--no-rebuild", "--quiet",
                        "--destdir", str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert any(f.endswith("lib/pkgconfig/microvm.pc") for f in files), files
    assert [f for f in files if re.search(r"uv|cjson", f, re.I)] == [], files


def test_a_the_zip_is_one_folder_with_what_a_user_and_an_app_need(pkg):
    assert {n.split("/")[0] for n in pkg.names} == {pkg.name}, sorted(pkg.names)[:5]
    for f in ("bin/microvm.exe", "bin/rootfs.tar.gz", "README.txt",
              "include/microvm/microvm.h", "include/microvm/version.h",
              "lib/libmicrovm.a", "lib/libuv.a", "lib/libcjson.a",
              "lib/pkgconfig/microvm.pc", "lib/pkgconfig/libuv.pc",
              "lib/pkgconfig/libcjson.pc", "share/doc/libuv/LICENSE",
              "share/doc/cjson/LICENSE", "share/doc/microvm/LICENSE",
              "share/doc/openvpn/copyright", "share/doc/liblzo2-2/copyright",
              "share/doc/mingw-w64-x86-64-dev/copyright", "SOURCES.txt",
              "share/man/man1/microvm-up.1"):
        assert (pkg.root / f).is_file(), f
    assert pkg.version in (pkg.root / "README.txt").read_text()
    # microvm.exe is the only program: no DLL of libgcc, winpthreads, libuv... beside it
    assert [p.name for p in (pkg.root / "bin").iterdir()
            if p.suffix.lower() == ".dll"] == []


def sources_rows(pkg, section):
    """The rows of SOURCES.txt's table that follows the line starting with SECTION."""
    lines = (pkg.root / "SOURCES.txt").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(section)) + 2
    rows = []
    for ln in lines[start:]:
        if not ln.strip():
            break
        rows.append(ln.split())
    return rows


def test_a_the_licences_and_sources_of_every_part_are_there(pkg, tmp_path):
    """Every Debian package in the rootfs has its copyright file and its source package
    in SOURCES.txt; openvpn with the version of the openvpn in the rootfs."""
    rootfs = sources_rows(pkg, "In bin\\rootfs.tar.gz")
    assert rootfs, (pkg.root / "SOURCES.txt").read_text()
    for bin_pkg, *_ in rootfs:
        assert (pkg.root / "share/doc" / bin_pkg / "copyright").is_file(), bin_pkg
    names = {r[0] for r in rootfs}
    assert {"openvpn", "liblzo2-2", "libc6", "libssl3"} <= names, names
    # the openvpn in the rootfs: this machine's (the same bytes), so dpkg knows its version
    with tarfile.open(pkg.root / "bin/rootfs.tar.gz") as t:
        t.extract("./usr/sbin/openvpn", tmp_path, set_attrs=False)
    ovpn = tmp_path / "usr/sbin/openvpn"
    assert ovpn.read_bytes() == pathlib.Path("/usr/sbin/openvpn").read_bytes()
    ver = subprocess.run(["dpkg-query", "-W", "-f", "${Version} ${source:Package} "
                          "${source:Version}", "openvpn"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert ["openvpn", *ver] in rootfs, rootfs
    # and the version it says of itself is that one's upstream part
    ovpn.chmod(0o755)
    said = subprocess.run([str(ovpn), "--version"], capture_output=True, text=True).stdout
    upstream = re.match(r"OpenVPN (\S+) ", said).group(1)
    assert ver[0].split(":")[-1].startswith(upstream + "-"), (upstream, ver)
    linked = {r[0]: r[1] for r in sources_rows(pkg, "Linked into bin\\microvm.exe")}
    assert set(linked) == {"libuv1", "cjson", "mingw-w64"}, linked
    # the written offer of the source, and the way to Debian's copy of it
    text = " ".join((pkg.root / "SOURCES.txt").read_text().split())
    for said in ("Written offer of the source code", "For at least three years",
                 "whoever distributed it to you will give you, or any third party, on request",
                 "apt-get source NAME=VERSION", "Debian's snapshot archive"):
        assert said in text, (said, text)
    readme = (pkg.root / "README.txt").read_text()
    assert "GPL" in readme and "SOURCES.txt" in readme, readme


def test_b_up_detach_from_program_files_imports_the_packaged_rootfs(pkg):
    r = pkg.run_detach(pkg.tmp)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "microvm is up" in r.stdout, r.stdout + r.stderr
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
    r = subprocess.run([WINE, str(exe)], env=pkg.base_env(), capture_output=True,
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


def test_zz_nothing_was_written_into_the_install_folder(pkg):
    """docs/windows.md: up, status, down and uninstall write only under %LOCALAPPDATA%."""
    assert tree_digest(pkg.install_dir) == pkg.unpacked
