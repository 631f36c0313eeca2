"""Shared fixtures for the integration tests.

The build directory comes from $MICROVM_BUILD (the Makefile sets it), else ./build.
`vpn_bed` is vpnlib.Testbed (OpenVPN server, namespaces) for a module (from vpnfixtures.py,
which tests/windows shares), `vpn_agent` the agent in its client namespace.
"""
import os
import pathlib

import pytest

from vpnfixtures import vpn_bed  # noqa: F401  (a fixture: pytest finds it here)

TOP = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("MICROVM_BUILD", TOP / "build"))


@pytest.fixture(scope="session")
def build_dir():
    if not (BUILD / "build.ninja").exists():
        pytest.fail(f"no build in {BUILD}: run 'make build' first")
    return BUILD


@pytest.fixture(scope="session")
def microvm_bin(build_dir):
    return build_dir / "src" / "cli" / "microvm"


@pytest.fixture(scope="session")
def agent_bin(build_dir):
    b = build_dir / "guest" / "agent" / "microvm-agent"
    if not b.exists():
        pytest.fail(f"{b} not built")
    return b


@pytest.fixture(scope="module")
def vpn_agent(vpn_bed, build_dir):
    """microvm-agent over TCP in vpn_bed's client namespace, for a module."""
    import vpnlib
    with vpnlib.Agent(vpn_bed, build_dir / "guest/agent/microvm-agent") as a:
        yield a
