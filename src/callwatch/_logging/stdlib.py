"""The bridge from stdlib ``logging`` (uvicorn, httpx, asyncio, your loggers) into callwatch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from callwatch._logging.records import describe_exception

__all__ = ["BridgeHandler", "level_name", "uvicorn_log_config"]

# Attributes every LogRecord has; anything else came from ``extra=`` and is kept.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def level_name(levelno: int) -> int:
    """Fold custom stdlib levels onto the five callwatch levels (rounding down)."""
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return level
    return logging.DEBUG


Emit = Callable[[int, str, str, int, str, dict[str, Any], "dict[str, Any] | None"], None]


Failed = Callable[[Exception, int, str], None]


class BridgeHandler(logging.Handler):
    """Installed on the root logger: turns each stdlib record into a callwatch record.

    It never raises: logging's own error handler would print the record's raw
    message on stderr. A record it cannot read is handed to ``failed`` instead.
    """

    def __init__(self, emit: Emit, failed: Failed) -> None:
        super().__init__(logging.NOTSET)
        self._emit = emit
        self._failed = failed

    def emit(self, record: logging.LogRecord) -> None:
        levelno = logging.INFO
        try:
            levelno = level_name(record.levelno)
            try:
                message = record.getMessage()
            except Exception:
                message = f"{record.msg!r} % {record.args!r}"
            extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
            exception = describe_exception(*record.exc_info) if record.exc_info else None
        except Exception as exc:
            name = getattr(record, "name", None)
            self._failed(exc, levelno, name if isinstance(name, str) else "?")
            return
        self._emit(
            levelno,
            record.name,
            record.funcName,
            record.lineno,
            message,
            extra,
            exception,
        )


def uvicorn_log_config() -> dict[str, Any]:
    """A ``log_config`` for uvicorn that sends its loggers through callwatch.

    uvicorn's default configuration gives its loggers their own console handlers
    and stops propagation; this one lets them propagate to the root logger,
    where callwatch's bridge picks them up with the current call id.
    """
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {name: {"handlers": [], "propagate": True} for name in names},
    }
