"""scripts/nested.sh's answer to a frozen L1 ("Stalls" in its header): a machine whose heartbeat
goes silent is stopped, what QEMU was doing is kept, L1 boots again with the same run directory,
and a command that records its steps goes on from where it was cut short.

The stall is made, not waited for: the command silences L1's heartbeat writer (a process of L1's
init, outside the chroot but in the same process table) and sleeps, which is all nested.sh can
see of a real stall, where QEMU's TCG stops running L1 as a whole.  Needs root and QEMU, like
the rest of the nested tier.
"""
import os
import subprocess
import sys
import time

from conftest import TOP

STEPS = r'''
set -eu
cd /run/nested
if [ -e step1 ]; then
	echo "second boot: step1 found ($(cat step1)), step2 runs"
	echo done >step2
	exit 7
fi
echo "first boot: step1 recorded"
cat /proc/sys/kernel/random/boot_id >step1
# silence the heartbeat: its writer is a child of L1's /init (the same command line as PID 1)
for p in /proc/[0-9]*; do
	pid=${p#/proc/}
	[ "$pid" != 1 ] || continue
	if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q '^/bin/busybox sh /init'; then
		kill -9 "$pid" 2>/dev/null || true
	fi
done
sleep 600
echo "not reached"
'''


def test_a_silent_l1_is_stopped_reported_and_booted_again_where_it_left_off(build_dir,
                                                                            tmp_path):
    assert os.geteuid() == 0, "the nested tier needs root (it shares / with the nested machine)"
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "steps.sh").write_text(STEPS)
    out = tmp_path / "out"
    env = dict(os.environ, MICROVM_BUILD=str(build_dir))
    # the L1 kernel first (a fresh cache fetches it), so the time below is the stall's
    subprocess.run(["sh", str(TOP / "scripts/nested.sh"), "--fetch-kernel"], check=True,
                   capture_output=True, env=env)
    t0 = time.monotonic()
    r = subprocess.run(["sh", str(TOP / "scripts/nested.sh"), "--stall", "40", "--retries", "1",
                        "--timeout", "400", "--out", str(out), "--in", str(inp),
                        "--", "sh /run/nested/in/steps.sh"],
                       capture_output=True, text=True, timeout=600, env=env)
    seconds = time.monotonic() - t0
    sys.stderr.write(r.stdout + r.stderr)
    # the command's own status and both boots' output come back
    assert r.returncode == 7, r.stderr
    assert "first boot: step1 recorded" in r.stdout, r.stdout
    assert "second boot: step1 found" in r.stdout, r.stdout
    assert "[nested: L1 booted again after a stall]" in r.stdout, r.stdout
    assert "not reached" not in r.stdout
    assert (out / "step2").read_text() == "done\n"
    # what the user is told, and what is kept of the stopped boot
    assert "L1 gave no sign of life for 40 s" in r.stderr, r.stderr
    assert "booting L1 again (retry 1 of 1)" in r.stderr, r.stderr
    assert (out / "console-stalled-1.log").read_text(errors="replace").count("L1 ready") == 1
    report = (out / "stall-1.txt").read_text()
    assert report.count("RIP=") == 5, report        # the vCPU, sampled from QEMU's monitor
    assert "LVTT" in report, report                  # L1's local APIC
    assert "CPU 0/TCG: " in report, report           # QEMU's threads, the vCPU's named
    assert seconds < 300, f"{seconds:.0f} s"


def test_l1_checks_skips_the_checks_an_earlier_boot_recorded(tmp_path):
    """After a stall L1 boots again with the same run directory: l1_checks.py runs only the
    checks without a record (here: none, so it runs nothing and says so for each)."""
    sys.path.insert(0, str(TOP / "tests" / "nested"))
    import l1_checks
    for name in l1_checks.CHECKS:
        (tmp_path / f"{name}.json").write_text('{"ok": true, "result": {}}')
    r = subprocess.run([sys.executable, str(TOP / "tests/nested/l1_checks.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for name in l1_checks.CHECKS:
        assert f"l1: {name}: recorded by an earlier boot" in r.stdout, r.stdout
    assert "done in" not in r.stdout, r.stdout
    assert not list(tmp_path.glob(".*.json"))      # no half-written record left
