"""The guide's logging face: ``log``, call context, ``perf_timer``, ``audit_log``.

Everything here is a thin front over :mod:`callwatch._logging.pipeline`: it
collects what only the caller knows (its module, function and line, the
message and fields) and hands the rest to the pipeline.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from sys import _getframe
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from callwatch._decorate import decorate
from callwatch._logging import pipeline as _pipeline
from callwatch._logging.pipeline import AUDIT, LEVELS, TIMER, Processor
from callwatch._logging.records import describe_exception
from callwatch._logging.render import safe_repr
from callwatch._logging.retention import maintain
from callwatch._logging.stdlib import uvicorn_log_config
from callwatch._logging.writer import AttachedHandler
from callwatch._metrics.operations import observe
from callwatch._runtime import settings
from callwatch.context import _fields as _bound_fields
from callwatch.context import bind_call, clear_context, get_call_id, get_fields, set_call_id

__all__ = [
    "LogMethod",
    "Logger",
    "add_handler",
    "add_processor",
    "audit_log",
    "bind_call",
    "clear_context",
    "get_call_id",
    "get_logger",
    "log",
    "logger",
    "perf_timer",
    "prune_logs",
    "remove_handler",
    "set_call_id",
    "uvicorn_log_config",
]

F = TypeVar("F", bound=Callable[..., Any])
ExcInfo = bool | BaseException | tuple[Any, Any, Any] | None

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50


class LogMethod(Protocol):
    """``log.info(message, *args, extra=None, exc_info=None, **fields)``."""

    def __call__(
        self,
        message: object,
        *args: object,
        extra: Any = ...,
        exc_info: ExcInfo = ...,
        **fields: Any,
    ) -> None: ...


def _level_method(levelno: int, default_exc_info: ExcInfo = None) -> LogMethod:
    """One logging method per level, sharing this body: every frame saved is time saved."""

    def method(
        self: Logger,
        message: object,
        *args: object,
        extra: Any = None,
        exc_info: ExcInfo = default_exc_info,
        **fields: Any,
    ) -> None:
        pipeline = _pipeline.current or _pipeline.get()
        if levelno < pipeline.min_level:
            return
        try:
            frame = _getframe(1)
            text = message if type(message) is str else _to_text(message)
            if args:
                text = _interpolate(text, args)
            bound = _bound_fields.get()
            if fields or bound or type(extra) is not dict:
                extra = _merge_extra(bound, extra, fields)
            pipeline.emit(
                levelno,
                self._name or frame.f_globals.get("__name__", "?"),
                frame.f_code.co_name,
                frame.f_lineno,
                text,
                extra,
                _exception(exc_info) if exc_info else None,
            )
        except Exception as exc:  # a logging call never raises into its caller
            pipeline.call_failed(exc, levelno, self._name or "?")

    return cast(LogMethod, method)


class Logger:
    """``log.info("Call started", extra={"caller": n}, extension="100")``.

    The logger name is the caller's module unless the logger was made with a name.
    ``log.exception`` logs an ERROR with the exception being handled.
    """

    __slots__ = ("_name",)

    def __init__(self, name: str | None = None) -> None:
        self._name = name

    debug = _level_method(DEBUG)
    info = _level_method(INFO)
    warning = warn = _level_method(WARNING)
    error = _level_method(ERROR)
    critical = _level_method(CRITICAL)
    exception = _level_method(ERROR, default_exc_info=True)


def _to_text(message: object) -> str:
    try:
        return str(message)
    except Exception:
        return safe_repr(message)


def _interpolate(text: str, args: tuple[object, ...]) -> str:
    try:
        return text % args
    except Exception:
        return f"{text} {safe_repr(args)}"


def _merge_extra(bound: Any, extra: Any, fields: dict[str, Any]) -> dict[str, Any]:
    merged = dict(bound)
    if isinstance(extra, dict):
        merged.update(extra)
    elif extra is not None:
        merged["extra"] = extra
    merged.update(fields)
    return merged


def _exception(exc_info: ExcInfo) -> dict[str, Any] | None:
    if isinstance(exc_info, BaseException):
        return describe_exception(type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple):
        return describe_exception(*exc_info)
    return describe_exception(*sys.exc_info())


log = Logger()


def get_logger(name: str) -> Logger:
    """A logger whose records carry ``name`` instead of the caller's module."""
    return Logger(name)


