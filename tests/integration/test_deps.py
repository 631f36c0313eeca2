"""Lean dependency steps: each make target installs only the package group it needs.

`make build` must not pull in the test, cross and benchmark tools (Wine, mingw-w64,
linux-source, clang...); `make check` installs every group.  Checked with `make -n` (nothing
is installed or built) and `scripts/install-deps.sh --list`.
"""
import pathlib
import re
import subprocess

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = TOP / "scripts" / "install-deps.sh"


def group(name):
    r = subprocess.run(["sh", str(SCRIPT), "--list", name], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def groups_installed_by(target, tmp_path):
    """The install-deps.sh groups `make TARGET` would ask for, from a fresh build dir."""
    r = subprocess.run(["make", "-n", "-C", str(TOP), target, f"BUILD={tmp_path}/b",
                        f"BUILD_ASAN={tmp_path}/a", f"BUILD_FUZZ={tmp_path}/f",
                        f"BUILD_WIN={tmp_path}/w", f"BUILD_ARM64={tmp_path}/r"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    calls = re.findall(r"install-deps\.sh([^\n;&|]*)", r.stdout)
    assert calls, f"make {target} installs nothing:\n{r.stdout}"
    return [c.split() for c in calls]


def test_build_installs_only_the_build_group(tmp_path):
    assert groups_installed_by("build", tmp_path) == [["build"]] * 2
    build = group("build")
    for heavy in ("wine64", "mingw-w64", "linux-source-6.1", "clang", "qemu-system-x86",
                  "hyperfine", "openssh-server", "python3-pytest"):
        assert heavy not in build, heavy
    assert {"meson", "ninja-build", "libcjson-dev", "libslirp-dev"} <= build


@pytest.mark.parametrize("target, groups", [
    ("windows", {"build", "image", "windows", "rust"}),
    ("bench", {"build", "bench"}),
    ("kernel", {"kernel"}),
    ("rust", {"build", "image", "rust"}),
    ("image", {"build", "image"}),
    ("kernel-arm64", {"kernel", "kernel-arm64"}),
    ("image-arm64", {"build", "arm64", "image", "image-arm64"}),
    ("integration", {"build", "kernel", "image", "test", "kernel-arm64", "arm64",
                     "image-arm64"}),
    ("nested-arm64", {"build", "arm64", "kernel", "kernel-arm64", "image", "image-arm64",
                      "test", "nested-arm64"}),
])
def test_each_target_installs_its_groups(tmp_path, target, groups):
    got = {g for call in groups_installed_by(target, tmp_path) for g in call}
    assert got == groups


def test_check_installs_everything(tmp_path):
    calls = groups_installed_by("check", tmp_path)
    assert [] in calls           # no group: all of them


def test_demo_installs_what_the_demo_needs():
    text = (TOP / "scripts" / "demo.sh").read_text()
    assert re.search(r'install-deps\.sh"? build image demo\b', text)
    demo = group("demo") | group("image") | group("build")
    assert {"openvpn", "openssl", "curl", "iproute2", "python3"} <= demo
    assert "wine64" not in demo and "linux-source-6.1" not in demo


def test_unknown_group_is_an_error_naming_the_groups():
    r = subprocess.run(["sh", str(SCRIPT), "tests"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2
    assert "unknown group 'tests'" in r.stderr and "build image kernel demo test" in r.stderr


def test_readme_says_which_command_needs_what():
    text = (TOP / "README.md").read_text()
    section = text[text.index("Dependencies are Debian packages"):]
    for words in ("make build", "make check", "make windows", "make bench", "make demo",
                  "install-deps.sh --list"):
        assert words in section, words
