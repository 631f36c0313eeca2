"""The `microvm` command line: help, version, unknown commands."""
import subprocess


def run(binary, *args):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)


def test_help_lists_commands(microvm_bin):
    r = run(microvm_bin, "--help")
    assert r.returncode == 0
    assert "usage: microvm" in r.stdout
    assert "help" in r.stdout


def test_no_args_prints_the_overview(microvm_bin):
    # a newcomer typing `microvm` gets the overview on stdout, not an error
    r = run(microvm_bin)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout == run(microvm_bin, "--help").stdout
    for words in ("usage: microvm", "First steps", "microvm up --detach",
                  "microvm vpn import", "microvm vpn connect", "microvm status"):
        assert words in r.stdout, words


def test_unknown_command(microvm_bin):
    r = run(microvm_bin, "frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr


def test_version(microvm_bin):
    r = run(microvm_bin, "--version")
    assert r.returncode == 0
    assert r.stdout.startswith("microvm ")
