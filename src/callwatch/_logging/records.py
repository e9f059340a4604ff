"""The pieces of a record that cost time to build: timestamps and exceptions."""

from __future__ import annotations

import time
import traceback
from types import TracebackType
from typing import Any

__all__ = ["describe_exception", "second_cache", "second_prefix"]

_MAX_FRAMES = 50
_MAX_CHAIN = 5

# (whole second, "YYYY-MM-DDTHH:MM:SS") — rebuilt once a second, swapped atomically.
# The pipeline builds each timestamp inline from it: a function call per record costs more.
second_cache: tuple[int, str] = (-1, "")


def second_prefix(second: int) -> str:
    """The ISO text of a whole UTC second, cached until the next one."""
    global second_cache
    prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    second_cache = (second, prefix)
    return prefix


def describe_exception(
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> dict[str, Any] | None:
    """Type, message and frames of an exception and its causes; never local variables."""
    if exc_type is None or exc is None:
        return None
    return _describe(exc, tb, depth=0)


def _describe(exc: BaseException, tb: TracebackType | None, depth: int) -> dict[str, Any]:
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {type(exc).__name__}>"
    frames = [
        {"file": f.filename, "line": f.lineno, "function": f.name, "code": f.line or ""}
        for f in traceback.extract_tb(tb, limit=None)[-_MAX_FRAMES:]
    ]
    described: dict[str, Any] = {
        "type": _qualified_name(type(exc)),
        "message": message,
        "frames": frames,
    }
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None and depth < _MAX_CHAIN:
        described["cause"] = _describe(cause, cause.__traceback__, depth + 1)
    return described


def _qualified_name(kind: type[BaseException]) -> str:
    module = kind.__module__
    return (
        kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    )
