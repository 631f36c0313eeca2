"""Shared fixtures for the integration tests.

The build directory comes from $MICROVM_BUILD (the Makefile sets it), else ./build.
"""
import os
import pathlib

import pytest

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
