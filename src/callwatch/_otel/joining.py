"""Framework spans joined to calls: each span of a call carries its ``call_id``.

Pipecat and LiveKit start their spans through the application's tracer
provider, on tasks of their own. A span processor added to that provider (the
provider itself is never replaced) stamps ``call_id`` on every span whose
parent carries one, and on every span started while a call is bound: the
conversation (or session) span is stamped where the adapter opens it, or
when the adapter adopts it while it is open, and every span below it
inherits the call, whichever task starts it.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from callwatch._otel.spans import shown_call_id
from callwatch.context import get_call_id

__all__ = ["adopt", "join"]

MAX_LIVE = 100_000  # open spans remembered with their call; the oldest go first beyond that


class _CallStamper(SpanProcessor):
    """Stamps ``call_id`` on the spans of a call as they start; remembers open ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, str] = {}  # span id of an open span -> its call id
        # Open root spans outside calls, which a call may still adopt (held weakly).
        self._roots: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._providers: weakref.WeakSet[Any] = weakref.WeakSet()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        call_id = span.attributes.get("call_id")  # set by its creator (callwatch's own spans)
        if not isinstance(call_id, str):
            parent = span.parent
            call_id = self._calls.get(parent.span_id) if parent is not None else None
            call_id = call_id or get_call_id()
            if call_id is None:
                if parent is None:
                    with self._lock:
                        self._roots[span.context.span_id] = span
                return
            call_id = shown_call_id(call_id)
            span.set_attribute("call_id", call_id)
        self.remember(span.context.span_id, call_id)

    def on_end(self, span: Any) -> None:
        span_id = span.context.span_id
        if span_id in self._calls or span_id in self._roots:  # others take no lock
            with self._lock:
                self._calls.pop(span_id, None)
                self._roots.pop(span_id, None)

    def remember(self, span_id: int, call_id: str) -> None:
        with self._lock:
            calls = self._calls
            calls.setdefault(span_id, call_id)
            while len(calls) > MAX_LIVE:
                del calls[next(iter(calls))]

    def adopt(self, span_id: int, call_id: str) -> None:
        with self._lock:
            root = self._roots.pop(span_id, None)
        if root is not None:
            root.set_attribute("call_id", call_id)
        self.remember(span_id, call_id)

    def add_to(self, provider: Any) -> None:
        with self._lock:
            if provider in self._providers:
                return
            self._providers.add(provider)
        provider.add_span_processor(self)


_STAMPER = _CallStamper()


def join(provider: Any) -> bool:
    """Stamp the call id on the spans ``provider`` starts (an SDK provider; once each).

    ``False`` for a provider that takes no span processors (the API's stand-in:
    nothing is recorded then, so there is nothing to join).
    """
    if not callable(getattr(provider, "add_span_processor", None)):
        return False
    _STAMPER.add_to(provider)
    return True


def adopt(span_context: Any, call_id: str) -> None:
    """The span of ``span_context`` (a framework's conversation span, opened before the call
    was known) and the spans started below it belong to ``call_id``."""
    if span_context is not None and span_context.is_valid:
        _STAMPER.adopt(span_context.span_id, shown_call_id(call_id))
