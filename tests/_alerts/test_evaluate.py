"""Judging a metrics dict: recent-window error rate, p95, minimum calls, the guide's fallbacks."""

from __future__ import annotations

from callwatch._alerts.evaluate import INVALID, judge, title_for
from callwatch._alerts.thresholds import DEFAULT_THRESHOLDS


def values(metrics: dict, min_calls: int = 10, table: dict | None = None) -> dict:
    return {key: value for key, value, _ in judge(metrics, table or DEFAULT_THRESHOLDS, min_calls)}


def severities(metrics: dict, table: dict | None = None) -> dict:
    return {key: severity for key, _, severity in judge(metrics, table or DEFAULT_THRESHOLDS, 10)}


GUIDE = {
    "calls": {
        "total_calls": 1250,
        "active_calls": 5,
        "successful_calls": 1200,
        "failed_calls": 50,
        "average_duration_sec": 45.2,
        "average_response_time_ms": 850.5,
        "calls_per_minute": 12.5,
    },
    "system": {"cpu_percent": 35.2, "memory_percent": 62.5, "disk_percent": 45.0},
}


def test_the_guides_fields_alone_are_enough() -> None:
    assert values(GUIDE) == {
        "cpu_percent": 35.2,
        "memory_percent": 62.5,
        "disk_percent": 45.0,
        "error_rate": 4.0,  # 50 / 1250, the lifetime rate as a fallback
        "active_calls": 5.0,
        "response_time_ms": 850.5,
    }
    assert set(severities(GUIDE).values()) == {None}


def test_recent_window_error_rate_and_p95_win_over_lifetime_and_average() -> None:
    calls = {**GUIDE["calls"], "error_rate": 0.0, "window_calls": 40, "response_time_ms": {"p50": 700, "p95": 6100.0, "p99": 9000}}
    judged = values({**GUIDE, "calls": calls})
    assert judged["error_rate"] == 0.0
    assert judged["response_time_ms"] == 6100.0
    assert severities({**GUIDE, "calls": calls})["response_time_ms"] == "warning"


def test_too_few_calls_in_the_window_is_judged_clear() -> None:
    calls = {**GUIDE["calls"], "error_rate": 50.0, "window_calls": 2}
    assert values({**GUIDE, "calls": calls})["error_rate"] is None
    fresh = {"calls": {"total_calls": 2, "failed_calls": 1}}
    assert values(fresh)["error_rate"] is None
    assert values(fresh, min_calls=1)["error_rate"] == 50.0


def test_absent_metrics_are_left_out_not_zero() -> None:
    assert values({"system": {"cpu_percent": 99}}) == {"cpu_percent": 99}
    assert values({"calls": "nonsense", "system": None}) == {}


def test_p95_without_samples_falls_back_to_the_average() -> None:
    calls = {**GUIDE["calls"], "response_time_ms": {"p95": None}}
    assert values({**GUIDE, "calls": calls})["response_time_ms"] == 850.5


def test_booleans_are_not_numbers_and_nan_is_no_data() -> None:
    judged = values({"system": {"cpu_percent": True, "memory_percent": float("nan")}})
    assert judged == {"memory_percent": None}


def test_user_added_thresholds_read_any_numeric_field() -> None:
    table = {"calls_per_minute": {"warning": 10}, "uptime": {"warning": 1}}
    assert list(judge(GUIDE, table, 10)) == [("calls_per_minute", 12.5, "warning")]
    assert title_for("calls_per_minute") == "High calls per minute"


def test_fires_at_the_threshold_not_below() -> None:
    table = {"cpu_percent": {"warning": 80, "critical": 95}}
    def at(value: float) -> str | None:
        return severities({"system": {"cpu_percent": value}}, table)["cpu_percent"]
    assert at(79.99) is None
    assert at(80) == "warning"
    assert at(94.9) == "warning"
    assert at(95) == "critical"
    assert severities({"system": {"cpu_percent": 50}}, {"cpu_percent": {"critical": 10}})["cpu_percent"] == "critical"


def test_a_threshold_that_is_not_a_number_is_flagged() -> None:
    assert severities({"system": {"cpu_percent": 50}}, {"cpu_percent": {"warning": "80"}})["cpu_percent"] == INVALID
