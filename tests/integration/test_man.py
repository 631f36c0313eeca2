"""The man pages (docs/man/*.scd, scdoc): each builds, the build installs it, and every
long option that a program's --help prints appears in its page - so a new option without
documentation fails here.  No root needed.
"""
import os
import pathlib
import re
import subprocess

import pytest

TOP = pathlib.Path(__file__).resolve().parents[2]
MAN = TOP / "docs" / "man"
SUBCOMMANDS = ["run", "up", "vpn", "status", "console", "down", "uninstall"]
PAGES = (["microvm.1"] + [f"microvm-{c}.1" for c in SUBCOMMANDS] +
         ["microvm-agent.8", "libmicrovm.3"])


def long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", text))


@pytest.mark.parametrize("page", PAGES)
def test_page_builds(page, build_dir, tmp_path):
    src = (MAN / (page + ".scd")).read_text()
    r = subprocess.run(["scdoc"], input=src, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    name, section = page.rsplit(".", 1)
    assert f'.TH "{name}" "{section}"' in r.stdout
    assert ".SH NAME" in r.stdout and ".SH SYNOPSIS" in r.stdout
    built = build_dir / "docs" / "man" / page
    assert built.is_file(), f"{built}: not built by meson"
    assert built.read_text() == r.stdout, f"{built} is stale: run ninja"


def test_every_subcommand_has_a_page(microvm_bin):
    out = subprocess.run([str(microvm_bin), "--help"], capture_output=True, text=True).stdout
    listed = re.findall(r"^  ([a-z]+)  +", out.split("Commands:")[1].split("\n\n")[0], re.M)
    assert set(listed) - {"help"} == set(SUBCOMMANDS)
    page = (MAN / "microvm.1.scd").read_text()
    for c in SUBCOMMANDS:
        assert f"*microvm-{c}*(1)" in page, c


@pytest.mark.parametrize("cmd, page", [([], "microvm.1")] +
                         [([c], f"microvm-{c}.1") for c in SUBCOMMANDS])
def test_cli_options_are_documented(microvm_bin, cmd, page):
    r = subprocess.run([str(microvm_bin), *cmd, "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    opts = long_options(r.stdout)
    assert opts, r.stdout
    text = (MAN / (page + ".scd")).read_text()
    missing = sorted(o for o in opts if o not in long_options(text))
    assert not missing, f"{page} does not document {missing}"


def test_agent_options_are_documented(agent_bin):
    r = subprocess.run([str(agent_bin), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    opts = long_options(r.stdout)
    assert "--transport" in opts
    text = (MAN / "microvm-agent.8.scd").read_text()
    missing = sorted(o for o in opts if o not in long_options(text))
    assert not missing, f"microvm-agent.8 does not document {missing}"


def test_pages_are_installed(build_dir, tmp_path):
    (tmp_path / "cache").mkdir()
    subprocess.run(["meson", "install", "-C", str(build_dir), "--destdir", str(tmp_path),
                    "--quiet"], check=True, capture_output=True, timeout=600,
                   env=dict(os.environ, MICROVM_CACHE=str(tmp_path / "cache")))
    for page in PAGES:
        section = page.rsplit(".", 1)[1]
        found = list(tmp_path.rglob(f"man/man{section}/{page}"))
        assert len(found) == 1, page
