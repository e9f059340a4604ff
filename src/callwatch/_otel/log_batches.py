"""callwatch's own log records on their way out: built once, sent in batches on one thread.

When callwatch exports through a provider of its own, the SDK's logger would check
and copy every attribute of every record (a third of the export thread's time),
although ``to_attributes`` already made them plain OTLP values. So the export
thread builds the SDK's ``ReadableLogRecord`` itself and this sender hands them,
``BATCH`` at a time, to the OTLP log exporter: the SDK's public exporter interface,
its encoding and its HTTP client. An application's own ``LoggerProvider`` is still
used through its logger, processors and limits.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["LogBatches"]


class LogBatches:
    """Takes log records as ``Logger.emit`` does and sends them in batches on its thread."""

    def __init__(self, exporter: Any, resource: Any, batch: int, delay_sec: float) -> None:
        from opentelemetry._logs import LogRecord  # noqa: PLC0415 - optional dependency
        from opentelemetry.sdk._logs import ReadableLogRecord  # noqa: PLC0415
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: PLC0415

        self._record = LogRecord
        self._readable = ReadableLogRecord
        self._exporter = exporter
        self._resource = resource
        self._scope = InstrumentationScope("callwatch")
        self._batch = batch
        self._delay_sec = delay_sec
        self._queue: deque[Any] = deque()  # bounded by the export thread's room check
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="callwatch-otlp-logs", daemon=True)
        self._thread.start()

    def emit(self, **fields: Any) -> None:
        """Queue one record (``Logger.emit``'s keyword arguments); the thread sends it."""
        self._queue.append(self._readable(
            self._record(**fields), resource=self._resource, instrumentation_scope=self._scope))
        if len(self._queue) >= self._batch and not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._delay_sec)
            self._wake.clear()
            self._send()
        self._send()

    def _send(self) -> None:
        queue = self._queue
        while queue:
            count = min(self._batch, len(queue))
            self._exporter.export([queue.popleft() for _ in range(count)])

    def shutdown(self) -> None:
        """Send what is queued, then close the exporter (the caller bounds the wait)."""
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._exporter.shutdown()
