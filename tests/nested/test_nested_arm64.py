"""The arm64 KVM backend on a real arm64 KVM (nested under QEMU TCG with EL2): what a user
sees from `microvm run`, `microvm up` and the VPN appliance, with build-arm64's microvm.

One boot of the arm64 nested machine (scripts/nested.sh --arch arm64) runs
l1_checks_arm64.sh; every test reads that run's records.  Run it with `make nested-arm64`
(it builds build-arm64 first).  Requires root and qemu-system-aarch64; when QEMU is missing
the tier fails with the command that installs it.
"""
import os
import pathlib
import subprocess

import pytest

import kvmlib
from conftest import TOP, run_nested

HELLO = "microvm-test-init: hello from user space"


@pytest.fixture(scope="module")
def arm64_build():
    d = pathlib.Path(os.environ.get("MICROVM_BUILD_ARM64", TOP / "build-arm64"))
    assert (d / "src/cli/microvm").exists(), f"no {d}/src/cli/microvm: run 'make arm64' first"
    return d


def l2_kernel():
    """The arm64 guest kernel: Debian's arm64 Image (the L1 kernel's package) until the
    project's own arm64 kernel is built."""
    r = subprocess.run(["sh", str(TOP / "scripts/nested.sh"), "--arch", "arm64",
                        "--fetch-kernel"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return pathlib.Path(r.stdout.strip().splitlines()[-1]) / "vmlinuz"


@pytest.fixture(scope="module")
def l1(arm64_build, tmp_path_factory):
    """{check name: {"ok": True, "result": {step: record}}} from one nested arm64 run."""
    assert os.geteuid() == 0, "the nested tier needs root (it shares / with the nested machine)"
    inp = tmp_path_factory.mktemp("in")
    kvmlib.tiny_initramfs(inp, arch="arm64")
    out = tmp_path_factory.mktemp("l1-arm64")
    checks = os.environ.get("MICROVM_NESTED_CHECKS", "")
    env = {"MICROVM": arm64_build / "src/cli/microvm", "L2_KERNEL": l2_kernel(),
           "L2_INITRD": "/run/nested/in/initramfs.cpio", "IN": "/run/nested/in"}
    command = " ".join(f"{k}='{v}'" for k, v in env.items())
    command += f" sh {TOP}/tests/nested/l1_checks_arm64.sh /run/nested/checks {checks}"
    seconds, console = run_nested(arm64_build, out, command, arch="arm64", in_dir=inp)
    recs = {}
    for f in sorted((out / "checks").glob("*.*.rc")):
        check, step = f.name.split(".")[:2]
        rec = {"rc": int(f.read_text()), "cmd": f"{check}.{step}"}
        for part in ("stdout", "stderr", "seconds"):
            p = f.with_name(f"{check}.{step}.{part}")
            rec[part] = p.read_text(errors="replace") if p.exists() else ""
        rec["seconds"] = float(rec["seconds"] or 0)
        recs.setdefault(check, {"ok": True, "result": {}})["result"][step] = rec
    for f in (out / "checks").glob("*.*.pids"):
        check, step = f.name.split(".")[:2]
        recs.setdefault(check, {"ok": True, "result": {}})["result"][step] = f.read_text().split()
    recs["_seconds"] = seconds
    recs["_console"] = console
    return recs


@pytest.mark.check("run")
def test_run_two_cpus_to_user_space(check):
    r = check["smp"]
    assert r["rc"] == 0, f"{r['rc']}\n{r['stdout'][-3000:]}\n{r['stderr']}"
    assert "Run /init as init process" in r["stdout"], r["stdout"][-3000:]
    assert HELLO in r["stdout"]                  # guest user space ran
    assert "guest stopped: poweroff" in r["stderr"], r["stderr"]
    assert "smp: Brought up 1 node, 2 CPUs" in r["stdout"], r["stdout"][-3000:]  # PSCI CPU_ON
    assert "GICv3: CPU1: found redistributor 1" in r["stdout"]
    assert not check["left"], "microvm processes left after the guest powered off"
