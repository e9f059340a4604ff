"""Totals: one worker's (or all workers') numbers as plain values, and the guide's metrics dict.

Totals add up, so the numbers of several workers are summed into one before
anything is derived from them (averages, rates, percentiles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callwatch._metrics.calls import Window
from callwatch._metrics.errors import RECENT_ERRORS
from callwatch._metrics.histogram import CALL_DURATION_EDGES_SEC, RESPONSE_EDGES_MS, Histogram
from callwatch._metrics.operations import OperationStats
from callwatch._metrics.usage import USAGE_KEYS

__all__ = ["Totals", "to_metrics"]


@dataclass
class Totals:
    """Cumulative counts and histograms (plus the two recent windows) of one or more workers."""

    started: int = 0
    succeeded: int = 0
    failed: int = 0
    active: int = 0
    duration: Histogram = field(default_factory=lambda: Histogram(CALL_DURATION_EDGES_SEC))
    response: Histogram = field(default_factory=lambda: Histogram(RESPONSE_EDGES_MS))
    # Response times of the error-rate window: what "how slow are we now" means.
    recent_response: Histogram = field(default_factory=lambda: Histogram(RESPONSE_EDGES_MS))
    minute: Window = field(default_factory=Window)
    recent: Window = field(default_factory=Window)  # the error-rate window
    anomalies: dict[str, int] = field(default_factory=dict)
    operations: dict[str, OperationStats] = field(default_factory=dict)
    errors_by_type: dict[str, int] = field(default_factory=dict)
    total_errors: int = 0
    recent_errors: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    dropped_records: int = 0
    otlp_dropped: int = 0  # records and spans the OTLP export could not send
    usage: dict[str, float] = field(default_factory=lambda: dict.fromkeys(USAGE_KEYS, 0.0))

    def add(self, other: Totals) -> None:
        self.started += other.started
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.active += other.active
        self.duration.add(other.duration)
        self.response.add(other.response)
        self.recent_response.add(other.recent_response)
        self.minute.add(other.minute)
        self.recent.add(other.recent)
        _add_counts(self.anomalies, other.anomalies)
        _add_counts(self.errors_by_type, other.errors_by_type)
        for name, stats in other.operations.items():
            mine = self.operations.get(name)
            if mine is None:
                self.operations[name] = stats.copy()
            else:
                mine.add(stats)
        self.total_errors += other.total_errors
        self.recent_errors = sorted(
            self.recent_errors + other.recent_errors, key=lambda e: str(e.get("timestamp", ""))
        )[-RECENT_ERRORS:]
        self.dropped_records += other.dropped_records
        self.otlp_dropped += other.otlp_dropped
        for key, amount in other.usage.items():
            self.usage[key] = self.usage.get(key, 0.0) + amount


def _add_counts(into: dict[str, int], other: dict[str, int]) -> None:
    for key, value in other.items():
        into[key] = into.get(key, 0) + value


def _usage(usage: dict[str, float]) -> dict[str, float | int]:
    """Token and character counts as integers, seconds and dollars as decimals."""
    out: dict[str, float | int] = {}
    for key in USAGE_KEYS:
        value = usage.get(key, 0.0)
        out[key] = round(value, 6) if key in ("stt_audio_seconds", "cost_usd") else int(value)
    return out


def to_metrics(totals: Totals, system: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """The guide's ``get_metrics()`` shape, with percentiles and the recent windows."""
    ended_recently = totals.recent.succeeded + totals.recent.failed
    error_rate = 100.0 * totals.recent.failed / ended_recently if ended_recently else 0.0
    return {
        "calls": {
            "total_calls": totals.started,
            "active_calls": totals.active,
            "successful_calls": totals.succeeded,
            "failed_calls": totals.failed,
            "average_duration_sec": round(totals.duration.mean(), 3),
            "average_response_time_ms": round(totals.response.mean(), 2),
            "calls_per_minute": float(totals.minute.started),
            "error_rate": round(error_rate, 2),
            "window_calls": ended_recently,
            "response_time_ms": totals.recent_response.percentiles(),
            "duration_sec": totals.duration.percentiles(digits=3),
        },
        "system": dict(system),
        "errors": {
            "errors_by_type": dict(totals.errors_by_type),
            "total_errors": totals.total_errors,
            "recent_errors": list(reversed(totals.recent_errors)),
        },
        "performance": {
            name: {
                "count": stats.count,
                "failures": stats.failures,
                "avg_ms": round(stats.mean(), 2),
                "p50_ms": round(stats.quantile(0.5), 2),
                "p95_ms": round(stats.quantile(0.95), 2),
                "p99_ms": round(stats.quantile(0.99), 2),
                "max_ms": round(stats.max, 2),
            }
            for name, stats in sorted(totals.operations.items())
        },
        "logging": {"dropped_records": totals.dropped_records,
                    "otlp_dropped": totals.otlp_dropped},
        "usage": _usage(totals.usage),
        "timestamp": timestamp,
    }
