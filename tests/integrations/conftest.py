"""The real frameworks, offline: skipped when not installed, failing under CI's requirement."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from callwatch.alerting import alert_manager
from callwatch.monitoring import production_monitor
from tests.conftest import REQUIRE_INTEGRATION


def need_package(module: str, extra: str) -> ModuleType:
    """Import a framework (at module level); skip without it, or fail when CI requires it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{module} is not installed (pip install 'callwatch[{extra}]'): {exc}"
        if REQUIRE_INTEGRATION:
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)


@pytest.fixture(autouse=True)
def fresh(log_dir: Path) -> Iterator[None]:
    production_monitor.reset()
    alert_manager.reset()
    yield
    production_monitor.reset()
    alert_manager.reset()
