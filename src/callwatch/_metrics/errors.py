"""Errors by type and the most recent ones, redacted and bounded when recorded.

Nothing given to :meth:`ErrorStats.record` can make it raise: every field is
turned into bounded text first (an object whose ``__str__`` raises included),
then redacted (with PII too when ``LOG_REDACT_PII`` is on).
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timezone
from typing import Any

from callwatch._logging.redact import redact_id, redact_text, redact_value
from callwatch._metrics.labels import OTHER, clean_label, safe_text
from callwatch._metrics.snapshot import RECENT_ERRORS
from callwatch._metrics.specs import key
from callwatch._metrics.store import Durable

__all__ = ["RECENT_ERRORS", "ErrorStats", "safe_context"]

MAX_MESSAGE_CHARS = 1000
MAX_CONTEXT_KEYS = 20
MAX_CONTEXT_VALUE_CHARS = 200
MAX_TYPE_CHARS = 200
MAX_CALL_ID_CHARS = 200


class ErrorStats:
    """Counts per (capped) error type, a total, and a bounded newest-last list of recent errors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change, so publishers know when to rewrite
        self.durable: Durable | None = None  # this worker's shared file, in a fleet
        self.reset()

    def reset(self) -> None:
        """Forget every error, in place."""
        self.by_type: dict[str, int] = {}
        self._labels: dict[str, str] = {}
        self.total = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self.version += 1

    def record(
        self, error_type: object, message: object, context: object, call_id: object,
        *, pii: bool = False,
    ) -> None:
        type_text = safe_text(error_type, MAX_TYPE_CHARS)
        entry = {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "error_type": redact_id(type_text),
            "message": redact_text(safe_text(message, MAX_MESSAGE_CHARS), pii=pii),
            "context": safe_context(context, pii=pii),
            "call_id": None if call_id is None
            else redact_id(safe_text(call_id, MAX_CALL_ID_CHARS), pii=pii),
        }
        with self._lock:
            label = self._labels.get(type_text)
            if label is None:
                label = clean_label(type_text, len(self._labels))
                if label != OTHER:
                    self._labels[type_text] = label
            self.by_type[label] = count = self.by_type.get(label, 0) + 1
            self.total += 1
            self.recent.append(entry)
            self.version += 1
            durable = self.durable
            if durable is not None:
                with durable.lock:
                    durable.write(key("errors", label), count)

    def read(self) -> tuple[dict[str, int], int, list[dict[str, Any]]]:
        """(errors by type, total, recent oldest first)."""
        with self._lock:
            return dict(self.by_type), self.total, list(self.recent)


def safe_context(context: object, *, pii: bool = False) -> dict[str, Any]:
    """A JSON-safe, redacted, bounded copy of an error's context (a dict; else nothing)."""
    if not context or not isinstance(context, dict):
        return {}
    safe: dict[str, Any] = {}
    for name_, value in list(context.items())[:MAX_CONTEXT_KEYS]:
        name = safe_text(name_, 100)
        if value is None or isinstance(value, (bool, int, float)):
            plain: Any = value
        else:
            plain = safe_text(value, MAX_CONTEXT_VALUE_CHARS) if isinstance(value, str) \
                else _safe_repr(value)
        safe[name] = redact_value(name, plain, pii=pii)
    return safe


def _safe_repr(value: object) -> str:
    try:
        return repr(value)[:MAX_CONTEXT_VALUE_CHARS]
    except Exception:  # an object whose __repr__ raises
        return f"<{type(value).__name__}>"
