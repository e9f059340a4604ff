"""The pieces of a record: who writes it, timestamps, exceptions, callwatch's own records."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = [
    "Origin",
    "describe_exception",
    "own_record",
    "second_cache",
    "second_prefix",
    "timestamp",
]

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


def timestamp() -> str:
    """Now, as records write it (``Pipeline.emit`` holds the same steps inline: it is hot)."""
    micros = time.time_ns() // 1000
    second = micros // 1_000_000
    cached_second, prefix = second_cache
    if second != cached_second:
        prefix = second_prefix(second)
    return f"{prefix}.{micros - second * 1_000_000:06d}Z"


@dataclass(frozen=True, slots=True)
class Origin:
    """The fields every record of one process and configuration carries."""

    app: str
    environment: str
    host: str
    pid: int


def own_record(
    origin: Origin,
    level: str,
    function: str,
    message: str,
    extra: dict[str, Any],
    *,
    logger: str = "callwatch",
    line: int = 0,
    call_id: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """A record callwatch writes about itself (a drop notice, an unbuildable-record marker),
    in the schema of every record."""
    return {
        "timestamp": at or timestamp(),
        "level": level,
        "logger": logger,
        "function": function,
        "line": line,
        "message": message,
        "app": origin.app,
        "environment": origin.environment,
        "host": origin.host,
        "pid": origin.pid,
        "call_id": call_id,
        "extra": extra,
    }


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
