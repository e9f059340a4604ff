"""Errors by type and the most recent ones, redacted when recorded."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timezone
from typing import Any

from callwatch._logging.redact import redact_text, redact_value
from callwatch._metrics.labels import OTHER, clean_label

__all__ = ["RECENT_ERRORS", "ErrorStats", "safe_context"]

RECENT_ERRORS = 50
MAX_MESSAGE_CHARS = 1000
MAX_CONTEXT_KEYS = 20
MAX_CONTEXT_VALUE_CHARS = 200


class ErrorStats:
    """Counts per (capped) error type, a total, and a bounded newest-last list of recent errors."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change, so publishers know when to rewrite
        self.reset()

    def reset(self) -> None:
        """Forget every error, in place."""
        self.by_type: dict[str, int] = {}
        self._labels: dict[str, str] = {}
        self.total = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self.version += 1

    def record(
        self, error_type: str, message: str, context: dict[str, Any] | None, call_id: str | None
    ) -> None:
        entry = {
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "error_type": str(error_type)[:200],
            "message": redact_text(str(message)[:MAX_MESSAGE_CHARS]),
            "context": safe_context(context),
            "call_id": call_id,
        }
        with self._lock:
            label = self._labels.get(error_type)
            if label is None:
                label = clean_label(error_type, len(self._labels))
                if label != OTHER:
                    self._labels[error_type] = label
            self.by_type[label] = self.by_type.get(label, 0) + 1
            self.total += 1
            self.recent.append(entry)
            self.version += 1

    def read(self) -> tuple[dict[str, int], int, list[dict[str, Any]]]:
        """(errors by type, total, recent oldest first)."""
        with self._lock:
            return dict(self.by_type), self.total, list(self.recent)


def safe_context(context: dict[str, Any] | None) -> dict[str, Any]:
    """A JSON-safe, redacted, bounded copy of an error's context."""
    if not context:
        return {}
    safe: dict[str, Any] = {}
    for key, value in list(context.items())[:MAX_CONTEXT_KEYS]:
        name = str(key)[:100]
        if value is None or isinstance(value, (bool, int, float)):
            plain: Any = value
        elif isinstance(value, str):
            plain = value[:MAX_CONTEXT_VALUE_CHARS]
        else:
            plain = repr(value)[:MAX_CONTEXT_VALUE_CHARS]
        safe[name] = redact_value(name, plain)
    return safe
