#!/bin/sh
# bench/boot.sh - boot time and memory overhead of `microvm run` next to QEMU's microvm machine.
#
# Usage: bench/boot.sh [RUNS]        (default 3; environment: MICROVM_BUILD, KERNEL, INITRD,
#                                      AGENT=1, QUIET=0, EXTRA_ARGS: appended to the command line)
#
# Boots the project's guest kernel (guest/kernel/build.sh) with a tiny initramfs
# (tests/integration/kvmlib.py) RUNS times under each VMM, alternating, and reports per VMM the
# median time from process start to the first console byte and to "Run /init" (with the
# spread: min-max), the ratio microvm/QEMU, the console bytes until then (each one a trapped
# UART write: a measure the machine's load does not change), and the peak RSS of the VMM
# process minus the resident guest memory (sampled every 0.2 s from /proc/PID/smaps: the
# largest anonymous mapping is the guest RAM).
# Both get the same kernel, initramfs and command line (with the PVM arguments on PVM hosts),
# 256 MiB and one vCPU.  A run is stopped once "Run /init" appeared; a run that does not get
# there (timeout, exit, or QEMU's "emulation failure", which pauses the guest for good) is
# reported as failed and left out of the medians; emulation failures are retried (up to 6
# attempts per run) and counted.  Console logs are kept in a temp directory.
#
# AGENT=1: boot the project's image instead (guest/image/build.sh: microvm-init, the agent,
# OpenVPN) and time until the agent listens ("microvm-agent: listening (vsock)" on the
# console), with the appliance's command line (`quiet` added, as `microvm up` boots; QUIET=0:
# without, to see the kernel's lines and their times); both get the appliance's devices: vsock (QEMU: vhost-vsock-device, modprobe
# vhost_vsock) and virtio-net over libslirp (microvm --net; QEMU -netdev user).  Each run also records when every console line arrived; the breakdown of
# the first run per VMM (kernel start, initramfs unpacked, Run /init, init's first line, agent
# started, agent listening; host time since process start) is printed at the end.
# On a host whose KVM is not PVM, QEMU runs with -cpu host (microvm gives the guest the host's
# CPUID too).  bench/boot-nested.sh runs this inside the nested-KVM machine.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MICROVM_BUILD:-$top/build}
runs=${1:-3}
exec /usr/bin/python3 - "$top" "$build" "$runs" <<'PY'
import os, re, select, statistics, subprocess, sys, tempfile, threading, time
top, build, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, os.path.join(top, "tests", "integration"))
import kvmlib

kernel = os.environ.get("KERNEL") or str(kvmlib.project_kernel() or "")
if not kernel:
    sys.exit("bench/boot.sh: no guest kernel: run 'make kernel' or set KERNEL=")
agent = os.environ.get("AGENT") == "1"
pvm = os.path.exists("/sys/module/kvm_pvm")
initrd = os.environ.get("INITRD")
if not initrd and agent:
    r = subprocess.run(["sh", os.path.join(top, "guest", "image", "build.sh"), "--print-path"],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit("bench/boot.sh: no guest image: run 'make image' or set INITRD=")
    initrd = os.path.join(r.stdout.strip().splitlines()[-1], "initramfs.cpio.gz")
initrd = initrd or str(kvmlib.tiny_initramfs(tempfile.mkdtemp()))
args = "console=ttyS0 reboot=t panic=-1"
if agent and os.environ.get("QUIET", "1") != "0":
    args += " quiet"     # the appliance's line (src/kvm/vm.c); "Run /init" is not shown then
if os.environ.get("EXTRA_ARGS"):
    args += " " + os.environ["EXTRA_ARGS"]
if pvm:
    args += (" noxsave clearcpuid=151,308,295,288,156,293,291,296,150,158,306,311,534,145,"
             "298")
# what ends a run, and the lines whose arrival the breakdown reports
DONE = b"listening (vsock)" if agent else b"Run /init"
MARKS = [("kernel banner", b"Linux version"), ("initramfs unpacked", b"Freeing initrd memory"),
         ("Run /init", b"Run /init"), ("init's first line", b"microvm-init:"),
         ("agent started", b"agent started"), ("agent listening", b"listening (vsock)")]
mem = 256
RUN_TIMEOUT = 600
MAX_ATTEMPTS = 6
logdir = tempfile.mkdtemp(prefix="microvm-bench-")
microvm = [os.path.join(build, "src", "cli", "microvm"), "run", "--quiet", "--kernel", kernel,
           "--initrd", initrd, "--mem", str(mem), "--cmdline", args]
# -cpu max minus arch-capabilities: under kvm_pvm, QEMU 7.2 aborts with -cpu host (it cannot
# set MSR 0x10a), and -cpu host,-arch-capabilities hit an emulation failure in one try.
qemu = ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=off",
        "-enable-kvm", "-cpu", "max,-arch-capabilities" if pvm else "host", "-m", str(mem),
        "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
        "-device", "virtio-rng-device", "-kernel", kernel, "-initrd", initrd, "-append", args]
if agent:
    # the appliance's devices on both: vsock and virtio-net over user-mode networking (slirp)
    qemu[-6:-6] = ["-device", "vhost-vsock-device,guest-cid=3",
                   "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"]
    microvm.append("--net")
breakdown = {}


def overhead_kib(pid):
    """VmRSS minus the resident part of the biggest anonymous mapping (guest RAM), in KiB."""
    try:
        rss = guest = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        size = cur = 0
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    a, b = line.split()[0].split("-")
                    cur_size = (int(b, 16) - int(a, 16)) // 1024
                    anon = len(line.split()) < 6
                elif line.startswith("Rss:") and anon and cur_size >= size:
                    size, guest = cur_size, int(line.split()[1])
        return rss - guest
    except (OSError, ValueError):
        return None


