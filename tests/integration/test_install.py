"""`meson install` gives a usable libmicrovm (docs/library.md).

The build is installed into a temporary DESTDIR; a C program (tests/install/smoke.c) is then
compiled and linked against it with nothing but `pkg-config --cflags --libs microvm`
(PKG_CONFIG_PATH and PKG_CONFIG_SYSROOT_DIR point into the DESTDIR) and run against a fake
agent on the loopback: the headers, the shared library, its soname and exported symbols, the
static library with the .pc file's private libraries, and where the guest programs go.
No root needed.
"""
import os
import pathlib
import socket
import subprocess
import threading

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
SMOKE = TOP / "tests" / "install" / "smoke.c"
HEADERS = ["contract.h", "error.h", "export.h", "manager.h", "microvm.h", "runtime.h",
           "socks.h", "version.h", "vsock.h"]


def project_version():
    for line in (TOP / "meson.build").read_text().splitlines():
        if line.strip().startswith("version :"):
            return line.split("'")[1]
    raise AssertionError("no version in meson.build")


@pytest.fixture(scope="module")
def installed(build_dir, tmp_path_factory):
    """Install the build into a fresh DESTDIR; return (destdir, prefix dir inside it)."""
    dest = tmp_path_factory.mktemp("destdir")
    empty_cache = tmp_path_factory.mktemp("cache")
    subprocess.run(["meson", "install", "-C", str(build_dir), "--destdir", str(dest),
                    "--quiet"], check=True, capture_output=True, text=True, timeout=600,
                   env=dict(os.environ, MICROVM_CACHE=str(empty_cache)))
    # nothing built in this cache: nothing of the guest installed, and no error
    assert not list(dest.rglob("share/microvm"))
    pcs = list(dest.rglob("pkgconfig/microvm.pc"))
    assert len(pcs) == 1, f"one microvm.pc expected, found {pcs}"
    return dest, pcs[0]


def pkgconfig(installed, *args):
    dest, pc = installed
    env = dict(os.environ, PKG_CONFIG_PATH=str(pc.parent), PKG_CONFIG_SYSROOT_DIR=str(dest))
    out = subprocess.run(["pkg-config", *args, "microvm"], env=env, check=True,
                         capture_output=True, text=True).stdout
    return out.split()


