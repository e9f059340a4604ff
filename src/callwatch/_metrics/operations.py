"""Per-operation timings from ``perf_timer``: the cheapest write in callwatch.

``observe`` runs inside every timed block, so it takes no lock and touches only
a dict lookup and one histogram. Under CPython's GIL the integer and float
updates it makes are not interleaved by other threads in practice; the
Prometheus export reads these same objects at scrape time, so nothing else is
written per call.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import cast

from callwatch._metrics.histogram import OPERATION_EDGES_MS, Histogram
from callwatch._metrics.labels import OTHER, clean_label

__all__ = ["OperationStats", "observe", "reset", "snapshot"]

_INF = float("inf")


class OperationStats(Histogram):
    """Durations of one operation in milliseconds, plus how many of them failed."""

    __slots__ = ("failures",)

    def __init__(self) -> None:
        super().__init__(OPERATION_EDGES_MS)
        self.failures = 0

    def copy(self) -> OperationStats:
        other = cast(OperationStats, super().copy())
        other.failures = self.failures
        return other

    def add(self, other: Histogram) -> None:
        super().add(other)
        if isinstance(other, OperationStats):
            self.failures += other.failures


# operation name as passed -> stats; several names may share one capped label.
_by_name: dict[str, OperationStats] = {}
_by_label: dict[str, OperationStats] = {}
_lock = threading.Lock()


def observe(operation: str, duration_ms: float, success: bool = True) -> None:
    """Record one timed block. Negative, NaN and infinite durations are counted but not timed."""
    stats = _by_name.get(operation)
    if stats is None:
        stats = _register(operation)
    if 0.0 <= duration_ms < _INF:
        # Histogram.observe inlined: this runs inside every timed block.
        stats.counts[bisect_left(stats.bounds, duration_ms)] += 1
        stats.sum += duration_ms
        stats.count += 1
        if duration_ms > stats.max:  # noqa: PLR1730  (cheaper than max())
            stats.max = duration_ms
    if not success:
        stats.failures += 1


def _register(operation: str) -> OperationStats:
    with _lock:
        label = clean_label(operation, len(_by_label))
        stats = _by_label.get(label)
        if stats is None:
            stats = _by_label[label] = OperationStats()
        if label != OTHER:  # overflow names are not remembered: memory stays bounded
            _by_name[operation] = stats
        return stats


def snapshot() -> dict[str, OperationStats]:
    """A copy of every operation's stats, keyed by label."""
    with _lock:
        items = list(_by_label.items())
    return {label: stats.copy() for label, stats in items}


def reset() -> None:
    """Forget every operation (tests; a forked worker starting afresh)."""
    with _lock:
        _by_name.clear()
        _by_label.clear()
