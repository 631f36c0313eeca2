#!/usr/bin/python3
"""The checks of the nested-KVM tier, run INSIDE the nested machine (L1) by scripts/nested.sh.

Usage (in L1): l1_checks.py OUTDIR [CHECK ...]

Each check is independent (its own temporary directory, its own processes, everything it
started stopped before the next one) and records what a user would see - the commands' output,
exit statuses, timings - as OUTDIR/<check>.json.  It asserts nothing: the pytest side
(test_nested_kvm.py) reads the records and asserts, one test per check, so one L1 boot
serves every test.  A check that raises records the traceback instead.  A check already
recorded in OUTDIR is not run again: when QEMU stalls, scripts/nested.sh boots L1 once more with
the same run directory, and the checks go on from the one that was cut short.

The project's kernel and image are the ones `make kernel` / `make image` cached; L1 sees this
machine's root (and so the build tree and the cache) read-only, with a tmpfs on top.
"""
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
TOP = HERE.parents[1]
sys.path.insert(0, str(TOP / "tests" / "integration"))

import kvmlib  # noqa: E402
from sockslib import socks_open  # noqa: E402
import vpnlib  # noqa: E402

BUILD = pathlib.Path(os.environ.get("MICROVM_BUILD", TOP / "build"))
MICROVM = str(BUILD / "src" / "cli" / "microvm")
PAGE = "only behind the VPN, reached from a KVM guest\n"
HTTP_PORT, SSH_PORT = 8080, 2222


def sh(*cmd, input=None, timeout=180, env=None, ns=None):
    """Run a command; a dict with what a user sees (never raises on failure or timeout)."""
    if ns:
        cmd = ("ip", "netns", "exec", ns, *cmd)
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                           env=env, errors="replace")
        out = {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr}
    except subprocess.TimeoutExpired as e:
        out = {"rc": None, "stdout": _s(e.stdout), "stderr": _s(e.stderr) + "\n[timeout]"}
    out["seconds"] = round(time.monotonic() - t0, 2)
    out["cmd"] = " ".join(cmd)
    return out


