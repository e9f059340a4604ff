"""Caps on label values that come from user strings, so no input can explode the series.

A label is the value's text, cut to :data:`MAX_LABEL_CHARS` *before* it is
redacted (redaction then runs on a bounded string) and redacted before it
becomes a metric key, a Prometheus label or a field of ``get_metrics()``.
"""

from __future__ import annotations

from callwatch._logging.redact import redact_id

__all__ = ["MAX_LABEL_CHARS", "MAX_LABEL_VALUES", "OTHER", "clean_label", "safe_text"]

MAX_LABEL_VALUES = 50
MAX_LABEL_CHARS = 100
OTHER = "other"


def safe_text(value: object, limit: int) -> str:
    """``str(value)`` cut to ``limit`` characters; never raises (a failing ``__str__``)."""
    if type(value) is str:
        return value[:limit]
    try:
        return str(value)[:limit]
    except Exception:  # an object whose __str__ raises
        return f"<{type(value).__name__}>"[:limit]


def clean_label(value: object, known: int) -> str:
    """The label for ``value`` given ``known`` distinct labels already in use.

    Past :data:`MAX_LABEL_VALUES` every new value becomes ``"other"``; long
    values are cut, secrets masked, and an empty one is ``"unknown"``.
    """
    if known >= MAX_LABEL_VALUES:
        return OTHER
    text = redact_id(safe_text(value, MAX_LABEL_CHARS))
    return text or "unknown"
