"""The export thread: every record, call and timer leaves as OTLP, off the callers' threads.

The log writer hands each written batch to :meth:`Exporter.take` (a bounded
hand-over, nothing else on the writer thread); call starts and ends arrive from
the monitor's call listener as two small tuples. The export thread turns them
into log records, spans and histogram points, yielding the interpreter every few
records and stepping aside while another thread wants it, so a busy caller is
never held up by it. A burst waits in the inbox and leaves as fast as the
collector takes it; only when the inbox overflows (the collector is down, or too
slow for longer than a burst) is what does not fit dropped and counted, never
waited for.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from time import time_ns
from typing import Any

import orjson

from callwatch._logging.writer import BATCH_SINKS, ERRORS, PERFORMANCE, Item
from callwatch._otel.attributes import SEVERITY, parse_timestamp_ns, to_attributes
from callwatch._otel.metrics import Instruments
from callwatch._otel.providers import QUEUE, Signals
from callwatch._otel.spans import CallSpans

__all__ = ["Exporter"]

INBOX = 65_536  # written records waiting for the export thread
SLICE = 8  # records converted between two yields of the interpreter
BUSY_SEC = 0.001  # a yield that long means another thread wanted the interpreter
# Then the export thread steps aside: long while the application is logging (the writer
# handed a batch within LOGGING_SEC), so a logging caller keeps its pace; short otherwise,
# as the thread that wanted the interpreter is then mostly the one sending what we built,
# and a long pause left both idle (a burst took twice as long to reach the collector).
BACKOFF_LOGGING_SEC = 0.02
BACKOFF_IDLE_SEC = 0.002
LOGGING_SEC = 0.1  # twice the writer's default flush interval
WAKE_AT = 512
INTERVAL_SEC = 0.1
ROOM_WAIT_SEC = 0.01  # the batch processors are full: the export thread waits this long
END_GRACE_NS = 300_000_000  # a call's end waits this long for its last records to arrive
_ERROR = 40
# Attributes that describe the log line, not the operation: left off spans.
_LOG_ONLY = frozenset(("logger", "function", "line", "app", "environment", "host", "pid",
                       "trace_id", "span_id", "callwatch.category", "callwatch.json"))


class Exporter:
    """One configuration's export: its thread, its hand-over queues and its signals."""

    def __init__(self, signals: Signals, read_totals: Callable[[], Any]) -> None:
        from opentelemetry import trace  # noqa: PLC0415 - optional dependency
        from opentelemetry._logs import SeverityNumber  # noqa: PLC0415

        from callwatch._logging.otel import span_context_getter  # noqa: PLC0415

        self.pid = os.getpid()
        self.signals = signals
        self.delivery = signals.delivery
        self._trace = trace
        self._severity = {name: SeverityNumber(number) for name, number in SEVERITY.items()}
        self.inbox: deque[Item] = deque()
        self.events: deque[tuple[Any, ...]] = deque()
        self._ends: deque[tuple[Any, ...]] = deque()
        self._starts: dict[str, int] = {}
        self.spans = CallSpans(signals.tracer) if signals.tracer is not None else None
        self.instruments = (
            Instruments(signals.meter, read_totals) if signals.meter is not None else None
        )
        self._active_span = span_context_getter() or (lambda: None)
        self._wake = threading.Event()
        self._stopping = False
        self._deadline = float("inf")
        self._last_take = 0.0  # when the writer last handed a batch over
        BATCH_SINKS.append(self.take)
        self._thread = threading.Thread(target=self._run, name="callwatch-otlp", daemon=True)
        self._thread.start()

    # -- callers' and writer's side: hand over, never wait -------------------------------------

    def take(self, batch: list[Item]) -> None:
        """The writer's batch: queued for export, or dropped and counted when the queue is full."""
        self._last_take = time.monotonic()
        inbox = self.inbox
        room = INBOX - len(inbox)
        if room >= len(batch):
            inbox.extend(batch)
        else:
            inbox.extend(batch[: max(room, 0)])
            self.delivery.dropped(len(batch) - max(room, 0), "records", "export queue full")
        if len(inbox) >= WAKE_AT and not self._wake.is_set():
            self._wake.set()

    def call_started(self, call_id: Hashable) -> None:
        self.events.append((str(call_id), time_ns(), self._active_span()))

    def call_ended(self, call_id: Hashable, duration_sec: float | None, success: bool) -> None:
        self._ends.append((str(call_id), time_ns(), duration_sec, success))

    # -- the export thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(INTERVAL_SEC)
            self._wake.clear()
            self._pump(final=False)
        self._pump(final=True)

    def _pump(self, final: bool) -> None:
        try:
            self._take_starts()
            inbox = self.inbox
            done = 0
            while inbox:
                if self._stopping and time.monotonic() > self._deadline:
                    self.delivery.cut_short(len(inbox))
                    inbox.clear()
                    break
                if not self._room():
                    time.sleep(ROOM_WAIT_SEC)
                    self._take_starts()
                    continue
                self._export(inbox.popleft())
                done += 1
                if done % SLICE == 0:
                    if not self._stopping:
                        self._step_aside()
                    self._take_starts()
            self._take_ends(final)
            if final and self.spans is not None:
                for _ in range(self.spans.end_all(time_ns())):
                    self._accept("spans")
        except Exception:  # the export thread outlives any one bad record
            self.delivery.internal_error()

    def _step_aside(self) -> None:
        """Let the callers' threads run first: yield, and back off while they are busy."""
        started = time.perf_counter()
        time.sleep(0)
        if time.perf_counter() - started > BUSY_SEC:
            logging = time.monotonic() - self._last_take < LOGGING_SEC
            time.sleep(BACKOFF_LOGGING_SEC if logging else BACKOFF_IDLE_SEC)

    def _take_starts(self) -> None:
        events = self.events
        while events:
            call_id, nanos, parent = events.popleft()
            self._starts[call_id] = nanos
            if self.spans is not None:
                self.spans.start(call_id, nanos, parent)

    def _take_ends(self, final: bool) -> None:
        ends = self._ends
        due = time_ns() - END_GRACE_NS
        while ends and (final or ends[0][1] <= due):
            call_id, nanos, duration_sec, success = ends.popleft()
            started = self._starts.pop(call_id, None)
            if self.spans is not None and self.spans.end(call_id, nanos, success):
                self._accept("spans")
            if self.instruments is not None:
                if duration_sec is None and started is not None:
                    duration_sec = (nanos - started) / 1e9
                if duration_sec is not None:
                    self.instruments.call_duration.record(
                        duration_sec, {"outcome": "success" if success else "failure"})

    def _export(self, item: Item) -> None:
        sinks, _day, line, _console, levelno = item
        record = orjson.loads(line)
        logger_name = record.get("logger")
        if isinstance(logger_name, str) and logger_name.startswith("opentelemetry"):
            return  # the SDK's own messages stay in the files: exporting them could loop
        nanos = parse_timestamp_ns(str(record.get("timestamp", "")))
        category = "performance" if sinks & PERFORMANCE else "errors" if sinks & ERRORS else "app"
        attributes = to_attributes(record, category)
        call_id = attributes.get("call_id")
        extra = record.get("extra")
        extra = extra if isinstance(extra, dict) else {}
        if sinks & PERFORMANCE:
            self._performance(record, extra, nanos, call_id, attributes)
        elif levelno >= _ERROR and self.spans is not None:
            details = {k: v for k, v in attributes.items() if k.startswith("exception.")}
            self.spans.error(call_id, nanos, str(record.get("message", "")), details)
        if self.signals.logger is not None:
            self._emit_log(record, nanos, attributes, call_id)

    def _emit_log(
        self, record: dict[str, Any], nanos: int, attributes: dict[str, Any], call_id: Any
    ) -> None:
        trace_id, span_id = record.get("trace_id"), record.get("span_id")
        context = None
        if isinstance(trace_id, str) and isinstance(span_id, str):
            context = self._remote_context(trace_id, span_id)
        elif self.spans is not None:
            context = self.spans.context_of(call_id)
        level = str(record.get("level", "INFO"))
        self.signals.logger.emit(
            timestamp=nanos, observed_timestamp=time_ns(), context=context,
            severity_number=self._severity.get(level), severity_text=level,
            body=str(record.get("message", "")), attributes=attributes,
        )
        self._accept("records")

    def _performance(
        self, record: dict[str, Any], extra: dict[str, Any], nanos: int, call_id: Any,
        attributes: dict[str, Any],
    ) -> None:
        """A timer record (or a turn record): a span under its call, and a histogram point."""
        span_attributes = {k: v for k, v in attributes.items() if k not in _LOG_ONLY}
        if record.get("message") == "turn" and "turn" in extra:
            latency = extra.get("latency_ms")
            if not isinstance(latency, (int, float)):
                return
            if self.instruments is not None:
                self.instruments.turn_latency.record(latency)
            stages = extra.get("stages")
            if isinstance(stages, dict):
                span_attributes.pop("stages", None)
                span_attributes.update(_flatten_stages(stages))
            self._span("turn", call_id, nanos, latency, span_attributes, failed=False)
            return
        operation, duration = extra.get("operation"), extra.get("duration_ms")
        if not isinstance(operation, str) or not isinstance(duration, (int, float)):
            return
        success = extra.get("success") is not False
        if self.instruments is not None:
            self.instruments.operation_duration.record(
                duration, {"operation": operation, "success": success})
        self._span(operation, call_id, nanos, duration, span_attributes, failed=not success)

    def _span(self, name: str, call_id: Any, nanos: int, duration_ms: float,
              attributes: dict[str, Any], failed: bool) -> None:
        if self.spans is not None:
            self.spans.timed(name, call_id, nanos, duration_ms, attributes, failed)
            self._accept("spans")

    def _remote_context(self, trace_id: str, span_id: str) -> Any:
        trace = self._trace
        try:
            span_context = trace.SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                                             trace_flags=trace.TraceFlags(1))
        except ValueError:
            return None
        return trace.set_span_in_context(trace.NonRecordingSpan(span_context))

    def _room(self) -> bool:
        """Whether our own batch processors can take a record's log and span without dropping.

        While they cannot (the collector is behind), records wait in the inbox: a burst
        is delayed, not lost, and only an inbox overflow drops (counted in :meth:`take`).
        """
        delivery = self.delivery
        return all(delivery.has_room(unit, QUEUE) for unit in self.signals.counted)

    def _accept(self, unit: str) -> None:
        if unit in self.signals.counted:
            self.delivery.accepted(unit)

    # -- lifecycle --------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def pending(self) -> int:
        """Records and spans not yet sent or dropped: 0 once the export has caught up."""
        return len(self.inbox) + self.delivery.in_flight()

    def stop(self, timeout: float) -> None:
        """Export what is queued and stop within ``timeout`` seconds, whatever the collector."""
        started = time.monotonic()
        self._deadline = started + timeout / 3
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout / 2)
        self._unregister()
        self.signals.shutdown(max(0.05, timeout - (time.monotonic() - started)))

    def discard(self) -> None:
        """Forget a parent process's exporter in a forked child, sending nothing."""
        self._unregister()
        self.inbox.clear()
        self.delivery.forget()
        self.signals.shutdown(0.1)

    def _unregister(self) -> None:
        if self.take in BATCH_SINKS:
            BATCH_SINKS.remove(self.take)


def _flatten_stages(stages: dict[str, Any]) -> dict[str, Any]:
    """``{"llm": {"ttfb_ms": 310}}`` as span attributes ``{"llm.ttfb_ms": 310}``."""
    flat: dict[str, Any] = {}
    for stage, values in stages.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, (str, bool, int, float)):
                    flat[f"{stage}.{key}"] = value
    return flat
