"""The pipeline a record follows: build → processors → render → writer (or capture).

Built once per ``configure()`` so the hot path looks nothing up that could be
looked up once: the level threshold, the static fields, the processor chain
and the sinks are attributes of one :class:`Pipeline`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from time import time_ns
from typing import Any

from orjson import dumps

from callwatch import _runtime
from callwatch._logging import records
from callwatch._logging.audit import AuditChain
from callwatch._logging.console import pretty
from callwatch._logging.files import log_path
from callwatch._logging.otel import trace_processor
from callwatch._logging.records import Origin, own_record
from callwatch._logging.redact import RedactProcessor, redact_name, register_secret
from callwatch._logging.render import OPTIONS, default, escape_line_breakers, render
from callwatch._logging.retention import Maintenance
from callwatch._logging.stats import STATS
from callwatch._logging.stdlib import BridgeHandler
from callwatch._logging.writer import (
    APP,
    CONSOLE,
    ERRORS,
    HANDLERS,
    PERFORMANCE,
    AttachedHandler,
    Item,
    Writer,
)
from callwatch.config import Settings
from callwatch.context import _call_id, bounded_call_id

__all__ = [
    "UNBUILDABLE",
    "Pipeline",
    "Processor",
    "current",
    "handlers",
    "processors",
]

Processor = Callable[[Any, str, dict[str, Any]], "dict[str, Any] | None"]

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
METHOD_NAMES = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}

# The message of a record that could not be built; nothing of the original is kept.
UNBUILDABLE = "[callwatch: record could not be built]"

# Kinds of record, each with its own destination files.
LOG, AUDIT, TIMER = 0, 1, 2
ERROR = logging.ERROR

# Users' additions survive reconfiguration: they live here, not in a Pipeline.
processors: list[Processor] = []
handlers: list[AttachedHandler] = []


class Pipeline:
    """Everything one configuration needs to turn a log call into lines on disk."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.min_level = LEVELS[settings.log_level]
        # Once per process: a forked worker builds its own pipeline, with its own pid.
        self.origin = Origin(
            settings.app_name, settings.environment, socket.gethostname(), os.getpid()
        )
        self.app, self.environment = self.origin.app, self.origin.environment
        self.host, self.pid = self.origin.host, self.origin.pid
        self.max_field_chars = settings.max_field_chars
        self.capture: list[dict[str, Any]] | None = None
        self.pii = settings.redact_pii
        self._said_unbuildable = False
        # The bound method, not the object: calling an instance costs a slot lookup.
        # Fields are cut to LOG_MAX_FIELD_CHARS before they are scanned, not after.
        redact = RedactProcessor(settings.redact_pii, settings.max_field_chars)
        chain: list[Processor] = [redact.__call__]
        add_trace_ids = trace_processor()
        if add_trace_ids is not None:
            chain.append(add_trace_ids)
        self.processors = (*chain, *processors)
        # True: JSON console, False: pretty console (rendered off the fast path), None: none.
        self.json_console = None if not settings.console else not settings.development
        self.colour = os.isatty(1) if self.json_console is False else False
        self.audit = AuditChain(settings.audit_hmac_key)
        self.writer = Writer(settings, handlers, self.origin, self.json_console, self.colour)
        self.queued_sinks = HANDLERS | APP | (CONSOLE if self.json_console else 0)
        self.timer_sinks = self.queued_sinks | PERFORMANCE
        if settings.files:
            problem = _writability_problem(settings.log_dir)
            if problem is not None:
                self.writer.report_failure(settings.log_dir, problem, 0)
        self.maintenance = (
            Maintenance(settings.log_dir, settings.retention) if settings.files else None
        )
        self.bridge = BridgeHandler(self.emit, self.call_failed)

    def emit(
        self,
        levelno: int,
        logger: str,
        function: str,
        line: int,
        message: str,
        extra: dict[str, Any],
        exception: dict[str, Any] | None = None,
        kind: int = LOG,
    ) -> None:
        """Build, process, render and hand over one record. Never raises.

        Audit records pass whatever ``LOG_LEVEL`` is: they are a business record.
        """
        if levelno < self.min_level and kind != AUDIT:
            return
        micros = time_ns() // 1000
        second = micros // 1_000_000
        cached_second, prefix = records.second_cache
        if second != cached_second:
            prefix = records.second_prefix(second)
        timestamp = f"{prefix}.{micros - second * 1_000_000:06d}Z"
        try:
            call_id = _call_id.get()
            if call_id is None and "call_id" in extra:
                call_id = bounded_call_id(extra["call_id"])  # audit_log(call_id=...)
            record: dict[str, Any] = {
                "timestamp": timestamp,
                "level": LEVEL_NAMES[levelno],
                "logger": logger,
                "function": function,
                "line": line,
                "message": message,
                "app": self.app,
                "environment": self.environment,
                "host": self.host,
                "pid": self.pid,
                "call_id": call_id,
                "extra": extra,
            }
            if exception is not None:
                record["exception"] = exception
            method = METHOD_NAMES[levelno]
            for processor in self.processors:
                processed = processor(None, method, record)
                if processed is None:
                    return
                record = processed
            if self.capture is not None:
                self.capture.append(record)
                return
            # render() inlined for the common case; it handles everything else.
            try:
                rendered = dumps(record, default=default, option=OPTIONS)
            except (TypeError, ValueError):
                rendered = render(record, self.max_field_chars)
            else:
                if len(rendered) > self.max_field_chars:
                    rendered = render(record, self.max_field_chars)
                elif not rendered.isascii():
                    rendered = escape_line_breakers(rendered)
            if kind != AUDIT and levelno < ERROR and self.json_console is not False:
                # The common case: DEBUG/INFO/WARNING and timers handed to the writer's queue.
                sinks = self.queued_sinks if kind == LOG else self.timer_sinks
                item: Item = (
                    sinks,
                    prefix[:10],
                    rendered,
                    rendered if sinks & CONSOLE else None,
                    levelno,
                )
                self.writer.submit(item)
                return
            self._dispatch(record, rendered, levelno, kind)
        except Exception as exc:
            self.failed(exc, timestamp, levelno, kind, logger, function, line)

    def _dispatch(self, record: dict[str, Any], rendered: bytes, levelno: int, kind: int) -> None:
        """Every other record: errors and audit (durable), timers, the pretty console."""
        sinks = HANDLERS
        console: bytes | None = None
        if levelno >= self.min_level:
            sinks |= (APP | PERFORMANCE) if kind == TIMER else APP
            if levelno >= ERROR:
                sinks |= ERRORS
            if self.json_console is not None:
                sinks |= CONSOLE
                console = rendered if self.json_console else pretty(record, self.colour)
        day = record["timestamp"][:10]
        if kind == AUDIT:
            # Chained first, so app/, handlers and exporters carry the line audit/ holds.
            chained = self._append_audit(record, day)
            if chained is not None:
                rendered = chained
                console = chained if self.json_console else console
            self.writer.write_now((sinks, day, rendered, console, levelno))
            return
        item: Item = (sinks, day, rendered, console, levelno)
        if levelno >= ERROR:
            self.writer.write_now(item)
        else:
            self.writer.submit(item)

    def _append_audit(self, record: dict[str, Any], day: str) -> bytes | None:
        """The chained line written to audit/, or ``None`` when there is none."""
        if not self.settings.files:
            return None
        path = log_path(self.settings.log_dir, "audit", day)
        try:
            line = self.audit.append(path, record, self.render)
        except OSError as exc:
            self.writer.report_failure(path, exc, 1)
            return None
        self.writer.report_success()
        return line

    def render(self, record: dict[str, Any]) -> bytes:
        return render(record, self.max_field_chars)

    def failed(
        self,
        exc: Exception,
        timestamp: str,
        levelno: int,
        kind: int,
        logger: object,
        function: object,
        line: object,
    ) -> None:
        """A record that could not be built is still written, as a redacted marker record.

        Nothing of its text is kept: the failure may be in redaction itself.
        ERROR and audit records stay durable and in the audit chain.
        """
        STATS.add("internal_errors")
        error_type = type(exc).__name__
        try:
            record = own_record(
                self.origin,
                LEVEL_NAMES.get(levelno, "ERROR"),
                self._safe_name(function) or "?",
                UNBUILDABLE,
                {"error_type": error_type},
                logger=self._safe_name(logger) or "?",
                line=line if type(line) is int else 0,
                call_id=self._safe_name(_call_id.get()),
                at=timestamp,
            )
            if self.capture is not None:
                self.capture.append(record)
            else:
                self._dispatch(record, dumps(record, option=OPTIONS), levelno, kind)
        except Exception as again:  # only the count is left to give
            error_type = f"{error_type}, then {type(again).__name__}"
        if not self._said_unbuildable:
            self._said_unbuildable = True
            with contextlib.suppress(OSError):
                os.write(
                    2,
                    f"callwatch: a record could not be built ({error_type}): written as "
                    f"{UNBUILDABLE!r}, counted in internal_errors\n".encode(),
                )

    def call_failed(self, exc: Exception, levelno: int, logger: str, kind: int = LOG) -> None:
        """A logging call failed before its record reached :meth:`emit`: write the marker."""
        if levelno >= self.min_level or kind == AUDIT:
            self.failed(exc, records.timestamp(), levelno, kind, logger, "?", 0)

    def _safe_name(self, name: object) -> str | None:
        return None if name is None else redact_name(name, pii=self.pii)

    def stop(self, timeout: float) -> None:
        """Flush and stop background work; records logged afterwards are written directly."""
        if self.maintenance is not None:
            self.maintenance.stop(min(timeout, 1.0))
        self.writer.stop(timeout)
        self.audit.close()


