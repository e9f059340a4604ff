"""A fixed-bucket histogram: constant memory, mergeable, percentiles with a known error bound.

Bucket ``i`` counts values ``<= bounds[i]`` and above the previous bound (the
Prometheus ``le`` convention); the last slot counts values above every bound.
A percentile is interpolated linearly inside the bucket that holds it (as
PromQL's ``histogram_quantile``) and clamped to the largest value seen, so its
error is at most the width of that one bucket.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

__all__ = [
    "CALL_DURATION_EDGES_SEC",
    "OPERATION_EDGES_MS",
    "RESPONSE_EDGES_MS",
    "Histogram",
]

# Voice budgets: a turn should answer within ~800 ms; callers hang up after a few seconds.
RESPONSE_EDGES_MS: tuple[float, ...] = tuple(float(b) for b in (
    50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 800, 900, 1000,
    1200, 1500, 2000, 2500, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000,
))
# One pipeline stage (STT, LLM, TTS, a tool call): milliseconds to tens of seconds.
OPERATION_EDGES_MS: tuple[float, ...] = tuple(float(b) for b in (
    5, 10, 25, 50, 75, 100, 150, 200, 300, 400, 500, 750,
    1000, 1500, 2000, 3000, 5000, 10000, 30000,
))
# Whole phone calls: seconds to an hour.
CALL_DURATION_EDGES_SEC: tuple[float, ...] = tuple(float(b) for b in (
    1, 5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1200, 1800, 2700, 3600,
))


class Histogram:
    """Counts per bucket plus sum, count and max; ``observe`` is lock-free and O(log buckets)."""

    __slots__ = ("bounds", "count", "counts", "max", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds: tuple[float, ...] = tuple(bounds)
        self.counts: list[int] = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0
        self.max = 0.0

    def observe(self, value: float) -> None:
        """Add one finite, non-negative value (callers validate)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1
        if value > self.max:  # noqa: PLR1730  (cheaper than max())
            self.max = value

    def copy(self) -> Histogram:
        other = object.__new__(type(self))
        other.bounds = self.bounds
        other.counts = list(self.counts)
        other.sum = self.sum
        other.count = self.count
        other.max = self.max
        return other

    def add(self, other: Histogram) -> None:
        """Merge another histogram with the same bounds (another worker's) into this one."""
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.sum += other.sum
        self.count += other.count
        self.max = max(self.max, other.max)

    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1): within one bucket width of the truth, never above the max seen."""
        if self.count == 0:
            return 0.0
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.counts):
            if n and seen + n >= rank:
                if i == len(self.bounds):  # above every bound: the max is the best estimate
                    return self.max
                lower = self.bounds[i - 1] if i else 0.0
                upper = self.bounds[i]
                estimate = lower + (upper - lower) * max(rank - seen, 0.0) / n
                return min(estimate, self.max)
            seen += n
        return self.max

    def percentiles(self, digits: int = 2) -> dict[str, float]:
        """``{"p50", "p95", "p99"}`` in the histogram's unit."""
        return {name: round(self.quantile(q), digits)
                for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))}
