"""The alert thresholds: the guide's table, a plain dict of dicts users edit at run time.

Health (capacity) and the Prometheus rule export read the same dict, so a
change made as the guide shows (``alert_manager.thresholds["cpu_percent"] = {...}``)
applies everywhere at once.
"""

from __future__ import annotations

__all__ = ["DEFAULT_THRESHOLDS", "thresholds"]

DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "cpu_percent": {"warning": 80, "critical": 95},
    "memory_percent": {"warning": 85, "critical": 95},
    "disk_percent": {"warning": 85, "critical": 95},
    "error_rate": {"warning": 5, "critical": 10},
    "active_calls": {"warning": 80, "critical": 100},
    "response_time_ms": {"warning": 5000, "critical": 10000},
}

# The live dict: alert_manager.thresholds is this very object.
thresholds: dict[str, dict[str, float]] = {k: dict(v) for k, v in DEFAULT_THRESHOLDS.items()}
