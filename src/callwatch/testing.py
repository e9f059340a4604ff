"""Helpers for users' tests: assert on log records without touching files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from callwatch._logging import pipeline as _pipeline

__all__ = ["capture_logs"]


@contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """Collect the records logged inside the block, after processors (so redacted).

    While capturing, records go to the list instead of the files and console.
    """
    pipeline = _pipeline.get()
    records: list[dict[str, Any]] = []
    previous = pipeline.capture
    pipeline.capture = records
    try:
        yield records
    finally:
        pipeline.capture = previous