class FakeAgent:
    """A one-line-per-connection TCP server on 127.0.0.1 that answers like the agent's ping."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                conn.sendall(b'{"status":"ok","pong":true}\n')

    def close(self):
        self.sock.close()


def test_layout(installed):
    dest, pc = installed
    libdir = pc.parent.parent
    prefix = libdir
    while not (prefix / "include").exists():
        prefix = prefix.parent
        assert prefix != dest, "no include/ in the install"
    for h in HEADERS:
        assert (prefix / "include" / "microvm" / h).is_file(), h
    assert (libdir / "libmicrovm.a").is_file()
    so = libdir / "libmicrovm.so.0"
    assert so.is_symlink() and so.resolve().name == f"libmicrovm.so.{project_version()}"
    assert (libdir / "libmicrovm.so").is_symlink()
    # the guest programs are not host commands
    for prog in ["microvm-agent", "microvm-init"]:
        assert not list(dest.rglob(f"bin/{prog}")), f"{prog} installed into a bindir"
        assert list(dest.rglob(f"microvm/{prog}")), f"{prog} not in libexec/microvm"
        assert "libexec" in str(list(dest.rglob(f"microvm/{prog}"))[0])
    assert list(dest.rglob("bin/microvm"))


def test_guest_files_go_to_datadir(build_dir, tmp_path):
    """What `make kernel image` left in the cache (the newest of each) goes to
    $datadir/microvm/, where the runtime looks for it."""
    cache = tmp_path / "cache"
    for key, body in (("old", b"old kernel"), ("new", b"new kernel")):
        (cache / "kernel" / key).mkdir(parents=True)
        (cache / "kernel" / key / "vmlinux").write_bytes(body)
        os.utime(cache / "kernel" / key / "vmlinux", (1, 1) if key == "old" else None)
    (cache / "image" / "k").mkdir(parents=True)
    (cache / "image" / "k" / "initramfs.cpio.gz").write_bytes(b"initramfs")
    (cache / "image" / "k" / "rootfs.tar.gz").write_bytes(b"rootfs")
    dest = tmp_path / "dest"
    subprocess.run(["meson", "install", "-C", str(build_dir), "--destdir", str(dest),
                    "--quiet"], check=True, capture_output=True, timeout=600,
                   env=dict(os.environ, MICROVM_CACHE=str(cache)))
    share = list(dest.rglob("share/microvm"))
    assert len(share) == 1
    assert (share[0] / "vmlinux").read_bytes() == b"new kernel"
    assert (share[0] / "initramfs.cpio.gz").read_bytes() == b"initramfs"
    assert (share[0] / "rootfs.tar.gz").read_bytes() == b"rootfs"
    # the runtime's last place to look is this datadir
    paths = (build_dir / "src" / "runtime" / "mvm_paths.h").read_text()
    prefix = dest / share[0].relative_to(dest).parent
    assert f'"/{prefix.relative_to(dest)}"' in paths


def test_abi(installed):
    """Soname, and only MVM_API symbols exported, each with version node MICROVM_0.2."""
    _, pc = installed
    so = pc.parent.parent / "libmicrovm.so.0"
    dyn = subprocess.run(["readelf", "-d", str(so)], check=True, capture_output=True,
                         text=True).stdout
    assert "Library soname: [libmicrovm.so.0]" in dyn
    syms = subprocess.run(["nm", "-D", "--defined-only", str(so)], check=True,
                          capture_output=True, text=True).stdout.split("\n")
    names = [line.split()[-1] for line in syms if line.strip()]
    funcs = [n for n in names if not n.startswith("MICROVM_")]
    assert "mvm_version@@MICROVM_0.2" in funcs
    assert "mvm_vm_new@@MICROVM_0.2" in funcs
    bad = [n for n in funcs if not (n.startswith("mvm_") and n.endswith("@@MICROVM_0.2"))]
    assert not bad, f"exported beyond the API: {bad}"
    # internal helpers stay inside
    assert not [n for n in funcs if n.startswith("mvm_set_error")]
    # every exported function is declared in an installed header
    headers = "".join((TOP / "include" / "microvm" / h).read_text()
                      for h in HEADERS if h != "version.h")
    headers += (TOP / "include" / "microvm" / "version.h.in").read_text()
    undeclared = [n for n in funcs if n.split("@")[0] + "(" not in headers]
    assert not undeclared, undeclared


def run_smoke(exe, env):
    agent = FakeAgent()
    try:
        r = subprocess.run([str(exe), str(agent.port)], env=env, capture_output=True,
                           text=True, timeout=30)
    finally:
        agent.close()
    assert r.returncode == 0, r.stderr
    assert f"version {project_version()}" in r.stdout
    assert "default memory 256 MiB, agent port 1025" in r.stdout
    assert 'reply {"status":"ok","pong":true}' in r.stdout
    assert agent.requests == [b'{"cmd":"ping"}\n']


def test_shared_program(installed, tmp_path):
    """cc smoke.c $(pkg-config --cflags --libs microvm), run against libmicrovm.so.0."""
    _, pc = installed
    exe = tmp_path / "smoke"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", str(SMOKE), "-o", str(exe),
                    *pkgconfig(installed, "--cflags", "--libs")], check=True, timeout=120)
    libdir = pc.parent.parent
    env = dict(os.environ, LD_LIBRARY_PATH=str(libdir))
    ldd = subprocess.run(["ldd", str(exe)], env=env, capture_output=True, text=True).stdout
    assert f"libmicrovm.so.0 => {libdir}/libmicrovm.so.0" in ldd, ldd
    run_smoke(exe, env)


def test_static_program(installed, tmp_path):
    """The static library links with the .pc file's Libs.private (pkg-config --static)."""
    _, pc = installed
    flags = pkgconfig(installed, "--static", "--cflags", "--libs")
    archive = str(pc.parent.parent / "libmicrovm.a")
    flags = [archive if f == "-lmicrovm" else f for f in flags]
    assert archive in flags, flags
    exe = tmp_path / "smoke-static"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", str(SMOKE), "-o", str(exe),
                    *flags], check=True, timeout=120)
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True).stdout
    assert "libmicrovm" not in ldd
    run_smoke(exe, dict(os.environ))
