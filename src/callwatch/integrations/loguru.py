"""loguru (Pipecat logs through it): ``callwatch.integrations.loguru.install()``.

Adds one loguru sink that hands each record to callwatch's pipeline, so a
framework's own lines get callwatch's schema, redaction, files and the call
id bound where they were logged. The application's existing loguru sinks
(its stderr sink included) are left exactly as they are.
"""

from __future__ import annotations

from typing import Any

from loguru import logger as _loguru

from callwatch._logging import pipeline as _pipeline
from callwatch._logging.records import describe_exception
from callwatch.context import get_fields

__all__ = ["install", "uninstall"]

_sink_id: int | None = None
# loguru level number -> callwatch level (TRACE has no callwatch level and is left out)
_LEVELS = ((50, 50), (40, 40), (30, 30), (20, 20), (10, 10))


def install() -> int:
    """Route loguru's records (DEBUG and up) into callwatch; returns loguru's sink id.

    Calling it again changes nothing; :func:`uninstall` removes the sink.
    """
    global _sink_id
    if _sink_id is None:
        _sink_id = _loguru.add(_sink, level="DEBUG", format="{message}", colorize=False,
                               backtrace=False, diagnose=False, catch=True)
    return _sink_id


def uninstall() -> None:
    """Stop routing loguru's records into callwatch."""
    global _sink_id
    if _sink_id is not None:
        _loguru.remove(_sink_id)
        _sink_id = None


def _sink(message: Any) -> None:
    """Runs in the logging caller's thread and context: the call id bound there is current."""
    record = message.record
    number = record["level"].no
    levelno = next((ours for at_least, ours in _LEVELS if number >= at_least), None)
    pipeline = _pipeline.current or _pipeline.get()
    if levelno is None or levelno < pipeline.min_level:
        return
    raised = record["exception"]
    exception = None
    if raised is not None and raised.type is not None:
        exception = describe_exception(raised.type, raised.value, raised.traceback)
    bound = get_fields()
    extra = {**bound, **record["extra"]} if bound else dict(record["extra"])
    pipeline.emit(levelno, record["name"] or "loguru", record["function"], record["line"],
                  record["message"], extra, exception)
