"""Per-operation timings from ``perf_timer``: the cheapest write in callwatch.

``observe`` runs inside every timed block, so it takes no lock and touches only
a dict lookup and one histogram. Under CPython's GIL the integer and float
updates it makes are not interleaved by other threads in practice; the
Prometheus export reads these same objects at scrape time. In a fleet, the
changed values are also written to this worker's shared file, under its lock.
Names are remembered up to :data:`MAX_NAMES`; past that, a new name is looked
up under the lock each time, so no stream of distinct names grows memory.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from typing import cast

from callwatch._metrics.histogram import OPERATION_EDGES_MS, Histogram
from callwatch._metrics.labels import OTHER, clean_label
from callwatch._metrics.specs import key
from callwatch._metrics.store import Durable

__all__ = ["MAX_NAMES", "OperationStats", "observe", "reset", "set_durable", "snapshot"]

_INF = float("inf")
MAX_NAMES = 1000
_DURATION = "operation_duration_seconds"


class OperationStats(Histogram):
    """Durations of one operation in milliseconds, plus how many of them failed."""

    __slots__ = ("failures", "keys")

    def __init__(self, label: str = "") -> None:
        super().__init__(OPERATION_EDGES_MS)
        self.failures = 0
        # Shared-file keys: buckets, sum, max, failures.
        self.keys = ([key(_DURATION, label, f"b{i}") for i in range(len(self.counts))],
                     key(_DURATION, label, "sum"), key(_DURATION, label, "max"),
                     key("operation_failures", label))

    def copy(self) -> OperationStats:
        other = cast(OperationStats, super().copy())
        other.failures = self.failures
        other.keys = self.keys
        return other

    def add(self, other: Histogram) -> None:
        super().add(other)
        if isinstance(other, OperationStats):
            self.failures += other.failures


# operation name as passed -> stats; several names may share one capped label.
_by_name: dict[str, OperationStats] = {}
_by_label: dict[str, OperationStats] = {}
_lock = threading.Lock()
_durable: Durable | None = None


def set_durable(durable: Durable | None) -> None:
    """Write every observation to ``durable`` too (a fleet worker), or stop (None)."""
    global _durable
    _durable = durable


def observe(operation: str, duration_ms: float, success: bool = True) -> None:
    """Record one timed block. Negative, NaN and infinite durations are counted but not timed."""
    try:
        stats = _by_name.get(operation)
    except TypeError:  # an unhashable name
        stats = None
    if stats is None:
        stats = _register(operation)
    durable = _durable
    if durable is None:
        _count(stats, duration_ms, success, None)
    else:
        with durable.lock:
            _count(stats, duration_ms, success, durable)


def _count(stats: OperationStats, duration_ms: float, success: bool,
           durable: Durable | None) -> None:
    if 0.0 <= duration_ms < _INF:
        # Histogram.observe inlined: this runs inside every timed block.
        index = bisect_left(stats.bounds, duration_ms)
        stats.counts[index] += 1
        stats.sum += duration_ms
        stats.count += 1
        if duration_ms > stats.max:
            stats.max = duration_ms
            if durable is not None:
                durable.write(stats.keys[2], duration_ms)
        if durable is not None:
            durable.write(stats.keys[0][index], stats.counts[index])
            durable.write(stats.keys[1], stats.sum)
    if not success:
        stats.failures += 1
        if durable is not None:
            durable.write(stats.keys[3], stats.failures)


def _register(operation: object) -> OperationStats:
    with _lock:
        label = clean_label(operation, len(_by_label))
        stats = _by_label.get(label)
        if stats is None:
            stats = _by_label[label] = OperationStats(label)
        # Overflow names and names past MAX_NAMES are not remembered: memory stays bounded.
        if label != OTHER and len(_by_name) < MAX_NAMES and type(operation) is str:
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
