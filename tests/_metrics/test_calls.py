from __future__ import annotations

import time

from callwatch._metrics.calls import RECENTLY_ENDED, Anomaly, CallStats


def _calls() -> tuple[CallStats, list[str]]:
    calls, seen = CallStats(), []
    calls.on_anomaly = lambda kind, call_id: seen.append(kind)
    return calls, seen


def test_start_then_end_counts_one_successful_call() -> None:
    calls, seen = _calls()
    calls.start("a")
    assert calls.active == 1
    calls.end("a", 12.0, True)
    assert (calls.started, calls.succeeded, calls.failed, calls.active) == (1, 1, 0, 0)
    assert calls.duration.count == 1 and calls.duration.sum == 12.0 and seen == []


def test_second_start_of_a_live_call_is_ignored() -> None:
    calls, seen = _calls()
    calls.start("a")
    calls.start("a")
    assert seen == [Anomaly.DOUBLE_START]
    assert calls.started == 1 and calls.active == 1


def test_second_end_is_ignored() -> None:
    calls, seen = _calls()
    calls.start("a")
    calls.end("a", 1.0, True)
    calls.end("a", 1.0, False)
    assert seen == [Anomaly.DOUBLE_END]
    assert (calls.started, calls.succeeded, calls.failed) == (1, 1, 0)


def test_end_without_start_counts_as_a_call() -> None:
    calls, seen = _calls()
    calls.end("ghost", 3.0, False)
    assert seen == [Anomaly.END_WITHOUT_START]
    assert (calls.started, calls.failed, calls.duration.count) == (1, 1, 1)


def test_invalid_duration_is_replaced_by_the_measured_one() -> None:
    calls, seen = _calls()
    calls.start("a")
    time.sleep(0.01)
    calls.end("a", -5.0, True)
    assert seen == [Anomaly.INVALID_DURATION]
    assert 0.005 < calls.duration.sum < 5.0


def test_invalid_duration_without_start_is_counted_but_not_timed() -> None:
    calls, seen = _calls()
    calls.end("b", float("nan"), True)
    calls.end("c", "not a number", True)  # type: ignore[arg-type]
    assert seen == [Anomaly.END_WITHOUT_START, Anomaly.INVALID_DURATION] * 2
    assert calls.succeeded == 2 and calls.duration.count == 0


def test_numbers_given_as_int_or_str_are_accepted() -> None:
    calls, seen = _calls()
    calls.start("a")
    calls.end("a", 7, True)
    calls.response_time("250")  # type: ignore[arg-type]
    assert calls.duration.sum == 7.0 and calls.response.sum == 250.0 and seen == []


def test_reaper_fails_calls_older_than_the_maximum_age_only() -> None:
    calls, seen = _calls()
    calls.start("old")
    time.sleep(0.05)
    calls.start("young")
    reaped = calls.reap(0.03)
    assert [call_id for call_id, _ in reaped] == ["old"]
    assert calls.active == 1 and calls.failed == 1 and calls.anomalies[Anomaly.REAPED] == 1
    calls.end("old", 1.0, True)  # a late end is not a new call
    assert seen == [Anomaly.DOUBLE_END] and calls.started == 2


def test_memory_of_ended_calls_is_bounded() -> None:
    calls, _ = _calls()
    for i in range(RECENTLY_ENDED * 3):
        calls.start(i)
        calls.end(i, 1.0, True)
    assert len(calls._ended) == RECENTLY_ENDED and calls.active == 0
