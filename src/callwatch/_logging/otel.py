"""OpenTelemetry correlation: ``trace_id`` and ``span_id`` join records logged inside a span."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

__all__ = ["span_context_getter", "trace_processor"]


def trace_processor() -> Callable[[Any, str, dict[str, Any]], dict[str, Any]] | None:
    """A processor when the OpenTelemetry API is installed, else ``None`` (no cost at all)."""
    lookup = _span_lookup()
    if lookup is None:
        return None
    span_key, current_context = lookup

    def add_trace_ids(logger: Any, method: str, record: dict[str, Any]) -> dict[str, Any]:
        span: Any = current_context().get(span_key)
        if span is not None:
            context = span.get_span_context()
            if context.is_valid:
                record["trace_id"] = format(context.trace_id, "032x")
                record["span_id"] = format(context.span_id, "016x")
        return record

    return add_trace_ids


def span_context_getter() -> Callable[[], Any] | None:
    """A function giving the caller's active, valid span context or ``None`` (when the
    OpenTelemetry API is installed; else ``None`` itself)."""
    lookup = _span_lookup()
    if lookup is None:
        return None
    span_key, current_context = lookup

    def active_span_context() -> Any:
        span: Any = current_context().get(span_key)
        if span is not None:
            context = span.get_span_context()
            if context.is_valid:
                return context
        return None

    return active_span_context


def _span_lookup() -> tuple[str, Callable[[], Any]] | None:
    """(key of the current span in a context, the current context's getter), or ``None``."""
    try:
        from opentelemetry import trace  # noqa: PLC0415 - optional dependency
        from opentelemetry.context import Context, get_current  # noqa: PLC0415
    except ImportError:
        return None
    # The key under which the API keeps the current span, found through the public
    # API once, so each look-up costs one dict lookup when no span is active.
    (span_key,) = trace.set_span_in_context(trace.INVALID_SPAN, Context()).keys()
    return span_key, _context_getter(get_current)


def _context_getter(public: Callable[[], Any]) -> Callable[[], Any]:
    """The runtime's ContextVar ``get`` when it exposes one (no Python frames per record),
    else the public ``get_current``."""
    from opentelemetry import context  # noqa: PLC0415 - optional dependency

    variable = getattr(getattr(context, "_RUNTIME_CONTEXT", None), "_current_context", None)
    if isinstance(variable, ContextVar):
        getter: Callable[[], Any] = variable.get
        return getter
    return public