class perf_timer:
    """Times a block and logs it to ``performance/`` and the per-operation metrics.

    A context manager (``with`` and ``async with``), a reusable object and a decorator.
    """

    __slots__ = ("_fields", "_starts", "name")

    def __init__(self, name: str, **fields: Any) -> None:
        self.name = name
        self._fields = fields
        self._starts: list[int] = []

    def __enter__(self) -> perf_timer:
        self._starts.append(time.perf_counter_ns())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._record(exc_type, sys._getframe(1))

    async def __aenter__(self) -> perf_timer:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._record(exc_type, sys._getframe(1))

    def _record(self, error: type[BaseException] | None, frame: Any) -> None:
        """Feed the operation's metrics and log the timer record, from the block's frame.

        A block that raised is logged at WARNING with the exception's type.
        """
        elapsed_ms = (time.perf_counter_ns() - self._starts.pop()) / 1e6
        success = error is None
        level = INFO if success else WARNING
        try:
            observe(self.name, elapsed_ms, success)
            pipeline = _pipeline.current or _pipeline.get()
            if pipeline.min_level > level and pipeline.capture is None:
                return
            extra: dict[str, Any] = {
                "operation": self.name,
                "duration_ms": round(elapsed_ms, 3),
                "success": success,
            }
            if error is not None:
                extra["error_type"] = error.__name__
            bound = _bound_fields.get()
            if bound or self._fields:
                extra = {**bound, **self._fields, **extra}
            pipeline.emit(
                level,
                frame.f_globals.get("__name__", "?"),
                frame.f_code.co_name,
                frame.f_lineno,
                f"{self.name} {'completed' if success else 'failed'}",
                extra,
                None,
                TIMER,
            )
        except Exception as exc:
            _pipeline.get().call_failed(exc, level, "?", TIMER)

    def __call__(self, func: F) -> F:
        return decorate(lambda: perf_timer(self.name, **self._fields), func)


def audit_log(event: str, **fields: Any) -> None:
    """A business event for ``audit/``: hash-chained and on disk before this returns."""
    pipeline = _pipeline.current or _pipeline.get()
    try:
        frame = sys._getframe(1)
        bound = get_fields()
        extra = {**bound, **fields} if bound else fields
        pipeline.emit(
            INFO,
            frame.f_globals.get("__name__", "?"),
            frame.f_code.co_name,
            frame.f_lineno,
            _to_text(event),
            extra,
            None,
            AUDIT,
        )
    except Exception as exc:
        pipeline.call_failed(exc, INFO, "?", AUDIT)


def add_handler(
    handler: logging.Handler,
    level: str | int = "INFO",
    *,
    format: Callable[[dict[str, Any]], str] | None = None,
) -> logging.Handler:
    """Attach any stdlib handler (CloudWatch's, say); its records' message is the JSON line.

    With ``format``, the message is ``format(record_dict)`` instead (the JSON line
    if ``format`` fails). The handler runs on the writer thread, never the caller's.
    """
    levelno = level if isinstance(level, int) else LEVELS.get(str(level).upper())
    if levelno is None:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(LEVELS)}")
    _pipeline.handlers.append(AttachedHandler(handler, levelno, format))
    return handler


def remove_handler(handler: logging.Handler) -> None:
    """Detach a handler attached with :func:`add_handler`."""
    _pipeline.handlers[:] = [h for h in _pipeline.handlers if h.handler is not handler]


class _Sinks:
    """``logger.add(handler, format=..., level=...)``, as in the guide's CloudWatch example."""

    def add(
        self,
        sink: logging.Handler,
        *,
        format: Callable[[dict[str, Any]], str] | None = None,
        level: str | int = "INFO",
    ) -> logging.Handler:
        return add_handler(sink, level, format=format)

    def remove(self, sink: logging.Handler) -> None:
        remove_handler(sink)


logger = _Sinks()


def add_processor(processor: Processor) -> None:
    """Append a processor ``(logger, method, record) -> record | None`` (``None`` drops it).

    Applies at once and across reconfiguration; processors run in the caller's thread.
    """
    _pipeline.processors.append(processor)
    pipeline = _pipeline.current
    if pipeline is not None:
        pipeline.processors = (*pipeline.processors, processor)


def prune_logs() -> dict[str, object]:
    """Apply retention and compress past days now; returns what was done."""
    current = settings()
    _pipeline.get().writer.flush()
    return maintain(current.log_dir, current.retention, wait=True).as_dict()
