from __future__ import annotations

from collections.abc import Iterator

import pytest

from callwatch._metrics import operations
from callwatch._metrics.labels import MAX_LABEL_VALUES, OTHER


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    operations.reset()
    yield
    operations.reset()


def test_observe_counts_times_and_failures_per_operation() -> None:
    operations.observe("llm", 100.0)
    operations.observe("llm", 300.0, success=False)
    operations.observe("tts", 50.0)
    stats = operations.snapshot()
    assert stats["llm"].count == 2 and stats["llm"].failures == 1
    assert stats["llm"].max == 300.0 and stats["llm"].mean() == 200.0
    assert stats["tts"].count == 1


def test_invalid_durations_are_not_timed_but_failures_still_count() -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        operations.observe("stt", bad, success=False)
    stats = operations.snapshot()["stt"]
    assert stats.count == 0 and stats.failures == 3


def test_distinct_names_are_capped_with_an_overflow_label() -> None:
    for i in range(MAX_LABEL_VALUES + 200):
        operations.observe(f"op-{i}", 1.0)
    stats = operations.snapshot()
    assert len(stats) == MAX_LABEL_VALUES + 1
    assert stats[OTHER].count == 200
    assert len(operations._by_name) <= MAX_LABEL_VALUES  # overflow names are not remembered
