"""Long build steps show a progress line on a terminal and stay quiet in scripts.

scripts/progress.sh is the helper guest/kernel/build.sh and guest/image/build.sh use; the
`microvm` side (up, vpn connect) is in test_cli_firstrun.py.
"""
import pathlib
import subprocess

from guestlib import image_env
from ptylib import Pty

TOP = pathlib.Path(__file__).resolve().parents[2]
HELPER = TOP / "scripts" / "progress.sh"


def script(body):
    return ["sh", "-e", "-c", f". {HELPER}\n{body}"]


def test_progress_line_on_a_terminal():
    with Pty(script('progress "step one" sleep 2.5; echo "rc=$?"')) as t:
        assert t.wait(30) == 0
    assert "step one... 0 s" in t.output and "step one... 1 s" in t.output, t.output
    assert "rc=0" in t.output
    # erased before what follows
    assert t.output.rstrip().endswith("\r\x1b[Krc=0"), repr(t.output)


def test_exit_status_passes_through_and_set_e_holds():
    for tty in (True, False):
        body = ('f() { return 3; }\nprogress "failing" f || echo "failed with $?"\n'
                'progress "fine" true\necho after')
        if tty:
            with Pty(script(body)) as t:
                assert t.wait(30) == 0
            out = t.output
        else:
            r = subprocess.run(script(body), capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            out = r.stdout
        assert "failed with 3" in out and "after" in out, out


def test_quiet_in_scripts():
    r = subprocess.run(script('progress "step one" sleep 1.2; echo done'),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert r.stdout == "done\n" and r.stderr == "", r


def test_image_build_shows_progress_on_a_terminal(build_dir, tmp_path):
    argv = ["sh", str(TOP / "guest/image/build.sh"), "--out", str(tmp_path / "img")]
    with Pty(argv, env=image_env(build_dir)) as t:
        assert t.wait(300) == 0, t.output
    assert "image: packing rootfs.tar.gz... 0 s" in t.output, t.output
    r = subprocess.run(argv, env=image_env(build_dir), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "image: packing rootfs.tar.gz\n" in r.stderr and "..." not in r.stderr, r.stderr


def test_kernel_build_uses_it():
    text = (TOP / "guest/kernel/build.sh").read_text()
    assert 'progress "kernel: building vmlinux and $boot_image" mk' in text
