"""Totals: one worker's (or the fleet's) numbers as plain values, and the guide's metrics dict.

Counters and histograms are held by metric name and label value, as the spec
table (``specs.py``) names them, so exposition, shared files and read-back all
walk the same structure. Totals add up: the numbers of several workers are
summed before anything is derived from them (averages, rates, percentiles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callwatch._metrics.histogram import RESPONSE_EDGES_MS, Histogram

__all__ = ["RECENT_ERRORS", "USAGE_KEYS", "Totals", "Window", "to_metrics"]

RECENT_ERRORS = 50
USAGE_KEYS: tuple[str, ...] = (
    "llm_prompt_tokens", "llm_completion_tokens", "tts_characters", "stt_audio_seconds",
    "cost_usd",
)


@dataclass
class Window:
    """Calls started, succeeded and failed within a recent window."""

    started: int = 0
    succeeded: int = 0
    failed: int = 0


@dataclass
class Totals:
    """Cumulative counters and histograms of one or more workers, plus the recent windows."""

    counters: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> label -> n
    hists: dict[str, dict[str, Histogram]] = field(default_factory=dict)  # name -> label -> h
    process: dict[str, float] = field(default_factory=dict)  # per-process gauges, summed
    active: int = 0
    minute: Window = field(default_factory=Window)
    recent: Window = field(default_factory=Window)  # the error-rate window
    # Response times of the error-rate window: what "how slow are we now" means.
    recent_response: Histogram = field(default_factory=lambda: Histogram(RESPONSE_EDGES_MS))
    recent_errors: list[dict[str, Any]] = field(default_factory=list)  # oldest first

    def count(self, name: str, label: str = "") -> int:
        return int(self.counters.get(name, {}).get(label, 0))

    def add_count(self, name: str, label: str, value: float) -> None:
        by_label = self.counters.setdefault(name, {})
        by_label[label] = by_label.get(label, 0) + value

    def hist(self, name: str, bounds: tuple[float, ...], label: str = "") -> Histogram:
        """The histogram of ``name``/``label``, created empty when absent."""
        by_label = self.hists.setdefault(name, {})
        found = by_label.get(label)
        if found is None:
            found = by_label[label] = Histogram(bounds)
        return found

    @property
    def started(self) -> int:
        return self.count("calls_started")

    @property
    def succeeded(self) -> int:
        return self.count("calls_ended", "success")

    @property
    def failed(self) -> int:
        return self.count("calls_ended", "failure")

    def add_errors(self, errors: list[dict[str, Any]]) -> None:
        self.recent_errors = sorted(
            self.recent_errors + errors, key=lambda e: str(e.get("timestamp", ""))
        )[-RECENT_ERRORS:]


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
    duration = totals.hists.get("call_duration_seconds", {}).get("") or Histogram(())
    response = totals.hists.get("response_time_seconds", {}).get("") or Histogram(())
    errors = totals.counters.get("errors", {})
    failures = totals.counters.get("operation_failures", {})
    return {
        "calls": {
            "total_calls": totals.started,
            "active_calls": totals.active,
            "successful_calls": totals.succeeded,
            "failed_calls": totals.failed,
            "abandoned_calls": totals.count("abandoned_calls"),
            "average_duration_sec": round(duration.mean(), 3),
            "average_response_time_ms": round(response.mean(), 2),
            "calls_per_minute": float(totals.minute.started),
            "error_rate": round(error_rate, 2),
            "window_calls": ended_recently,
            "response_time_ms": totals.recent_response.percentiles(),
            "duration_sec": duration.percentiles(digits=3),
        },
        "system": dict(system),
        "errors": {
            "errors_by_type": {k: int(v) for k, v in errors.items()},
            "total_errors": int(sum(errors.values())),
            "recent_errors": list(reversed(totals.recent_errors)),
        },
        "performance": {
            name: {
                "count": stats.count,
                "failures": int(failures.get(name, 0)),
                "avg_ms": round(stats.mean(), 2),
                "p50_ms": round(stats.quantile(0.5), 2),
                "p95_ms": round(stats.quantile(0.95), 2),
                "p99_ms": round(stats.quantile(0.99), 2),
                "max_ms": round(stats.max, 2),
            }
            for name, stats in sorted(totals.hists.get("operation_duration_seconds", {}).items())
        },
        "logging": {
            "dropped_records": totals.count("log_records_dropped"),
            "internal_errors": totals.count("log_internal_errors"),
            "otlp_dropped": totals.count("otlp_dropped"),
        },
        "usage": _usage({key: totals.counters.get(key, {}).get("", 0.0) for key in USAGE_KEYS}),
        "timestamp": timestamp,
    }
