"""callwatch: production logging, monitoring and alerting for Python voice-agent services.

Every public name of ``callwatch.logger``, ``callwatch.monitoring``,
``callwatch.alerting`` and ``callwatch.routes`` is importable from here; they
load on first use, so ``import callwatch`` stays cheap and FastAPI stays optional.
"""

from __future__ import annotations

import importlib
from typing import Any

from callwatch._runtime import configure, shutdown
from callwatch.config import ConfigError, Settings

__version__ = "0.1.0"

_FACES = ("callwatch.logger", "callwatch.monitoring", "callwatch.alerting", "callwatch.routes")

__all__ = ["ConfigError", "Settings", "configure", "shutdown"]


def __getattr__(name: str) -> Any:
    for module_name in _FACES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # routes without the fastapi extra
            continue
        if name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module 'callwatch' has no attribute {name!r}")
