"""Helpers for the guest image tests: build scripts, QEMU, the agent's JSON protocol.

The guest kernel and image come from guest/kernel/build.sh and guest/image/build.sh (both
cached, so calling them here is instant once `make kernel image` ran).
"""
import json
import os
import pathlib
import socket
import subprocess
import tarfile
import time

import authlib

TOP = pathlib.Path(__file__).resolve().parents[2]
KERNEL_SH = TOP / "guest" / "kernel" / "build.sh"
IMAGE_SH = TOP / "guest" / "image" / "build.sh"


def kernel_dir(arch="x86_64"):
    """The built guest kernel's cache directory for @arch, or None if it is not built."""
    r = subprocess.run(["sh", str(KERNEL_SH), "--arch", arch, "--print-path"],
                       capture_output=True, text=True)
    return pathlib.Path(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else None


def image_env(build_dir, **extra):
    env = dict(os.environ, MICROVM_BUILD=str(build_dir))
    env.update(extra)
    return env


def build_image(build_dir, *args, env=None):
    """Run guest/image/build.sh; return the output directory it printed."""
    r = subprocess.run(["sh", str(IMAGE_SH), *args], capture_output=True, text=True,
                       env=env or image_env(build_dir), timeout=600)
    assert r.returncode == 0, f"image build failed:\n{r.stderr}"
    return pathlib.Path(r.stdout.strip().splitlines()[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_request(port, request, timeout=5.0, host="127.0.0.1", secret=None,
                  agent_port=1025):
    """Send one JSON request on a fresh connection; return the decoded first reply line.

    @secret: the agent's auth secret (an agent on TCP requires it): the connection runs the
    authentication handshake (authlib.py) first, for the agent's port @agent_port (the
    guest's, which differs from @port behind a port forward).
    """
    with socket.create_connection((host, port), timeout=timeout) as s:
        if secret is not None:
            authlib.authenticate(s, secret, agent_port)
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while b"\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data.strip():
        raise ConnectionError("empty reply")
    return json.loads(data.split(b"\n", 1)[0])


AGENT_SECRET_PATH = "etc/microvm/agent-secret"     # INIT_AGENT_SECRET in guest/init/init.h


def _cpio_entry(name, mode, data=b""):
    """One newc cpio member (root-owned)."""
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
    head = b"070701" + b"".join(b"%08x" % f for f in fields) + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def initrd_with_secret(initrd, secret, out):
    """@initrd plus a second gzipped cpio holding the agent's secret (mode 0600) at
    /etc/microvm/agent-secret, where microvm-init points an agent on TCP (microvm.agent=tcp).

    The kernel unpacks concatenated archives in order; the secret never appears on QEMU's
    command line.  Returns @out.
    """
    import gzip

    arch = (_cpio_entry("etc", 0o040755) + _cpio_entry("etc/microvm", 0o040700) +
            _cpio_entry(AGENT_SECRET_PATH, 0o100600, secret.encode() + b"\n") +
            _cpio_entry("TRAILER!!!", 0))
    data = pathlib.Path(initrd).read_bytes()
    data += b"\0" * (-len(data) % 4)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data + gzip.compress(arch))
    return pathlib.Path(out)


def wait_for(predicate, timeout, interval=0.2):
    """Poll predicate() until it returns a true value; return it, or None after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


# QEMU's machine per guest architecture, both with virtio-mmio transports (as microvm's):
# x86_64: -M microvm (the console on the ISA 16550, ttyS0); arm64: -M virt with a GICv3 and
# QEMU's own device tree, whose console UART is a PL011 (ttyAMA0). pauth-impdef: the cheap
# pointer-authentication algorithm, much faster under TCG than the architected one.
QEMU_MACHINES = {
    "x86_64": ["qemu-system-x86_64",
               "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=off",
               "-cpu", "max"],
    "arm64": ["qemu-system-aarch64", "-M", "virt,gic-version=3", "-cpu", "max,pauth-impdef=on"],
}
QEMU_CONSOLE = {"x86_64": "ttyS0", "arm64": "ttyAMA0"}


def qemu_cmd(kernel, initrd, cmdline, hostfwd_port, mem=256, arch="x86_64"):
    """QEMU (QEMU_MACHINES[@arch]) under software emulation (TCG: no -enable-kvm)."""
    return [
        *QEMU_MACHINES[arch],
        "-accel", "tcg", "-m", str(mem), "-smp", "1",
        "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-serial", "stdio", "-monitor", "none",
        "-device", "virtio-rng-device",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{hostfwd_port}-10.0.2.15:1025",
        "-device", "virtio-net-device,netdev=n0",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline,
    ]


def tar_members(path):
    """{name without leading './': TarInfo} of a .tar.gz."""
    with tarfile.open(path, "r:gz") as t:
        return {m.name[2:] if m.name.startswith("./") else m.name: m for m in t.getmembers()}


def cpio_members(path):
    """{name: (mode, mtime, uid, gid, rdevmajor, rdevminor, data)} of a gzipped newc cpio."""
    import gzip

    data = gzip.decompress(path.read_bytes())
    out, off = {}, 0
    while True:
        assert data[off:off + 6] == b"070701", f"bad cpio magic at {off}"
        f = [int(data[off + 6 + 8 * i:off + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[off + 110:off + 110 + namesize - 1].decode()
        off += 110 + namesize
        off += -off % 4
        body = data[off:off + filesize]
        off += filesize
        off += -off % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (f[1], f[5], f[2], f[3], f[9], f[10], body)
