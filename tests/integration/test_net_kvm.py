"""virtio-net over libslirp under KVM: `microvm run --net` with the freestanding test guest.

With `testguest.net=1` the test guest (tests/guest/vsock_guest.c) looks for a virtio-mmio
device with DeviceID 1 among the kernel command line's `virtio_mmio.device=` tokens, sends an
ARP request for the gateway 10.0.2.2 from 10.0.2.15 and prints the reply on the console.
libslirp answers for its virtual hosts with MAC 52:55:<IPv4 address>, so the gateway is
52:55:0a:00:02:02.  No traffic leaves the process: slirp answers ARP itself.
"""
import os
import signal
import subprocess
import time

import pytest

NEEDS = []
if os.geteuid() != 0:
    NEEDS.append("root")
if not os.access("/dev/kvm", os.R_OK | os.W_OK):
    NEEDS.append("/dev/kvm")
pytestmark = pytest.mark.skipif(bool(NEEDS), reason="needs " + " and ".join(NEEDS))

GUEST_MAC = "52:54:00:12:34:56"  # VIRTIO_NET_SLIRP_DEFAULT_MAC
GATEWAY_MAC = "52:55:0a:00:02:02"


@pytest.fixture(scope="module")
def guest_elf(build_dir):
    elf = build_dir / "tests" / "guest" / "vsock-guest.elf"
    if not elf.exists():
        pytest.fail(f"test guest not built in {build_dir}")
    return elf


def boot(microvm_bin, elf, tmp_path, *extra, until="vsock-guest: ready", timeout=40):
    """Run the test guest with testguest.net=1 until @until is on the console, then SIGTERM.

    Return: (console text, exit status).
    """
    console = tmp_path / "console.txt"
    with open(console, "w") as out:
        vm = subprocess.Popen([str(microvm_bin), "run", "--kernel", str(elf), "--mem", "64",
                               "--quiet", *extra,
                               "--cmdline", "console=ttyS0 testguest.net=1"],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout
        while until not in console.read_text():
            assert vm.poll() is None, console.read_text()
            assert time.time() < deadline, console.read_text()
            time.sleep(0.05)
    finally:
        vm.send_signal(signal.SIGTERM)
        try:
            status = vm.wait(10)  # teardown (slirp thread, then transport) must not hang
        except subprocess.TimeoutExpired:
            vm.kill()
            vm.wait()
            pytest.fail("microvm did not stop within 10 s of SIGTERM:\n" + console.read_text())
    return console.read_text(), status


def test_arp_reply_from_slirp_gateway(microvm_bin, guest_elf, tmp_path):
    out, status = boot(microvm_bin, guest_elf, tmp_path, "--net")
    lines = out.splitlines()
    assert f"net: virtio-net mac {GUEST_MAC}" in lines, out
    assert f"net: arp reply 10.0.2.2 is at {GATEWAY_MAC}" in lines, out
    assert "net: no reply" not in out
    # the net device sits next to vsock: the vsock device is still found and driven
    assert "vsock-guest: ready cid=3" in out
    assert status == 5, out  # stopped from here, cleanly


def test_no_net_device_without_flag(microvm_bin, guest_elf, tmp_path):
    # without --net there is no virtio-mmio token with DeviceID 1 on the command line
    out, status = boot(microvm_bin, guest_elf, tmp_path)
    assert "net: no virtio-net device" in out.splitlines(), out
    assert "arp reply" not in out
    assert status == 5, out


def test_run_help_documents_net(microvm_bin):
    r = subprocess.run([str(microvm_bin), "run", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "--net" in r.stdout and "10.0.2.15" in r.stdout and "10.0.2.2" in r.stdout