def _writability_problem(log_dir: Path) -> OSError | None:
    """Why LOG_DIR cannot be written, found at start-up so it is said at once."""
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        probe = log_dir / f".callwatch-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        return exc
    return None


current: Pipeline | None = None


def _start(settings: Settings) -> None:
    global current
    for secret in (
        settings.monitoring_token,
        settings.audit_hmac_key,
        settings.alert_webhook_url,
        settings.slack_webhook_url,
    ):
        if secret:
            register_secret(secret)  # masked wherever it is quoted, from now on
    pipeline = Pipeline(settings)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, BridgeHandler):
            root.removeHandler(handler)
    root.addHandler(pipeline.bridge)
    root.setLevel(pipeline.min_level)
    current = pipeline


def _stop(timeout: float) -> None:
    # The stopped pipeline stays current: a late record (an atexit hook, a daemon
    # thread) is still written, synchronously, until the next configure().
    if current is not None:
        current.stop(timeout)


def _flush() -> None:
    pipeline = current
    if pipeline is not None:
        pipeline.writer.flush()


def files_writable() -> bool:
    """False while the current pipeline cannot write its log files."""
    pipeline = current
    return pipeline is None or not pipeline.writer.failing


def get() -> Pipeline:
    """The current pipeline, configuring callwatch from the environment on first use."""
    pipeline = current
    if pipeline is None:
        _runtime.settings()
        pipeline = current
        assert pipeline is not None
    return pipeline


_runtime.register(_runtime.Component("logging", _start, _stop, priority=0, flush=_flush))
os.register_at_fork(before=_flush)

# The OTLP exporter, a sink of the writer, registers its own component.
from callwatch import _otel  # noqa: E402, F401
