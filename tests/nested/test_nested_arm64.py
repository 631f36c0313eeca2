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
import vpnlib
from conftest import (HELLO, TOP, assert_booted_to_user_space, assert_up_agent_down,
                      assert_vpn_connected, run_nested)

PAGE = "only behind the VPN, reached from an arm64 KVM guest at "


@pytest.fixture(scope="module")
def arm64_build():
    d = pathlib.Path(os.environ.get("MICROVM_BUILD_ARM64", TOP / "build-arm64"))
    assert (d / "src/cli/microvm").exists(), f"no {d}/src/cli/microvm: run 'make arm64' first"
    return d


def guest_path(what, build):
    """The cache directory of the project's arm64 guest kernel or image (`make kernel-arm64`,
    `make image-arm64`; never built here)."""
    r = subprocess.run(["sh", str(TOP / f"guest/{what}/build.sh"), "--arch", "arm64",
                        "--print-path"], capture_output=True, text=True,
                       env=dict(os.environ, MICROVM_BUILD_ARM64=str(build)))
    assert r.returncode == 0, f"no arm64 guest {what} built: run 'make {what}-arm64' first"
    return pathlib.Path(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def l1(arm64_build, tmp_path_factory):
    """{check name: {"ok": True, "result": {step: record}}} from one nested arm64 run."""
    assert os.geteuid() == 0, "the nested tier needs root (it shares / with the nested machine)"
    inp = tmp_path_factory.mktemp("in")
    kvmlib.tiny_initramfs(inp, arch="arm64")
    kvmlib.tiny_initramfs(inp, arch="arm64", restart=True)
    vpnlib.make_certs(inp)
    (inp / "corp.ovpn").write_text(vpnlib.client_profile(inp, "10.0.2.2", 1194))
    (inp / "alice.pw").write_text(vpnlib.USERS["alice"] + "\n")
    out = tmp_path_factory.mktemp("l1-arm64")
    checks = os.environ.get("MICROVM_NESTED_CHECKS", "")
    env = {"MICROVM": arm64_build / "src/cli/microvm",
           "L2_KERNEL": guest_path("kernel", arm64_build) / "Image",
           "L2_IMAGE": guest_path("image", arm64_build) / "initramfs.cpio.gz",
           "L2_INITRD": "/run/nested/in/initramfs.cpio",
           "L2_RESTART": "/run/nested/in/initramfs-restart.cpio", "IN": "/run/nested/in"}
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
    for f in (out / "checks").glob("*.*.log"):
        check, step = f.name.split(".")[:2]
        recs.setdefault(check, {"ok": True, "result": {}})["result"][step] = \
            f.read_text(errors="replace")
    recs["_seconds"] = seconds
    recs["_console"] = console
    return recs


@pytest.mark.check("run")
def test_run_two_cpus_to_user_space(check):
    r = check["smp"]
    assert_booted_to_user_space(r)
    assert "smp: Brought up 1 node, 2 CPUs" in r["stdout"], r["stdout"][-3000:]  # PSCI CPU_ON
    assert "GICv3: CPU1: found redistributor 1" in r["stdout"]
    assert not check["left"], "microvm processes left after the guest powered off"


@pytest.mark.check("run")
def test_psci_system_off_and_reset_end_the_vm(check):
    # the kernel is silent (loglevel=0): the stop reason is KVM's system event, not a line
    off, reset = check["off"], check["reset"]
    assert off["rc"] == 0, off
    assert HELLO in off["stdout"], off
    assert "guest stopped: poweroff (system event: shutdown)" in off["stderr"], off["stderr"]
    assert reset["rc"] == 3, reset                  # `run`: the guest rebooted
    assert HELLO in reset["stdout"], reset
    assert "guest stopped: reboot (system event: reset)" in reset["stderr"], reset["stderr"]
    assert not check["left"]


@pytest.mark.check("up")
def test_up_boots_and_the_agent_answers_over_vsock(check):
    assert_up_agent_down(check)


@pytest.mark.check("vpn")
def test_vpn_end_to_end_through_socks(check):
    tunnel = assert_vpn_connected(check)
    # the page saw the request come from the guest's tunnel address: SOCKS5 -> agent -> VPN
    c = check["curl"]
    assert c["rc"] == 0, c["stderr"]
    assert c["stdout"] == f"{PAGE}{tunnel}\n", c["stdout"]
    assert "alice" in check["server"]
    assert check["down"]["rc"] == 0, check["down"]["stderr"]
    assert not check["left"], "microvm processes left after down"
