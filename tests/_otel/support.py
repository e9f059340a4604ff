"""Helpers for the OTLP export tests: optional packages, in-memory exporters."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from tests.conftest import REQUIRE_INTEGRATION


def need_module(name: str) -> ModuleType:
    """Import an optional package; skip without it, or fail when CI requires it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} is not installed (pip install -e '.[all,dev]')"
        if REQUIRE_INTEGRATION:
            pytest.fail(message)
        pytest.skip(message)
