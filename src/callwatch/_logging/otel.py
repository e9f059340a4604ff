"""OpenTelemetry correlation: ``trace_id`` and ``span_id`` join records logged inside a span."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["trace_processor"]


def trace_processor() -> Callable[[Any, str, dict[str, Any]], dict[str, Any]] | None:
    """A processor when the OpenTelemetry API is installed, else ``None`` (no cost at all)."""
    try:
        from opentelemetry import trace  # noqa: PLC0415 - optional dependency
    except ImportError:
        return None
    get_current_span = trace.get_current_span

    def add_trace_ids(logger: Any, method: str, record: dict[str, Any]) -> dict[str, Any]:
        context = get_current_span().get_span_context()
        if context.is_valid:
            record["trace_id"] = format(context.trace_id, "032x")
            record["span_id"] = format(context.span_id, "016x")
        return record

    return add_trace_ids
