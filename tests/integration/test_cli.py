"""The `microvm` command line: help, version, unknown commands."""
import subprocess


def run(binary, *args):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)


def test_help_lists_commands(microvm_bin):
    r = run(microvm_bin, "--help")
    assert r.returncode == 0
    assert "usage: microvm" in r.stdout
    assert "help" in r.stdout


def test_no_args_is_usage_error(microvm_bin):
    r = run(microvm_bin)
    assert r.returncode == 2
    assert "usage" in r.stderr


def test_unknown_command(microvm_bin):
    r = run(microvm_bin, "frobnicate")
    assert r.returncode == 2
    assert "unknown command 'frobnicate'" in r.stderr


def test_version(microvm_bin):
    r = run(microvm_bin, "--version")
    assert r.returncode == 0
    assert r.stdout.startswith("microvm ")
