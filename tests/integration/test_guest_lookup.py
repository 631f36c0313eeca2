"""Which guest kernel and image `microvm run` / `microvm up` take without options
(src/runtime/guest_files.c, docs/kvm.md): this build's cache entry, never a stale one silently.

The build records the cache keys it goes with (guest/keys.sh -> build/guest/guest-keys); these
tests check that record against the build scripts and what a user sees when the cache holds
this build's entries, or only other ones. No KVM needed: the lookup happens (and its note is
printed) before /dev/kvm is opened; on a KVM host the fake files then fail to load.
"""
import os
import subprocess

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def print_key(build_dir, script):
    r = subprocess.run(["sh", os.path.join(TOP, script), "--print-key"], capture_output=True,
                       text=True, env=dict(os.environ, MICROVM_BUILD=str(build_dir)),
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def keys(build_dir):
    text = (build_dir / "guest" / "guest-keys").read_text()
    return dict(line.split() for line in text.splitlines())


def test_build_records_the_keys_the_build_scripts_compute(build_dir, keys):
    assert keys["kernel"] == print_key(build_dir, "guest/kernel/build.sh")
    assert keys["image"] == print_key(build_dir, "guest/image/build.sh")


def fake_entry(cache, kind, key, names, age):
    d = cache / kind / key
    d.mkdir(parents=True)
    for n in names:
        (d / n).write_bytes(b"not a real " + n.encode())
        os.utime(d / n, (age, age))


def run_defaults(microvm_bin, cache):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MICROVM_KERNEL", "MICROVM_INITRD", "MICROVM_ROOTFS")}
    env["MICROVM_CACHE"] = str(cache)
    return subprocess.run([str(microvm_bin), "run", "--mem", "64"], capture_output=True,
                          text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)


def test_this_builds_entry_wins_over_a_newer_one(microvm_bin, keys, tmp_path):
    cache = tmp_path / "cache"
    fake_entry(cache, "kernel", keys["kernel"], ["vmlinux"], 1000)
    fake_entry(cache, "image", keys["image"], ["initramfs.cpio.gz"], 1000)
    # another tree's, built later: the old lookup ("the newest") took these
    fake_entry(cache, "kernel", "0" * 16, ["vmlinux"], 2000)
    fake_entry(cache, "image", "0" * 16, ["initramfs.cpio.gz"], 2000)
    r = run_defaults(microvm_bin, cache)
    assert r.returncode != 0          # fake files (or no /dev/kvm): it does not boot
    assert "note:" not in r.stderr, r.stderr
    if "no /dev/kvm" not in r.stderr:  # a KVM host: the load error names the file
        assert keys["kernel"] in r.stderr and "0" * 16 not in r.stderr, r.stderr


def test_a_stale_entry_is_named_stale(microvm_bin, keys, tmp_path):
    cache = tmp_path / "cache"
    fake_entry(cache, "kernel", keys["kernel"], ["vmlinux"], 1000)
    fake_entry(cache, "image", "0" * 16, ["initramfs.cpio.gz"], 2000)  # not this build's
    r = run_defaults(microvm_bin, cache)
    want = (f"microvm: note: the guest image this build goes with (cache key {keys['image']})"
            f" is not built; using {cache}/image/{'0' * 16}/initramfs.cpio.gz, which is stale")
    assert want in r.stderr, r.stderr
    assert "run 'make image' to build the right one" in r.stderr
    assert "guest kernel" not in r.stderr.split("note:")[1]   # the kernel is this build's
