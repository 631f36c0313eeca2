"""scripts/nested.sh before it boots anything: a missing QEMU or a wrong --arch is an error
that says what to do (the nested tiers must fail, never skip, when they cannot run)."""
import os
import pathlib
import subprocess

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]


def nested(*args, **env):
    return subprocess.run(["sh", str(TOP / "scripts/nested.sh"), *args], capture_output=True,
                          text=True, env=dict(os.environ, **env), timeout=60)


@pytest.mark.parametrize("arch, package", [("x86_64", "qemu-system-x86"),
                                           ("arm64", "qemu-system-arm")])
def test_missing_qemu_names_the_install_command(arch, package):
    r = nested("--arch", arch, "--", "true", MICROVM_QEMU="/nonexistent/qemu")
    assert r.returncode == 125, r
    assert f"install it with 'apt-get install {package}'" in r.stderr, r.stderr


def test_unknown_architecture_is_an_error():
    r = nested("--arch", "riscv64", "--", "true")
    assert r.returncode == 125
    assert "unknown --arch 'riscv64' (x86_64 or arm64)" in r.stderr, r.stderr
