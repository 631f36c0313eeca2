"""guest/image/packages.sh: the Debian packages whose files the guest image holds, which
scripts/windows-package.sh ships the copyright files of and names in SOURCES.txt.

- the image of this build: exit 0, one "BINARY VERSION SOURCE SOURCE_VERSION" line per
  package, openvpn among them with the version dpkg knows;
- a MANIFEST naming a file no package owns, first (so nothing is known yet) or among the
  image's own files: exit 1 naming that file, and nothing on stdout (before the fix, the
  failure ended only a pipeline's subshell: exit 0 and, the list being empty, every package
  installed here);
- a file a package owns but whose bytes are not the installed ones: exit 1 naming it;
- a MANIFEST with only the image's own files: exit 1.
No root needed (dpkg-query only reads); the image comes from guestlib.build_image.
"""
import hashlib
import pathlib
import subprocess

import pytest

import guestlib

TOP = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = TOP / "guest/image/packages.sh"
ALIEN = "usr/lib/x86_64-linux-gnu/libmicrovm-test-unowned.so.1"


@pytest.fixture(scope="module")
def image(build_dir):
    return guestlib.build_image(build_dir)


def packages(image_dir):
    return subprocess.run(["sh", str(SCRIPT), str(image_dir)], capture_output=True,
                          text=True, timeout=120)


def with_manifest(tmp_path, lines):
    d = tmp_path / "img"
    d.mkdir()
    (d / "MANIFEST").write_text("".join(ln + "\n" for ln in lines))
    return d


def test_the_image_of_this_build_names_its_packages(image):
    r = packages(image)
    assert r.returncode == 0, r.stderr
    rows = [ln.split() for ln in r.stdout.splitlines()]
    assert rows and all(len(row) == 4 for row in rows), r.stdout
    ver = subprocess.run(["dpkg-query", "-W", "-f", "${Version} ${source:Package} "
                          "${source:Version}", "openvpn"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert ["openvpn", *ver] in rows, rows
    names = [row[0] for row in rows]
    assert names == sorted(set(names)), names
    # the image's closure, not everything installed here (python3 is, and is not in it)
    assert "python3" not in names and len(names) < 60, names


@pytest.mark.parametrize("where", ["first", "among"])
def test_a_file_no_package_owns_fails_naming_it(image, tmp_path, where):
    manifest = (image / "MANIFEST").read_text().splitlines()
    alien = f"{ALIEN} 755 {'0' * 64}"
    lines = [alien] if where == "first" else manifest + [alien]
    r = packages(with_manifest(tmp_path, lines))
    assert r.returncode == 1, (r.returncode, r.stdout[:500])
    assert f"/{ALIEN} in the image: no installed Debian package owns it" in r.stderr, r.stderr
    assert r.stdout == "", r.stdout[:500]


def test_a_file_unlike_the_installed_one_fails_naming_it(image, tmp_path):
    lines = []
    for ln in (image / "MANIFEST").read_text().splitlines():
        if ln.startswith("usr/sbin/openvpn "):
            path, mode, _ = ln.split()
            ln = f"{path} {mode} {hashlib.sha256(b'not openvpn').hexdigest()}"
        lines.append(ln)
    assert "usr/sbin/openvpn 755 " in "\n".join(lines)
    r = packages(with_manifest(tmp_path, lines))
    assert r.returncode == 1, (r.returncode, r.stdout[:500])
    assert "/usr/sbin/openvpn in the image differs from" in r.stderr, r.stderr
    assert r.stdout == "", r.stdout[:500]


def test_a_manifest_of_the_image_s_own_files_only_fails(tmp_path):
    r = packages(with_manifest(tmp_path, [f"init 755 {'0' * 64}",
                                          f"usr/bin/microvm-agent 755 {'0' * 64}"]))
    assert r.returncode == 1 and "lists no Debian file" in r.stderr, r.stderr
    assert r.stdout == ""
