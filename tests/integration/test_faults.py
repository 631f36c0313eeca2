"""Faults on the guest side are reported, with a reason, by `microvm status` and logged by
`microvm up` (docs/appliance.md, "Faults").

Runs `microvm up --backend nsbox` with the guest image's rootfs (as test_e2e_nsbox.py does)
and breaks the guest side from outside: the agent stops answering (SIGSTOP), then the box's
PID 1 is killed. Needs root (namespaces).
"""
import json
import os
import pathlib
import signal

import vpnlib
from test_e2e_nsbox import Up, box_pids, image, ppid  # noqa: F401  (image is a fixture)
from sockslib import wait_line


def status(up):
    r = up.cli("status", "--json")
    return json.loads(r.stdout)


def pid_in_box(pid):
    """The PID a host process has inside its PID namespace."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])
    return None


def test_agent_silent_then_box_init_killed(microvm_bin, image, tmp_path):  # noqa: F811
    up = Up(microvm_bin, image, tmp_path)
    try:
        st = status(up)
        assert st["agent_reachable"] and st["fault"] == "", st
        pids = box_pids(up.proc.pid)
        agent = next(p for p in pids
                     if b"microvm-agent" in pathlib.Path(f"/proc/{p}/cmdline").read_bytes())
        init = ppid(agent)      # the box's PID 1 runs the agent
        assert pid_in_box(init) == 1

        # the agent stops answering: a reason, then back to normal when it answers again
        os.kill(agent, signal.SIGSTOP)
        try:
            st = vpnlib.wait_for(lambda: (s := status(up))["fault"] and s, 20, "a fault")
            assert st["fault"] == "the agent does not answer (no reply to ping within 2 s)"
            assert st["vm_running"] and not st["agent_reachable"]
            assert "fault:     the agent does not answer" in up.cli("status").stdout
            wait_line(up.proc, "microvm: fault: the agent does not answer", 20)
        finally:
            os.kill(agent, signal.SIGCONT)
        vpnlib.wait_for(lambda: status(up)["fault"] == "", 20, "the fault to clear")
        wait_line(up.proc, "microvm: fault cleared", 20)

        # the box's PID 1 dies: stopped, with the signal, also as the last error
        os.kill(init, signal.SIGKILL)
        st = vpnlib.wait_for(lambda: (s := status(up))["fault"].startswith("the guest") and s,
                             20, "the guest's fault")
        assert not st["vm_running"] and not st["agent_reachable"]
        assert st["fault"].startswith("the guest stopped (error): "), st
        assert st["fault"].endswith("killed by signal 9"), st
        assert st["last_error"] == st["fault"]
        text = up.cli("status").stdout
        assert "vm:        stopped" in text and "fault:     the guest stopped (error)" in text
        wait_line(up.proc, "microvm: fault: the guest stopped (error)", 20)
    finally:
        up.close()
