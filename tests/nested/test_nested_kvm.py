"""The VM path on a real KVM (nested under QEMU TCG): what a user sees from `microvm run`,
`microvm up` with no VM options, and the VPN appliance end to end.

Every test reads one record made by l1_checks.py during the single nested boot (conftest.py).
"""
import json

import pytest

import vpnlib
from conftest import assert_booted_to_user_space, assert_up_agent_down, assert_vpn_connected


@pytest.mark.check("run")
def test_run_vmlinux_to_user_space(check):
    assert_booted_to_user_space(check["vmlinux"])


@pytest.mark.check("run")
def test_the_guest_gets_the_tsc_deadline_timer(check):
    """KVM emulates the LAPIC's TSC-deadline mode; the VMM offers it in CPUID, so a Linux guest
    uses it and skips calibrating its LAPIC timer against 25 PIT ticks (docs/kvm.md)."""
    for name in ("vmlinux", "smp"):
        out = check[name]["stdout"]
        assert "TSC deadline timer available" in out, out[-3000:]


@pytest.mark.check("run")
def test_run_bzimage_to_user_space(check):
    # the bzImage decompressor hangs under PVM; on a real KVM it works
    assert_booted_to_user_space(check["bzimage"])


@pytest.mark.check("run")
def test_run_two_cpus(check):
    r = check["smp"]
    assert_booted_to_user_space(r)
    assert "smp: Brought up 1 node, 2 CPUs" in r["stdout"], r["stdout"][-3000:]
    assert not check["left"]


@pytest.mark.check("up_defaults")
def test_up_without_vm_options_picks_kvm_and_the_agent_answers(check):
    assert_up_agent_down(check)
    assert "using the nsbox backend" not in check["up"]["stderr"]
    # this build's kernel and image, found by their cache keys, not a stale newer entry
    assert "note:" not in check["up"]["stderr"], check["up"]["stderr"]


@pytest.mark.check("vpn")
def test_vpn_up_with_profile_only(check):
    assert_vpn_connected(check)
    # the server saw the client come from the client namespace: virtio-net -> libslirp -> veth
    assert f"{vpnlib.CLIENT_IP}:" in check["server_log"]
    assert "alice" in check["server_log"]


@pytest.mark.check("vpn")
def test_vpn_curl_through_socks(check):
    for key in ("curl", "curl_name"):
        r = check[key]
        assert r["rc"] == 0, r["stderr"]
        assert r["stdout"].startswith("only behind the VPN"), r


@pytest.mark.check("vpn")
def test_vpn_ssh_through_socks(check):
    r = check["ssh"]
    assert r["rc"] == 0, r["stderr"]
    assert r["stdout"].strip() == "through-vpn-42"


@pytest.mark.check("vpn")
def test_vpn_web_authentication(check):
    up = check["web_up"]
    assert up["rc"] == 0, up["stdout"] + up["stderr"]
    assert "VPN needs web authentication; open:\n  http://auth.test/login/webok" in up["stdout"]
    assert json.loads(check["web_status"]["stdout"])["state"] == "connected"
    assert check["web_curl"]["stdout"].startswith("only behind the VPN"), check["web_curl"]
    assert check["web_down"]["rc"] == 0
    assert not check["left"], "microvm processes left after down"


@pytest.mark.check("vpn")
def test_vpn_down_with_an_open_relay(check):
    assert check["relay_reply"] == 0
    assert check["relay_banner"] == vpnlib.TARGET_BANNER.decode()  # the relay was live
    assert check["down"]["rc"] == 0, check["down"]["stderr"]
    assert check["down"]["seconds"] < 30, check["down"]
    # the client sees its connection end (EOF or reset), not a connection that hangs
    assert check["relay_end"] in ("EOF", "error Connection reset by peer"), check["relay_end"]
    assert check["relay_end_seconds"] < 15


@pytest.mark.check("faults")
def test_guest_kernel_panic_is_reported(check):
    r = check["panic"]
    assert r["rc"] == 1, r
    # `up` boots the guest `quiet`: the panic is still seen and reported in words
    assert "guest kernel panicked" in r["stderr"], r["stderr"]
    assert r["seconds"] < 100, "reported only when the boot timeout ran out"
    assert not check["panic_left"]


@pytest.mark.check("faults")
def test_vmm_sigkill_then_status_and_up_again(check):
    assert check["up"]["rc"] == 0, check["up"]["stderr"]
    assert len(check["killed"]) == 1          # the VMM is the `up` process
    assert not check["kill_left"]             # SIGKILL left nothing behind
    st = check["status_after_kill"]
    assert st["rc"] != 0 and "not running" in (st["stdout"] + st["stderr"]), st
    assert check["up_again"]["rc"] == 0, check["up_again"]["stderr"]  # stale socket replaced
    assert check["down"]["rc"] == 0
    assert not check["left"]


@pytest.mark.check("faults")
def test_agent_killed_in_the_guest_is_reported_and_restarted(check):
    assert check["up_again"]["rc"] == 0, check["up_again"]["stderr"]
    assert json.loads(check["agent_before"]["stdout"])["agent_reachable"]
    console = check["agent_console"]["stdout"].replace("\r", "")
    # it really died of SIGKILL inside the guest, and init said so and started it again
    assert "agent-killer: sent SIGKILL to the agent" in console, console[-3000:]
    assert "microvm-init: agent killed by signal 9 (Killed) after " in console, console[-3000:]
    assert console.count("microvm-agent: listening (vsock)") == 2, console[-3000:]
    # `status` says what happened in words, and the new agent answers
    s = json.loads(check["agent_status_json"]["stdout"])
    assert s["agent_reachable"] and s["vm_running"], s
    why = ("VPN down: the VM's agent ended (killed by signal 9 (Killed) after ")
    assert s["fault"].startswith(why), s
    assert "and was restarted; any VPN session ended with it" in s["fault"], s
    assert why in check["agent_status"]["stdout"], check["agent_status"]
    assert check["agent_reported_seconds"] < 60, check["agent_reported_seconds"]
    # and `down` leaves nothing behind
    assert check["down"]["rc"] == 0, check["down"]["stderr"]
    assert not check["left"]


@pytest.mark.check("vsock")
def test_guest_af_vsock_64mib_each_way_with_half_close(check):
    assert check["rc"] == 0, check["console"][-3000:]           # the guest powered off
    assert check["received"] == check["sent"] == 64 << 20, check
    assert check["received_sha256"] == check["sent_sha256"]     # byte-exact both ways
    # the guest saw the half-close (EOF) after exactly the bytes sent, then closed its side
    assert f"vsock-echo: {64 << 20} bytes\n" in check["console"].replace("\r", "")