def _s(b):
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def kernel_dir():
    r = subprocess.run(["sh", str(TOP / "guest/kernel/build.sh"), "--print-path"],
                       capture_output=True, text=True)
    return pathlib.Path(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else None


def microvm_pids():
    """PIDs of microvm processes (L1 is private to this run, so the name is ours)."""
    r = subprocess.run(["pgrep", "-x", "microvm"], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def left_after(seconds=20):
    """microvm processes still there after up to @seconds (an exiting process gets time)."""
    end = time.monotonic() + seconds
    while microvm_pids() and time.monotonic() < end:
        time.sleep(0.2)
    return microvm_pids()


# --- checks ------------------------------------------------------------------------------

def check_run(tmp):
    """`microvm run` with vmlinux, bzImage, and vmlinux on 2 vCPUs, to user space and back."""
    k = kernel_dir()
    init = kvmlib.tiny_initramfs(tmp)
    res = {"kernel_dir": str(k)}
    for name, kernel, extra in (("vmlinux", "vmlinux", ()), ("bzimage", "bzImage", ()),
                                ("smp", "vmlinux", ("--cpus", "2"))):
        res[name] = sh(MICROVM, "run", "--kernel", str(k / kernel), "--initrd", str(init),
                       "--mem", "128", *extra, timeout=240)
    res["left"] = microvm_pids()
    return res


def image_dir():
    r = subprocess.run(["sh", str(TOP / "guest/image/build.sh"), "--print-path"],
                       capture_output=True, text=True,
                       env=dict(os.environ, MICROVM_BUILD=str(BUILD)))
    return pathlib.Path(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else None


def up_env(tmp):
    """Environment for `microvm up`: its own control socket, and this machine's cache as it is
    (shared by every tree and build, so its newest entries are often another tree's): `up`
    without options must find this build's kernel and image there by their keys."""
    env = dict(os.environ)
    env["MICROVM_CONTROL"] = str(tmp / "ctl" / "control.sock")
    for v in ("MICROVM_KERNEL", "MICROVM_INITRD", "MICROVM_ROOTFS"):
        env.pop(v, None)
    return env


def check_up_defaults(tmp):
    """`microvm up` with no backend/kernel/image option: KVM, the agent answers, then down."""
    env = up_env(tmp)
    res = {"up": sh(MICROVM, "up", "--detach", env=env, timeout=240)}
    res["status"] = sh(MICROVM, "status", "--json", env=env)
    res["console"] = sh(MICROVM, "console", env=env, timeout=8)  # live: ends by timeout
    res["down"] = sh(MICROVM, "down", env=env, timeout=60)
    res["left"] = left_after()
    return res


def socks_curl(ns, url):
    return sh("curl", "-sS", "--max-time", "60", "--socks5-hostname", "127.0.0.1:1080", url,
              ns=ns, timeout=90)


def socks_ssh(ns, key):
    return sh("ssh", "-F", "/dev/null", "-i", str(key), "-p", str(SSH_PORT),
              "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
              "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=60",
              "-o", "ProxyCommand=nc -X 5 -x 127.0.0.1:1080 %h %p",
              f"root@{vpnlib.VPN_SERVER_IP}", "echo through-vpn-$((6*7))", ns=ns, timeout=120)


def check_vpn(tmp):
    """The whole appliance on KVM: OpenVPN server on a veth in L1, `up` with only VPN
    options, curl and OpenSSH through SOCKS5; then deferred web authentication."""
    res = {}
    (tmp / "bed").mkdir()
    (tmp / "svc").mkdir()
    with vpnlib.Testbed(tmp / "bed", 120) as bed, \
            vpnlib.vpn_services(bed, tmp / "svc", PAGE, HTTP_PORT, SSH_PORT,
                                start_timeout=120) as svc:
        ns = bed.client.name
        env = up_env(tmp)
        prof = tmp / "corp.ovpn"
        prof.write_text(bed.profile())
        res["up"] = sh(MICROVM, "up", "--detach", "--profile", str(prof), "--user", "alice",
                       "--password-stdin", input=vpnlib.USERS["alice"] + "\n", env=env, ns=ns,
                       timeout=300)
        res["status"] = sh(MICROVM, "status", "--json", env=env, ns=ns)
        res["curl"] = socks_curl(ns, f"http://{vpnlib.VPN_SERVER_IP}:{HTTP_PORT}/page.txt")
        res["curl_name"] = socks_curl(ns, f"http://{vpnlib.TARGET_NAME}:{HTTP_PORT}/page.txt")
        res["ssh"] = socks_ssh(ns, svc / "user")
        # `down` while a SOCKS relay is open: the relay's client sees the end promptly
        reply, relay = bed.client.call(socks_open, 1080, vpnlib.VPN_SERVER_IP,
                                       vpnlib.TARGET_PORT, None, 60)
        res["relay_reply"] = reply
        relay.settimeout(30)
        res["relay_banner"] = _s(relay.recv(100))
        res["down"] = sh(MICROVM, "down", env=env, ns=ns, timeout=60)
        t0 = time.monotonic()
        try:
            rest = relay.recv(100)
            res["relay_end"] = "EOF" if not rest else f"data {rest!r}"
        except socket.timeout:
            res["relay_end"] = "still open 30 s after down"
        except OSError as e:
            res["relay_end"] = f"error {e.strerror}"
        res["relay_end_seconds"] = round(time.monotonic() - t0, 2)
        relay.close()
        # web authentication: `up` says where to log in; the server approves; then it works
        web = tmp / "web.ovpn"
        web.write_text(bed.profile())
        res["web_up"] = sh(MICROVM, "up", "--detach", "--profile", str(web), "--user", "webok",
                           "--password-stdin", input=vpnlib.USERS["webok"] + "\n", env=env,
                           ns=ns, timeout=300)
        bed.approve("webok", timeout=120)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            res["web_status"] = sh(MICROVM, "vpn", "status", "--json", env=env, ns=ns)
            if '"connected"' in res["web_status"]["stdout"]:
                break
            time.sleep(1)
        res["web_curl"] = socks_curl(ns, f"http://{vpnlib.VPN_SERVER_IP}:{HTTP_PORT}/page.txt")
        res["web_down"] = sh(MICROVM, "down", env=env, ns=ns, timeout=60)
        res["server_log"] = bed.server_log.read_text()[-20000:]
    res["left"] = left_after()
    return res


def panic_initramfs(tmp):
    """An initramfs whose /init exits at once: the guest kernel panics (killing init)."""
    src = tmp / "exit.c"
    src.write_text("void _start(void) { __asm__ volatile (\"mov $60, %eax; xor %edi, %edi; "
                   "syscall\"); for (;;); }\n")
    subprocess.run(["cc", "-static", "-nostdlib", "-Os", "-o", str(tmp / "init"), str(src)],
                   check=True)
    archive = (kvmlib._newc("dev", 0o040755, ino=1)
               + kvmlib._newc("dev/console", 0o020600, rdev=(5, 1), ino=2)
               + kvmlib._newc("init", 0o100755, (tmp / "init").read_bytes(), ino=3)
               + kvmlib._newc("TRAILER!!!", 0, ino=0))
    out = tmp / "panic.cpio"
    out.write_bytes(archive)
    return out


def killer_initramfs(tmp):
    """The project's image plus a second, TEST-ONLY archive (tests/guest/agent_killer.c) that
    replaces /usr/bin/microvm-agent with a stand-in: it execs the real agent (same PID, so init
    supervises the real one) and SIGKILLs it when "kill-agent" is typed on the console."""
    image = (image_dir() / "initramfs.cpio.gz").read_bytes()
    overlay = (kvmlib._newc("usr/bin/microvm-agent", 0o100755,
                            (BUILD / "tests" / "guest" / "agent-killer").read_bytes(), ino=1)
               + kvmlib._newc("usr/bin/microvm-agent.real", 0o100755,
                              (BUILD / "guest" / "agent" / "microvm-agent").read_bytes(), ino=2)
               + kvmlib._newc("TRAILER!!!", 0, ino=0))
    out = tmp / "killer.cpio.gz"
    # the kernel unpacks archives one after the other; zeros between them are skipped, and a
    # cpio archive must start 4-byte aligned
    out.write_bytes(image + b"\0" * (-len(image) % 512) + overlay)
    return out


def check_faults(tmp):
    """Faults as a user meets them: a guest kernel that panics while `up` waits for the agent;
    the VMM (the `up` process) killed with SIGKILL, then `status` and a new `up`; in that VM,
    the agent killed with SIGKILL inside the guest, then `status` until it says why."""
    env = up_env(tmp)
    res = {"panic": sh(MICROVM, "up", "--initrd", str(panic_initramfs(tmp)), "--boot-timeout",
                       "120", env=env, timeout=240)}
    res["panic_left"] = left_after()
    res["up"] = sh(MICROVM, "up", "--detach", env=env, timeout=240)
    pids = microvm_pids()
    res["killed"] = pids
    for pid in pids:
        os.kill(pid, 9)
    res["kill_left"] = left_after(5)
    res["status_after_kill"] = sh(MICROVM, "status", env=env)
    res["up_again"] = sh(MICROVM, "up", "--detach", "--initrd", str(killer_initramfs(tmp)),
                         env=env, timeout=240)
    # the agent killed for real inside the running guest (typed on its console)
    res["agent_before"] = sh(MICROVM, "status", "--json", env=env)
    t0 = time.monotonic()
    res["kill_typed"] = sh(MICROVM, "console", input="kill-agent\n", env=env, timeout=4)
    end = time.monotonic() + 90
    while time.monotonic() < end:
        st = sh(MICROVM, "status", "--json", env=env)
        if "restarted" in st["stdout"]:
            break
        time.sleep(1)
    res["agent_status_json"] = st
    res["agent_reported_seconds"] = round(time.monotonic() - t0, 1)
    res["agent_status"] = sh(MICROVM, "status", env=env)
    res["agent_console"] = sh(MICROVM, "console", "--no-follow", env=env, timeout=30)
    res["down"] = sh(MICROVM, "down", env=env, timeout=60)
    res["left"] = left_after()
    return res


VSOCK_BYTES = 64 << 20


def vsock_connect(path, port, deadline):
    """Connect to guest vsock @port through the --vsock-uds bridge; retry until it listens."""
    last = "no attempt"
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(10)
            s.connect(str(path))
            s.sendall(f"CONNECT {port}\n".encode())
            line = b""
            while not line.endswith(b"\n"):
                b = s.recv(1)
                if not b:
                    break
                line += b
            if line.startswith(b"OK "):
                s.settimeout(120)
                return s
            last = f"answer {line!r}"
        except OSError as e:
            last = str(e)
        s.close()
        time.sleep(0.5)
    raise TimeoutError(f"guest vsock port {port} not reachable: {last}")


def check_vsock(tmp):
    """A Linux guest program's own AF_VSOCK socket: 64 MiB each way with a half-close."""
    k = kernel_dir()
    echo = (BUILD / "tests" / "guest" / "vsock-echo").read_bytes()
    archive = (kvmlib._newc("dev", 0o040755, ino=1)
               + kvmlib._newc("dev/console", 0o020600, rdev=(5, 1), ino=2)
               + kvmlib._newc("init", 0o100755, echo, ino=3)
               + kvmlib._newc("TRAILER!!!", 0, ino=0))
    (tmp / "echo.cpio").write_bytes(archive)
    uds = tmp / "v.sock"
    log = open(tmp / "console", "w+")
    proc = subprocess.Popen([MICROVM, "run", "--kernel", str(k / "vmlinux"), "--initrd",
                             str(tmp / "echo.cpio"), "--vsock-uds", str(uds), "--mem", "256"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    res = {}
    try:
        s = vsock_connect(uds, 5000, time.monotonic() + 180)
        data = os.urandom(VSOCK_BYTES)
        got = bytearray()
        t0 = time.monotonic()

        def send():
            view = memoryview(data)
            for off in range(0, len(data), 1 << 20):
                s.sendall(view[off:off + (1 << 20)])
            s.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=send)
        t.start()
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
        t.join()
        res["stream_seconds"] = round(time.monotonic() - t0, 2)
        s.close()
        res["sent"] = len(data)
        res["received"] = len(got)
        res["sent_sha256"] = hashlib.sha256(data).hexdigest()
        res["received_sha256"] = hashlib.sha256(got).hexdigest()
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.seek(0)
        res["console"] = log.read()[-20000:]
        log.close()
        res["rc"] = proc.returncode
    return res


CHECKS = {"run": check_run, "up_defaults": check_up_defaults, "vpn": check_vpn,
          "faults": check_faults, "vsock": check_vsock}


def main():
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    names = sys.argv[2:] or list(CHECKS)
    for name in names:
        if (out / f"{name}.json").exists():  # recorded before L1 stalled and booted again
            print(f"l1: {name}: recorded by an earlier boot", flush=True)
            continue
        t0 = time.monotonic()
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"l1-{name}-"))
        try:
            rec = {"ok": True, "result": CHECKS[name](tmp)}
        except Exception:  # recorded; the pytest side reports it
            rec = {"ok": False, "error": traceback.format_exc()}
        for pid in microvm_pids():  # nothing a check left may disturb the next one
            subprocess.run(["kill", "-9", str(pid)])
        shutil.rmtree(tmp, ignore_errors=True)
        rec["seconds"] = round(time.monotonic() - t0, 1)
        tmpf = out / f".{name}.json"  # renamed when complete: a stall never leaves half a record
        tmpf.write_text(json.dumps(rec, indent=1))
        os.replace(tmpf, out / f"{name}.json")
        print(f"l1: {name}: {'done' if rec['ok'] else 'raised'} in {rec['seconds']} s",
              flush=True)


if __name__ == "__main__":
    main()
