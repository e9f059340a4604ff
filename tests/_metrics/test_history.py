"""Recent windows: totals now less the totals of the row at the window's start."""

from __future__ import annotations

from pathlib import Path

from callwatch._metrics.history import History
from callwatch._metrics.snapshot import Totals
from callwatch._metrics.specs import BY_NAME

RESPONSE = BY_NAME["response_time_seconds"]


def _totals(started: int, ok: int, failed: int, slow: int = 0, fast: int = 0) -> Totals:
    totals = Totals()
    totals.counters = {"calls_started": {"": started},
                       "calls_ended": {"success": ok, "failure": failed}}
    hist = totals.hist(RESPONSE.name, RESPONSE.bounds)
    for value, n in ((4000.0, slow), (400.0, fast)):
        for _ in range(n):
            hist.observe(value)
    return totals


def test_a_run_younger_than_the_window_counts_everything() -> None:
    history = History(300, run_started=1000.0)
    totals = _totals(7, 5, 2)
    history.windows(1030.0, totals, (60.0, 300.0))
    assert (totals.minute.started, totals.recent.succeeded, totals.recent.failed) == (7, 5, 2)


def test_windows_count_only_calls_after_their_start() -> None:
    history = History(300, run_started=1000.0)
    history.record(1100, _totals(10, 8, 2))
    history.record(1340, _totals(40, 30, 5))
    totals = _totals(50, 38, 7)
    history.windows(1400.5, totals, (60.0, 300.0))
    assert (totals.minute.started, totals.minute.succeeded, totals.minute.failed) == (10, 8, 2)
    assert (totals.recent.started, totals.recent.succeeded, totals.recent.failed) == (40, 30, 5)


def test_recent_percentiles_forget_an_old_slow_episode() -> None:
    history = History(300, run_started=1000.0)
    history.record(1010, _totals(0, 0, 0, slow=100))
    totals = _totals(0, 0, 0, slow=100, fast=100)
    history.windows(1320.0, totals, (60.0, 300.0))
    assert totals.recent_response.count == 100
    assert totals.recent_response.quantile(0.95) < 800
    assert totals.hists[RESPONSE.name][""].quantile(0.95) > 800  # the lifetime one keeps it


def test_a_shared_ring_is_seen_by_every_worker_and_a_foreign_file_is_replaced(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ring"
    path.write_bytes(b"not a ring at all")
    writer = History(300, run_started=1000.0, path=path)
    writer.record(1100, _totals(10, 10, 0))
    reader = History(300, run_started=5000.0, path=path)  # joins: keeps the run's start
    assert reader.run_started == 1000.0 and reader.has(1100)
    totals = _totals(25, 25, 0)
    reader.windows(1160.0, totals, (60.0, 300.0))
    assert totals.minute.started == 15
