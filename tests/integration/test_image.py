"""The guest image: contents, reproducibility, and init + agent running it.

- the rootfs tarball has what the namespace backend needs, and OpenVPN runs from it;
- two builds of the image are byte-identical;
- microvm-init as PID 1 of fresh namespaces starts the agent, which answers ping, and
  powers off on SIGTERM;
- the project's kernel and initramfs boot under QEMU software emulation, init brings up
  eth0 and starts the agent over TCP, the agent answers ping through QEMU's forwarded port,
  and its "shutdown" makes init power the machine off;
- OpenVPN inside that guest creates its tun device and sets addresses and routes;
- the arm64 kernel and image (guest/kernel/arm64.config, `--arch arm64`) do the same boot,
  agent and power-off under qemu-system-aarch64 -M virt (TCG), with a GICv3, PSCI and the
  architected timer.
"""
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import time
import uuid

import pytest

import authlib
import guestlib

# A run of the image in QEMU with software emulation: the kernel reaches /init in about
# 2-3 s on an idle machine, but these 2 cores are shared with builds and other tests, where
# we measured well over 10x that. 240 s is generous on purpose: the test checks function,
# not speed (docs/performance.md has the timings).
QEMU_TIMEOUT = 240


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, chroot)")


@pytest.fixture(scope="module")
def kernel():
    d = guestlib.kernel_dir()
    if d is None:
        pytest.fail("guest kernel not built: run 'make kernel' (guest/kernel/build.sh)")
    return d


@pytest.fixture(scope="module")
def image(build_dir):
    return guestlib.build_image(build_dir)


@pytest.fixture(scope="module")
def kernel_arm64():
    d = guestlib.kernel_dir("arm64")
    if d is None:
        pytest.fail("arm64 guest kernel not built: run 'make kernel-arm64'")
    return d


@pytest.fixture(scope="module")
def image_arm64(build_dir):
    # init and agent from the arm64 cross build (MICROVM_BUILD_ARM64, default build-arm64/)
    return guestlib.build_image(build_dir, "--arch", "arm64")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def openvpn_closure():
    """Absolute paths of openvpn's libraries and loader, as ldd reports them on the host."""
    out = subprocess.run(["ldd", "/usr/sbin/openvpn"], capture_output=True, text=True,
                         check=True).stdout
    paths = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("/"):
            paths.add(parts[2])
        elif parts and parts[0].startswith("/"):
            paths.add(parts[0])
    assert any("ld-linux" in p for p in paths) and any("libc.so" in p for p in paths)
    return paths


def usr_path(p):
    return "usr" + p if p.split("/")[1] in ("lib", "lib64", "bin", "sbin") else p[1:]


def test_rootfs_has_what_nsbox_needs(image):
    m = guestlib.tar_members(image / "rootfs.tar.gz")
    for name in ("init", "usr/bin/microvm-agent", "usr/sbin/openvpn"):
        assert m[name].isfile() and m[name].mode & 0o111, name
    assert m["usr/sbin/init"].issym() and m["usr/sbin/init"].linkname == "../../init"
    for link in ("bin", "sbin", "lib", "lib64"):
        assert m[link].issym() and m[link].linkname == "usr/" + link
    assert m["etc/resolv.conf"].linkname == "../run/resolv.conf"
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "etc"):
        assert m[d].isdir(), d
    assert m["tmp"].mode & 0o1777 == 0o1777
    for lib in openvpn_closure():
        assert m[usr_path(lib)].isfile(), f"{lib} missing from the rootfs"
    # reproducible metadata, nothing a rootless extraction could not create
    for name, info in m.items():
        assert (info.uid, info.gid, info.mtime) == (0, 0, 0), name
        assert not (info.ischr() or info.isblk() or info.isfifo()), name
    with tarfile.open(image / "rootfs.tar.gz") as t:
        passwd = t.extractfile("./etc/passwd").read().decode()
    assert "nobody:x:65534:65534:" in passwd


def test_initramfs_matches_rootfs(image):
    c = guestlib.cpio_members(image / "initramfs.cpio.gz")
    t = guestlib.tar_members(image / "rootfs.tar.gz")
    mode, _, _, _, major, minor, _ = c.pop("dev/console")
    assert stat.S_ISCHR(mode) and (major, minor) == (5, 1)
    assert set(c) == set(t) - {"."}
    assert list(c) == sorted(c), "entries are not sorted"
    with tarfile.open(image / "rootfs.tar.gz") as tf:
        init = tf.extractfile("./init").read()
    assert c["init"][6] == init
    assert all(v[1] == 0 and v[2] == 0 and v[3] == 0 for v in c.values())


