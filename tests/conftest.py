"""Shared fixtures: a fresh callwatch per test, and the gate for real-server tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_INTEGRATION = os.environ.get("CALLWATCH_REQUIRE_INTEGRATION") == "1"


def need(binary: str) -> str:
    """Path of a real server binary; skip without it, or fail when CI requires it."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} is not installed (run `make test` as root to install it)"
        if REQUIRE_INTEGRATION:
            pytest.fail(message)
        pytest.skip(message)
    return path


def need_root(reason: str) -> None:
    """Skip (or fail under CI) a test that needs root, such as mounting a tmpfs."""
    if os.geteuid() != 0:
        if REQUIRE_INTEGRATION:
            pytest.fail(f"needs root: {reason}")
        pytest.skip(f"needs root: {reason}")


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    """callwatch configured to write into a fresh directory, console off; shut down after."""
    import callwatch

    directory = tmp_path / "logs"
    callwatch.configure(log_dir=directory, console=False, environment="production")
    try:
        yield directory
    finally:
        callwatch.shutdown()
