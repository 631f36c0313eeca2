"""The nested-KVM tier: one boot of the nested machine (scripts/nested.sh) runs every check of
l1_checks.py on a real KVM; each test here asserts on one check's record.

Run it alone with `make nested` (needs `make kernel image` first; `make nested` does that).
Requires root (L1 is started with this machine's root shared read-only) and QEMU; when QEMU is
missing the tier fails with the command that installs it.
"""
import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "integration"))

HELLO = "microvm-test-init: hello from user space"


# --- what the tests of both architectures assert -----------------------------------------

def assert_booted_to_user_space(r):
    """`microvm run` with the test /init: the kernel ran it, it printed, the guest powered off."""
    assert r["rc"] == 0, f"{r['cmd']}: {r['rc']}\n{r['stdout'][-3000:]}\n{r['stderr']}"
    assert "Run /init as init process" in r["stdout"], r["stdout"][-3000:]
    assert HELLO in r["stdout"]            # guest user space ran: a real KVM, not PVM
    assert "guest stopped: poweroff" in r["stderr"], r["stderr"]
    assert "PVM" not in r["stderr"]        # no PVM workaround on a real KVM


def assert_up_agent_down(check):
    """`up` (check["up"]), then `status --json`: KVM, VM running, the agent answering over
    vsock; the console showed the agent (and, booted quiet, not the kernel's info lines);
    `down` worked and left no process."""
    up = check["up"]
    assert up["rc"] == 0, up["stdout"] + up["stderr"]
    assert "microvm is up" in up["stdout"], up["stdout"]
    st = check["status"]
    assert st["rc"] == 0, st["stderr"]
    s = json.loads(st["stdout"])
    assert s["hypervisor"] == "KVM", s
    assert s["vm_running"] and s["agent_reachable"], s   # the agent answered a ping over vsock
    console = check["console"]["stdout"]
    assert "microvm-agent: listening (vsock)" in console, console[-3000:]
    # the appliance boots `quiet` (the kernel's info lines cost a trapped write per byte);
    # init and the agent still speak, and a panic still shows (test_guest_kernel_panic_...)
    assert "Run /init" not in console and "Linux version" not in console, console[-3000:]
    assert check["down"]["rc"] == 0, check["down"]["stderr"]
    assert not check["left"], "microvm processes left after down"


def assert_vpn_connected(check):
    """`up --profile ...` (check["up"]) connected the VPN and `status --json` says so on KVM.
    Return: the guest's tunnel address."""
    up = check["up"]
    assert up["rc"] == 0, up["stdout"] + up["stderr"]
    assert "VPN connected, tunnel address 10.77.8." in up["stdout"], up["stdout"]
    s = json.loads(check["status"]["stdout"])
    assert s["hypervisor"] == "KVM" and s["vpn"]["state"] == "connected", s
    return s["vpn"]["tun_ip"]


@pytest.fixture(scope="session")
def build_dir():
    return pathlib.Path(os.environ.get("MICROVM_BUILD", TOP / "build"))


def run_nested(build_dir, out, command, arch="x86_64", in_dir=None):
    """Run @command once in the nested machine of @arch (scripts/nested.sh), keeping its run
    directory in @out; (seconds, console text).  Fails the test when the run fails."""
    t0 = time.monotonic()
    cmd = ["sh", str(TOP / "scripts/nested.sh"), "--arch", arch, "--out", str(out)]
    if in_dir:
        cmd += ["--in", str(in_dir)]
    r = subprocess.run(cmd + ["--", command], capture_output=True, text=True,
                       env=dict(os.environ, MICROVM_BUILD=str(build_dir)), timeout=3000)
    sys.stderr.write(r.stdout + r.stderr)
    assert r.returncode == 0, f"the nested run failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return round(time.monotonic() - t0, 1), (out / "console.log").read_text(errors="replace")


@pytest.fixture(scope="session")
def l1(build_dir, tmp_path_factory):
    """{check name: record} from one run of l1_checks.py in the nested machine."""
    assert os.geteuid() == 0, "the nested tier needs root (it shares / with the nested machine)"
    out = tmp_path_factory.mktemp("l1")
    for what, script in (("kernel", "guest/kernel/build.sh"), ("image", "guest/image/build.sh")):
        r = subprocess.run(["sh", str(TOP / script), "--print-path"], capture_output=True,
                           env=dict(os.environ, MICROVM_BUILD=str(build_dir)))
        assert r.returncode == 0, f"no guest {what} built: run 'make {what}' first"
    checks = os.environ.get("MICROVM_NESTED_CHECKS", "").split()
    seconds, console = run_nested(build_dir, out,
                                  f"/usr/bin/python3 -u {TOP}/tests/nested/l1_checks.py "
                                  "/run/nested/checks " + " ".join(checks))
    recs = {p.stem: json.loads(p.read_text()) for p in (out / "checks").glob("*.json")}
    recs["_seconds"] = seconds
    recs["_console"] = console
    return recs


@pytest.fixture
def check(l1, request):
    """The record of the check named by the test's `check_name` marker."""
    name = request.node.get_closest_marker("check").args[0]
    if name not in l1:
        selected = os.environ.get("MICROVM_NESTED_CHECKS")
        assert selected, f"check {name} did not run in L1:\n{l1['_console'][-3000:]}"
        pytest.skip(f"not selected in MICROVM_NESTED_CHECKS={selected}")
    rec = l1[name]
    assert rec["ok"], f"check {name} raised in L1:\n{rec['error']}"
    return rec["result"]


def pytest_configure(config):
    config.addinivalue_line("markers", "check(name): the l1_checks.py check a test reads")