def test_image_size_budget(image, kernel):
    # The design note's budget: kernel + initramfs <= 10 MB.
    total = (kernel / "bzImage").stat().st_size + (image / "initramfs.cpio.gz").stat().st_size
    assert total <= 10 * 1024 * 1024, f"bzImage + initramfs = {total} bytes"


def test_kernel_cache_matches_fragment(kernel):
    """The cached kernel was built from the current fragment and patch, with every option."""
    frag = (guestlib.TOP / "guest" / "kernel" / "microvm.config").read_text()
    assert (kernel / "microvm.config").read_text() == frag
    assert (kernel / "0001-skip-int3-selftest.patch").read_bytes() == (
        guestlib.TOP / "guest" / "kernel" / "0001-skip-int3-selftest.patch").read_bytes()
    config = set((kernel / "config").read_text().splitlines())
    for line in frag.splitlines():
        if not line.startswith("CONFIG_"):
            continue
        opt, val = line.split("=", 1)
        if val == "n":
            assert not any(c.startswith(opt + "=") for c in config), opt
        else:
            assert line in config, line
    assert (kernel / "vmlinux").read_bytes()[:4] == b"\x7fELF"
    assert (kernel / "bzImage").read_bytes()[0x202:0x206] == b"HdrS"
    # a second run is served from the cache and prints the same directory
    r = subprocess.run(["sh", str(guestlib.KERNEL_SH)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == str(kernel)
    assert "cached" in r.stderr


def test_arm64_kernel_cache_matches_fragments(kernel, kernel_arm64):
    """The arm64 kernel: built from both fragments (arm64.config wins), cached apart."""
    top = guestlib.TOP / "guest" / "kernel"
    assert kernel_arm64.parent.name == "arm64" and kernel_arm64.parent.parent == kernel.parent
    wanted = {}
    for name in ("microvm.config", "arm64.config"):
        frag = (top / name).read_text()
        assert (kernel_arm64 / name).read_text() == frag, name
        wanted.update(line.split("=", 1) for line in frag.splitlines()
                      if line.startswith("CONFIG_"))
    config = set((kernel_arm64 / "config").read_text().splitlines())
    assert "CONFIG_ARM64=y" in config
    for opt, val in wanted.items():
        if val == "n":
            assert not any(c.startswith(opt + "=") for c in config), opt
        else:
            assert f"{opt}={val}" in config, f"{opt}={val}"
    # the arm64 Image header: "ARM\x64" magic at 56 (Documentation/arm64/booting.rst)
    assert (kernel_arm64 / "Image").read_bytes()[56:60] == b"ARM\x64"
    r = subprocess.run(["sh", str(guestlib.KERNEL_SH), "--arch", "arm64"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == str(kernel_arm64)
    assert "cached" in r.stderr
    for script in (guestlib.KERNEL_SH, guestlib.IMAGE_SH):
        r = subprocess.run(["sh", str(script), "--arch", "sparc", "--print-path"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "unknown architecture 'sparc'" in r.stderr, r.stderr


def test_arm64_image_programs_run_under_qemu_user(image_arm64, tmp_path):
    """Every arm64 program of the rootfs finds its loader and libraries inside it: run under
    qemu-user rooted there (-L), in a mount namespace where the host's arm64 multiarch
    directory is an empty tmpfs, so that qemu's fallback to host paths finds nothing."""
    needs_root()
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-xzf", str(image_arm64 / "rootfs.tar.gz"), "-C", str(root)],
                   check=True)
    m = guestlib.tar_members(image_arm64 / "rootfs.tar.gz")
    assert m["usr/sbin/init"].issym() and m["usr/sbin/init"].linkname == "../../init"
    for name in ("init", "usr/bin/microvm-agent", "usr/sbin/openvpn"):
        assert (root / name).read_bytes()[18:20] == b"\xb7\x00", f"{name}: not EM_AARCH64"

    def run(prog, *args):
        mask = ("for d in /usr/lib/aarch64-linux-gnu /usr/aarch64-linux-gnu; do "
                "[ ! -d $d ] || mount -t tmpfs none $d || exit 99; done; exec \"$@\"")
        return subprocess.run(["unshare", "-m", "sh", "-c", mask, "sh", "qemu-aarch64", "-L",
                               str(root), str(root / prog), *args],
                              capture_output=True, text=True, timeout=60)

    r = run("usr/sbin/openvpn", "--version")
    assert "OpenVPN 2.6" in r.stdout and "aarch64" in r.stdout, r.stdout + r.stderr
    r = run("usr/bin/microvm-agent", "--help")
    assert r.returncode == 0 and "microvm-agent" in r.stdout, r.stdout + r.stderr


def test_image_build_is_reproducible(build_dir, image, tmp_path):
    # --out bypasses the cache: two independent stagings and packings of the same inputs.
    a = guestlib.build_image(build_dir, "--out", str(tmp_path / "a"))
    b = guestlib.build_image(build_dir, "--out", str(tmp_path / "b"))
    for f in ("initramfs.cpio.gz", "rootfs.tar.gz", "MANIFEST"):
        assert sha256(a / f) == sha256(b / f), f
        assert sha256(a / f) == sha256(image / f), f"{f} differs from the cached build"


def test_image_print_path_and_cache(build_dir, image):
    r = subprocess.run(["sh", str(guestlib.IMAGE_SH), "--print-path"], capture_output=True,
                       text=True, env=guestlib.image_env(build_dir))
    assert r.returncode == 0 and r.stdout.strip() == str(image)
    r = subprocess.run(["sh", str(guestlib.IMAGE_SH), "--print-path"], capture_output=True,
                       text=True, env=guestlib.image_env(build_dir, MICROVM_CACHE="/nonexistent"))
    assert r.returncode == 1 and r.stdout == ""


@pytest.fixture
def rootfs(image, tmp_path):
    needs_root()
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-xzf", str(image / "rootfs.tar.gz"), "-C", str(root)], check=True)
    return root


def test_openvpn_runs_from_rootfs(rootfs):
    # Proves the library closure and loader are complete: nothing comes from the host.
    r = subprocess.run(["chroot", str(rootfs), "/usr/sbin/openvpn", "--version"],
                       capture_output=True, text=True, timeout=30)
    assert "OpenVPN 2." in r.stdout, r.stdout + r.stderr


@pytest.fixture
def netns():
    needs_root()
    name = "mvm-img-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name])


def netns_ping(ns, secret, port=1025):
    """Ping the agent from inside the namespace (authenticated); the reply dict or None."""
    code = ("import sys, guestlib\n"
            "try: print(guestlib.agent_request(%d, {'cmd': 'ping'}, timeout=2, secret=%r))\n"
            "except Exception as e: print('ERR', e); sys.exit(1)\n" % (port, secret))
    r = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", code],
                       capture_output=True, text=True, timeout=30,
                       cwd=os.path.dirname(guestlib.__file__))
    return r.stdout.strip() if r.returncode == 0 else None


@pytest.mark.parametrize("sig,said,ended_by", [
    (signal.SIGTERM, "powering off", signal.SIGINT),
    (signal.SIGINT, "rebooting", signal.SIGHUP),
])
def test_init_as_pid1_in_namespaces(rootfs, netns, tmp_path, sig, said, ended_by):
    """What the namespace backend does: the rootfs's /init as PID 1 of new namespaces.

    init mounts its file systems in the private mount namespace, skips eth0
    (microvm.net=none), starts the agent over TCP and restarts it when it is killed;
    SIGTERM then powers off and SIGINT
    reboots, which in a PID namespace end init with SIGINT and SIGHUP respectively
    (reboot(2) semantics for PID namespaces).
    """
    # over TCP the agent needs the host's secret: init points it at /etc/microvm/agent-secret
    secret = authlib.new_secret()
    (rootfs / "etc/microvm").mkdir(mode=0o700, parents=True, exist_ok=True)
    authlib.write_secret(rootfs / guestlib.AGENT_SECRET_PATH, secret)
    log = open(tmp_path / "console", "w+")
    p = subprocess.Popen(
        ["ip", "netns", "exec", netns, "unshare", "--mount", "--pid", "--uts", "--fork",
         "--propagation", "private", "chroot", str(rootfs), "/init",
         "microvm.agent=tcp", "microvm.net=none", "microvm.debug=1"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        reply = guestlib.wait_for(lambda: netns_ping(netns, secret), timeout=60, interval=0.5)
        console = (tmp_path / "console").read_text()
        assert reply and "'status': 'pong'" in reply, console
        assert "microvm-init: starting (pid 1)" in console
        assert "microvm-init: agent started" in console
        # init is the only child of unshare: signal it from outside the PID namespace
        child = subprocess.run(["pgrep", "-P", str(p.pid), "-x", "unshare"],
                               capture_output=True, text=True).stdout.split()
        unshare_pid = int(child[0]) if child else p.pid
        init_pid = int(subprocess.run(["pgrep", "-P", str(unshare_pid)], capture_output=True,
                                      text=True, check=True).stdout.split()[0])
        # a crashed agent is restarted (first back-off 250 ms) and answers again
        agent_pid = int(subprocess.run(["pgrep", "-P", str(init_pid), "-x", "microvm-agent"],
                                       capture_output=True, text=True,
                                       check=True).stdout.split()[0])
        os.kill(agent_pid, signal.SIGKILL)
        assert guestlib.wait_for(
            lambda: "agent ended (signal 9)" in (tmp_path / "console").read_text(), 10)
        reply = guestlib.wait_for(lambda: netns_ping(netns, secret), timeout=30, interval=0.3)
        assert reply and "'status': 'pong'" in reply, (tmp_path / "console").read_text()
        os.kill(init_pid, sig)
        p.wait(timeout=30)
        console = (tmp_path / "console").read_text()
        assert "microvm-init: " + said in console, console
        assert p.returncode in (-ended_by, 128 + ended_by), (p.returncode, console)
        assert netns_ping(netns, secret) is None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
        # the mounts lived in the private mount namespace, which is gone with its processes
        mounts = open("/proc/self/mounts").read()
        assert str(rootfs) not in mounts


def qemu_boot_agent_ping(arch, kernel, image, tmp_path):
    """Boot @kernel with @image's initramfs under QEMU TCG for @arch; check init, the agent
    (ping over QEMU's port forward, authenticated), the sandbox and the power-off.

    Return: the console text.
    """
    qemu_bin = guestlib.QEMU_MACHINES[arch][0]
    if shutil.which(qemu_bin) is None:
        pytest.fail(f"{qemu_bin} missing: make deps")
    port = guestlib.free_port()
    cmdline = (f"console={guestlib.QEMU_CONSOLE[arch]} reboot=t panic=-1 microvm.agent=tcp "
               f"microvm.time={int(time.time())}")
    console_path = tmp_path / "console"
    console = open(console_path, "w+")
    secret = authlib.new_secret()
    initrd = guestlib.initrd_with_secret(image / "initramfs.cpio.gz", secret,
                                         tmp_path / "initrd")
    qemu = subprocess.Popen(guestlib.qemu_cmd(kernel, initrd, cmdline, port, arch=arch),
                            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)

    def pong():
        if qemu.poll() is not None:
            pytest.fail("QEMU exited early:\n" + console_path.read_text())
        if "microvm-init: agent started" not in console_path.read_text():
            return None
        try:
            return guestlib.agent_request(port, {"cmd": "ping"}, timeout=5, secret=secret)
        except (OSError, ValueError):
            return None

    try:
        reply = guestlib.wait_for(pong, timeout=QEMU_TIMEOUT, interval=1.0)
        text = console_path.read_text()
        assert reply == {"status": "pong"} or (reply or {}).get("status") == "pong", text
        assert "Run /init as init process" in text
        assert "microvm-init: starting (pid 1)" in text
        assert "microvm-init: eth0 10.0.2.15/24 via 10.0.2.2" in text
        assert "microvm-init: seeded 64 bytes of entropy from /dev/hwrng" in text
        assert "microvm-agent" in text
        # without the secret the agent answers nothing (through QEMU's port forward too)
        with pytest.raises((OSError, ValueError)):
            guestlib.agent_request(port, {"cmd": "shutdown"}, timeout=10)
        # the guest kernel has seccomp: the agent and OpenVPN run under its allow-list
        assert "microvm-agent: sandboxed: seccomp allow-list, capabilities" in text, text
        # the agent's "shutdown" exits with status 100, which init turns into a power-off
        assert guestlib.agent_request(port, {"cmd": "shutdown"}, timeout=10,
                                      secret=secret)["status"] == "ok"
        halted = guestlib.wait_for(lambda: "reboot: System halted" in console_path.read_text()
                                   or "reboot: Power down" in console_path.read_text(),
                                   timeout=60)
        text = console_path.read_text()
        assert halted, text
        assert "microvm-init: agent asked for power off (exit status 100)" in text, text
        assert "microvm-init: powering off" in text
        return text
    finally:
        qemu.terminate()
        try:
            qemu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
        console.close()


def test_qemu_tcg_boots_image_and_agent_answers_ping(kernel, image, tmp_path):
    qemu_boot_agent_ping("x86_64", kernel / "vmlinux", image, tmp_path)


def test_qemu_tcg_arm64_boots_image_and_agent_answers_ping(kernel_arm64, image_arm64,
                                                           tmp_path):
    """The arm64 guest: the Image (what src/arch/arm64 loads) on QEMU's virt machine."""
    text = qemu_boot_agent_ping("arm64", kernel_arm64 / "Image", image_arm64, tmp_path)
    # the machine pieces the kernel must drive (guest/kernel/arm64.config)
    for line in ("Machine model: linux,dummy-virt", "GICv3: ", "psci: PSCIv",
                 "arch_timer: cp15 timer(s) running at", "ttyAMA0"):
        assert line in text, f"{line!r} missing:\n{text}"


# Stands in for the agent in the next test: runs OpenVPN in peer-to-peer mode without a
# peer, which creates a tun device and sets IPv4/IPv6 addresses and routes over netlink,
# all that the guest kernel must support for a VPN client (ovpn-dco is not built in).
OPENVPN_RUNNER_C = r"""
#include <unistd.h>
int main(void)
{
	char *argv[] = { "/usr/sbin/openvpn", "--dev", "tun", "--dev-type", "tun",
		"--ifconfig", "10.8.0.1", "10.8.0.2", "--ifconfig-ipv6", "fd00:8::1/64", "fd00:8::2",
		"--route", "10.9.0.0", "255.255.255.0", "--route-ipv6", "fd00:9::/64",
		"--lport", "1194", "--user", "nobody", "--group", "nogroup", "--verb", "3",
		"--disable-dco", NULL };
	execv(argv[0], argv);
	return 127;
}
"""


def test_openvpn_configures_tun_in_guest(build_dir, kernel, tmp_path):
    """OpenVPN inside the guest (QEMU TCG) opens tun and sets its addresses and routes."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.fail("qemu-system-x86_64 missing: make deps")
    src = tmp_path / "runner.c"
    src.write_text(OPENVPN_RUNNER_C)
    runner = tmp_path / "runner"
    subprocess.run(["cc", "-static", "-O2", "-o", str(runner), str(src)], check=True)
    img = guestlib.build_image(build_dir, "--out", str(tmp_path / "img"),
                               env=guestlib.image_env(build_dir, MICROVM_AGENT=str(runner)))
    console_path = tmp_path / "console"
    console = open(console_path, "w+")
    qemu = subprocess.Popen(guestlib.qemu_cmd(kernel / "vmlinux", img / "initramfs.cpio.gz",
                                              "console=ttyS0 reboot=t panic=-1 "
                                              "microvm.agent=tcp", guestlib.free_port()),
                            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
    try:
        # Without a peer OpenVPN never completes initialisation; dropping privileges is the
        # last step after the tun device, addresses and routes are set up.
        done = guestlib.wait_for(
            lambda: "GID set to nogroup" in console_path.read_text()
            or "Exiting due to fatal error" in console_path.read_text()
            or qemu.poll() is not None,
            timeout=QEMU_TIMEOUT, interval=1.0)
        text = console_path.read_text()
        assert done and "GID set to nogroup" in text, text
        for line in ("TUN/TAP device tun0 opened",
                     "net_addr_ptp_v4_add: 10.8.0.1 peer 10.8.0.2 dev tun0",
                     "net_addr_v6_add: fd00:8::1/64 dev tun0",
                     "net_route_v4_add: 10.9.0.0/24 via 10.8.0.2",
                     "net_route_v6_add: fd00:9::/64 via :: dev tun0",
                     "UID set to nobody",
                     # init's default route, as OpenVPN finds it over netlink
                     "net_route_v4_best_gw result: via 10.0.2.2 dev eth0"):
            assert line in text, f"{line!r} missing:\n{text}"
        assert "ERROR:" not in text and "fatal" not in text, text
    finally:
        qemu.terminate()
        try:
            qemu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
        console.close()
