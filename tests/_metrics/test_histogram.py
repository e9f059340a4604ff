from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from callwatch._metrics.histogram import RESPONSE_EDGES_MS, Histogram


def _width_at(bounds: tuple[float, ...], value: float) -> float:
    previous = 0.0
    for bound in bounds:
        if value <= bound:
            return bound - previous
        previous = bound
    return math.inf


@given(st.lists(st.floats(min_value=0, max_value=40_000), min_size=1, max_size=300),
       st.sampled_from([0.5, 0.95, 0.99]))
def test_quantile_is_within_one_bucket_of_the_exact_value(values: list[float], q: float) -> None:
    hist = Histogram(RESPONSE_EDGES_MS)
    for v in values:
        hist.observe(v)
    exact = sorted(values)[max(math.ceil(q * len(values)) - 1, 0)]
    estimate = hist.quantile(q)
    assert estimate <= max(values)
    assert abs(estimate - exact) <= _width_at(hist.bounds, exact) + 1e-9


def test_values_above_every_bound_report_the_max_seen() -> None:
    hist = Histogram((1, 2))
    for v in (0.5, 50.0, 70.0):
        hist.observe(v)
    assert hist.quantile(0.99) == 70.0


def test_empty_histogram_reports_zero() -> None:
    assert Histogram((1, 2)).percentiles() == {"p50": 0.0, "p95": 0.0, "p99": 0.0}


def test_add_merges_counts_sum_and_max() -> None:
    a, b = Histogram((1, 2)), Histogram((1, 2))
    a.observe(0.5)
    b.observe(1.5)
    b.observe(3.0)
    a.add(b)
    assert (a.counts, a.count, a.sum, a.max) == ([1, 1, 1], 3, 5.0, 3.0)
