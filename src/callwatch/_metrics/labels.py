"""Caps on label values that come from user strings, so no input can explode the series."""

from __future__ import annotations

__all__ = ["MAX_LABEL_CHARS", "MAX_LABEL_VALUES", "OTHER", "clean_label"]

MAX_LABEL_VALUES = 50
MAX_LABEL_CHARS = 100
OTHER = "other"


def clean_label(value: object, known: int) -> str:
    """The label for ``value`` given ``known`` distinct labels already in use.

    Past :data:`MAX_LABEL_VALUES` every new value becomes ``"other"``; long
    values are cut, and an empty one is ``"unknown"``.
    """
    if known >= MAX_LABEL_VALUES:
        return OTHER
    text = str(value)[:MAX_LABEL_CHARS]
    return text or "unknown"
