"""Helpers for the KVM boot tests: the project's kernel, a tiny initramfs, running microvm."""
import os
import pathlib
import subprocess

TOP = pathlib.Path(__file__).resolve().parents[2]

# A PID 1 without libc: prints a line on the console and powers off.  Under a PVM-backed
# /dev/kvm its first system call faults (see docs/kvm.md), the kernel then
# panics ("Attempted to kill init!") and, with panic=-1, reboots.  One program for both
# architectures; only the system call instruction differs (TINY_INIT_SYSCALL).
TINY_INIT_MAIN = r"""
#include <linux/reboot.h>
#include <asm/unistd.h>

static long sys4(long n, long a, long b, long c, long d);

void _start(void)
{
	static const char msg[] = "microvm-test-init: hello from user space\n";

	sys4(__NR_write, 1, (long)msg, sizeof(msg) - 1, 0);
	sys4(__NR_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, TINY_INIT_CMD, 0);
	for (;;)
		sys4(__NR_ppoll, 0, 0, 0, 0);
}
"""

# arch: (sys4() for that architecture's system call convention, the compiler)
TINY_INIT_SYSCALL = {
    "x86_64": (r"""
static long sys4(long n, long a, long b, long c, long d)
{
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile ("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
			  : "rcx", "r11", "memory");
	return ret;
}
""", "cc"),
    # SVC #0 with the number in x8, arguments and result in x0..
    "arm64": (r"""
static long sys4(long n, long a, long b, long c, long d)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;

	__asm__ volatile ("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
}
""", "aarch64-linux-gnu-gcc"),
}


def _newc(name, mode, data=b"", rdev=(0, 0), ino=1):
    """One entry of a 'newc' cpio archive."""
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
    hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = hdr + name_b
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def tiny_initramfs(dest_dir, arch="x86_64", restart=False):
    """Build initramfs.cpio (uncompressed) with /init, /dev and /dev/console for @arch
    (x86_64 or arm64: cross-compiled); return its path.  @restart: /init reboots the machine
    instead of powering it off (initramfs-restart.cpio)."""
    dest_dir = pathlib.Path(dest_dir)
    name = "init-restart" if restart else "init"
    src = dest_dir / f"{name}.c"
    binary = dest_dir / name
    syscall, cc = TINY_INIT_SYSCALL[arch]
    cmd = "LINUX_REBOOT_CMD_RESTART" if restart else "LINUX_REBOOT_CMD_POWER_OFF"
    src.write_text(f"#define TINY_INIT_CMD {cmd}\n" + TINY_INIT_MAIN + syscall)
    subprocess.run([cc, "-static", "-nostdlib", "-Os", "-fno-stack-protector",
                    "-fno-asynchronous-unwind-tables", "-o", str(binary), str(src)],
                   check=True)
    archive = (_newc("dev", 0o040755, ino=1)
               + _newc("dev/console", 0o020600, rdev=(5, 1), ino=2)
               + _newc("init", 0o100755, binary.read_bytes(), ino=3)
               + _newc("TRAILER!!!", 0, ino=0))
    out = dest_dir / ("initramfs-restart.cpio" if restart else "initramfs.cpio")
    out.write_bytes(archive)
    return out


def project_kernel():
    """The project's guest kernel (vmlinux) if built, else None.  Never builds it."""
    script = TOP / "guest" / "kernel" / "build.sh"
    if script.exists():
        r = subprocess.run(["sh", str(script), "--print-path"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            vmlinux = pathlib.Path(r.stdout.strip().splitlines()[-1]) / "vmlinux"
            if vmlinux.exists():
                return vmlinux
    return None


def kvm_usable():
    """(ok, reason) for tests that need /dev/kvm."""
    if not os.path.exists("/dev/kvm"):
        return False, "needs /dev/kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "needs read/write access to /dev/kvm"
    return True, ""