def one(name, cmd, log_path):
    """One boot: (first byte s, Run /init s or None, peak overhead KiB, failure or None,
    console bytes until done)."""
    t0 = time.monotonic()
    err = open(log_path + ".stderr", "wb")
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            o = overhead_kib(p.pid)
            if o is not None:
                peak[0] = max(peak[0], o)
            time.sleep(0.2)
    threading.Thread(target=sample, daemon=True).start()
    first = init = failure = None
    log = b""
    arrivals = []   # (seconds since start, line)
    partial = b""
    while failure is None:
        left = t0 + RUN_TIMEOUT - time.monotonic()
        if left <= 0:
            failure = f"no 'Run /init' within {RUN_TIMEOUT} s"
            break
        # QEMU reports an emulation failure on stderr and pauses the guest for good
        with open(log_path + ".stderr", "rb") as f:
            if b"emulation failure" in f.read():
                failure = "KVM emulation failure (PVM)"
                break
        if not select.select([p.stdout], [], [], min(left, 1.0))[0]:
            continue
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            failure = "exited before 'Run /init'"
            break
        now = time.monotonic() - t0
        if first is None:
            first = now
        log += chunk
        partial += chunk
        while b"\n" in partial:
            line, partial = partial.split(b"\n", 1)
            arrivals.append((now, line))
        if DONE in log[-len(chunk) - 32:]:
            init = now
            break
    done.set()
    p.kill()
    p.wait()
    err.close()
    with open(log_path, "wb") as f:
        f.write(log)
    if name not in breakdown and not failure:
        breakdown[name] = {}
        for label, mark in MARKS:
            hit = next(((t, l) for t, l in arrivals if mark in l), None)
            if hit:
                m = re.match(rb"\[\s*([0-9.]+)\]", hit[1])
                breakdown[name][label] = (hit[0], float(m.group(1)) if m else None)
    return first, init, peak[0], failure, len(log)


res = {"microvm": [], "qemu": []}
fails = {"microvm": 0, "qemu": 0}
for i in range(runs):
    for name, cmd in (("microvm", microvm), ("qemu", qemu)):
        # Under PVM, QEMU's guest sometimes dies in an emulation failure early on (fwait in
        # fpu__drop); such a run says nothing about boot time, so it is retried (and counted).
        for attempt in range(1, MAX_ATTEMPTS + 1):
            r = one(name, cmd, os.path.join(logdir, f"{name}-{i + 1}-{attempt}.log"))
            if not r[3]:
                break
            fails[name] += 1
            print(f"run {i + 1} {name:8s} attempt {attempt} FAILED: {r[3]}", flush=True)
            with open(os.path.join(logdir, f"{name}-{i + 1}-{attempt}.log.stderr"),
                      errors="replace") as f:
                tail = f.read()[-600:].strip()
            if tail:
                print("  stderr: " + tail.replace("\n", "\n  stderr: "), flush=True)
            if "emulation failure" not in r[3]:
                break
        res[name].append(r)
        if not r[3]:
            print(f"run {i + 1} {name:8s} first byte {r[0]:.2f} s, "
                  f"{'agent' if agent else 'Run /init'} {r[1]:.2f} s, "
                  f"VMM RSS minus guest RAM {r[2] / 1024:.1f} MiB, console {r[4]} bytes",
                  flush=True)


def med(name, k):
    v = [r[k] for r in res[name] if r[k] is not None and r[3] is None]
    return statistics.median(v) if v else float("nan")


print()
def fmt(v, unit, scale=1.0):
    return "-" if v != v else f"{v / scale:.2f}{unit}"


done_name = "agent" if agent else "Run /init"
def spread(name, k):
    v = [r[k] for r in res[name] if r[k] is not None and r[3] is None]
    return f"{min(v):.2f}-{max(v):.2f}" if v else "-"


print(f"{'':10s} {'first byte':>12s} {done_name:>12s} {'RSS-guest':>12s} {'console':>9s}"
      f"  {done_name} min-max")
for name in ("microvm", "qemu"):
    print(f"{name:10s} {fmt(med(name, 0), 's'):>12s} {fmt(med(name, 1), 's'):>12s} "
          f"{fmt(med(name, 2), 'MiB', 1024):>12s} {med(name, 4):>8.0f}B  {spread(name, 1)}")
print(f"{'ratio':10s} {fmt(med('microvm', 0) / med('qemu', 0), ''):>12s} "
      f"{fmt(med('microvm', 1) / med('qemu', 1), ''):>12s} "
      f"{fmt(med('microvm', 2) / med('qemu', 2), ''):>12s}")
for name in ("microvm", "qemu"):
    ok = sum(1 for r in res[name] if r[3] is None)
    print(f"{name}: {ok} of {runs} runs reached {done_name}; {fails[name]} failed attempts "
          f"(emulation failures retried)")
print(f"(medians of the runs that reached {done_name}; kernel {kernel}; initrd {initrd}; "
      f"PVM host: {pvm}; console logs in {logdir})")
print()
print("breakdown of the first run: host seconds since start (guest printk time)")
for name in ("microvm", "qemu"):
    for label, _ in MARKS:
        v = breakdown.get(name, {}).get(label)
        if v:
            guest = f" ({v[1]:.3f})" if v[1] is not None else ""
            print(f"{name:10s} {label:22s} {v[0]:8.2f}{guest}")
PY
