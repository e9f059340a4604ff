"""Each call a trace, built after the fact from the call's events and records.

A ``call`` span runs from ``record_call_start`` to ``record_call_end`` (its status
from the outcome); every ``perf_timer`` record becomes a child span ending at
the record's time and as long as its ``duration_ms``; every turn record a
``turn`` span as long as its latency; every ERROR record of a live call an event
on the call span. All of it happens on the export thread with explicit
timestamps, so a caller pays nothing for it. When the caller had a span active
at the call's start (Pipecat's, LiveKit's, the application's), the call span is
its child: one trace per call in the backend.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from callwatch._logging.redact import redact_name
from callwatch._runtime import settings

__all__ = ["CallSpans", "shown_call_id"]

MAX_OPEN = 10_000  # live calls tracked; the oldest is closed beyond that
RECENTLY_ENDED = 4096  # ended calls whose late records still join their trace


def shown_call_id(call_id: object) -> str:
    """The call id as the records show it (secrets and card-shaped numbers masked).

    Spans get the same id as the call's records, so a backend joins them, and a
    card number used as a call id leaves the process masked in spans too.
    """
    return _shown(str(call_id), settings().redact_pii)


@lru_cache(maxsize=4096)
def _shown(call_id: str, pii: bool) -> str:
    return redact_name(call_id, pii=pii)


@dataclass
class _Call:
    span: Any
    context: Any  # an API Context holding the call span, for its children and logs


class CallSpans:
    """The spans of every call this process sees, keyed by call id."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry import trace  # noqa: PLC0415 - optional dependency
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        self._trace = trace
        self._status = Status
        self._codes = StatusCode
        self._tracer = tracer
        self._open: OrderedDict[str, _Call] = OrderedDict()
        self._ended: OrderedDict[str, Any] = OrderedDict()

    def start(self, call_id: str, nanos: int, parent: Any = None) -> None:
        """Open the call span; ``parent`` is the span context active where the call began."""
        call_id = shown_call_id(call_id)
        if call_id in self._open:
            return
        context = None
        if parent is not None:
            context = self._trace.set_span_in_context(self._trace.NonRecordingSpan(parent))
        span = self._tracer.start_span(
            "call", context=context, start_time=nanos, attributes={"call_id": call_id}
        )
        self._open[call_id] = _Call(span, self._trace.set_span_in_context(span))
        if len(self._open) > MAX_OPEN:
            oldest = next(iter(self._open))
            self.end(oldest, nanos, None, "no end recorded before too many calls were live")

    def end(
        self, call_id: str, nanos: int, success: bool | None, problem: str | None = None
    ) -> bool:
        """Close the call span with its outcome (``None``: unknown); ``False`` if not open."""
        call_id = shown_call_id(call_id)
        call = self._open.pop(call_id, None)
        if call is None:
            return False
        if success is True:
            call.span.set_status(self._status(self._codes.OK))
        elif success is False or problem is not None:
            call.span.set_status(self._status(self._codes.ERROR, problem or "call failed"))
        call.span.end(end_time=nanos)
        self._ended[call_id] = call.context
        if len(self._ended) > RECENTLY_ENDED:
            self._ended.popitem(last=False)
        return True

    def end_all(self, nanos: int) -> int:
        """Close every live call (shutdown): their spans say the end was not recorded."""
        problem = "process stopped before the call's end was recorded"
        return sum(self.end(call_id, nanos, None, problem) for call_id in list(self._open))

    def context_of(self, call_id: str | None) -> Any:
        """The API Context holding the call's span (live or recently ended), or ``None``."""
        if call_id is None:
            return None
        call = self._open.get(call_id)
        if call is not None:
            return call.context
        return self._ended.get(call_id)

    def timed(
        self, name: str, call_id: str | None, end_nanos: int, duration_ms: float,
        attributes: dict[str, Any], failed: bool,
    ) -> None:
        """A child span of the call (a root span outside calls) that ended at ``end_nanos``."""
        start = end_nanos - max(0, int(duration_ms * 1_000_000))
        span = self._tracer.start_span(
            name, context=self.context_of(call_id), start_time=start, attributes=attributes
        )
        if failed:
            span.set_status(self._status(self._codes.ERROR, f"{name} failed"))
        span.end(end_time=end_nanos)

    def error(self, call_id: str | None, nanos: int, message: str,
              attributes: dict[str, Any]) -> None:
        """An ERROR record of a live call, as an event on its span."""
        call = self._open.get(call_id) if call_id is not None else None
        if call is not None:
            name = "exception" if "exception.type" in attributes else "error"
            call.span.add_event(name, {"message": message, **attributes}, timestamp=nanos)
