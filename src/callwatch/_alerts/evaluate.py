"""Reading a metrics dict against the thresholds: what ``check_and_alert`` judges.

The dict is the shape ``get_metrics()`` returns, or a user's own dict with only
the guide's fields. The recent-window error rate and the p95 response time are
used when present, because a lifetime error rate never recovers and an average
hides the slow turns callers hang up on.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["INVALID", "MISSING", "Reading", "judge", "title_for"]

INVALID = "invalid"


_EMPTY: Mapping[str, Any] = {}


class _Missing(enum.Enum):
    MISSING = enum.auto()


# A threshold whose metric is absent from the dict: its alert is left as it is.
MISSING = _Missing.MISSING

# None means "judged and below every threshold" (e.g. too few calls to judge
# an error rate): a firing alert on it resolves, as the exported rule would.
Reading = float | None | _Missing

_TITLES = {
    "cpu_percent": "High CPU usage",
    "memory_percent": "High memory usage",
    "disk_percent": "High disk usage",
    "error_rate": "High error rate",
    "active_calls": "Too many active calls",
    "response_time_ms": "Slow responses",
}


def title_for(key: str) -> str:
    return _TITLES.get(key) or f"High {key.replace('_', ' ')}"


def judge(
    metrics: Mapping[str, Any], table: Mapping[str, Mapping[str, float]], min_calls: int
) -> list[tuple[str, float | None, str | None]]:
    """``(key, value, severity)`` for every threshold whose metric is in ``metrics``.

    The value is None when it was judged clear without one (too few calls, NaN);
    severity is ``INVALID`` when the threshold itself is not a number. One frame,
    one list: this runs after every call.
    """
    calls = _section(metrics, "calls")
    system = _section(metrics, "system")
    out: list[tuple[str, float | None, str | None]] = []
    for key in list(table):
        if key == "error_rate":
            value = _error_rate(calls, min_calls)
        elif key == "response_time_ms":
            value = _response_time(calls)
        else:
            raw = calls.get(key)
            if raw is None:
                raw = system.get(key)
                if raw is None:
                    raw = metrics.get(key)
            value = _number(raw)
        if value is MISSING:
            continue
        limits = table.get(key)
        if value is None or limits is None:
            out.append((key, None, None))
            continue
        try:
            critical = limits.get("critical")
            warning = limits.get("warning")
            if critical is not None and value >= critical:
                out.append((key, value, "critical"))
            elif warning is not None and value >= warning:
                out.append((key, value, "warning"))
            else:
                out.append((key, value, None))
        except (TypeError, AttributeError):
            out.append((key, value, INVALID))
    return out


def _section(metrics: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = metrics.get(name)
    if type(section) is dict or isinstance(section, Mapping):
        return section
    return _EMPTY


def _number(raw: object) -> Reading:
    kind = type(raw)
    if kind is float:
        return None if math.isnan(raw) else raw  # type: ignore[arg-type,return-value]
    if kind is int:
        return float(raw)  # type: ignore[arg-type]
    if raw is None or isinstance(raw, bool) or not isinstance(raw, int | float):
        return MISSING
    return None if math.isnan(raw) else float(raw)


def _error_rate(calls: Mapping[str, Any], min_calls: int) -> Reading:
    rate = _number(calls.get("error_rate"))
    if rate is not MISSING:
        window = _number(calls.get("window_calls"))
        if isinstance(window, float | int) and window < min_calls:
            return None
        return rate
    total = _number(calls.get("total_calls"))
    failed = _number(calls.get("failed_calls"))
    if total is MISSING or failed is MISSING:
        return MISSING
    if total is None or failed is None or total < min_calls or total <= 0:
        return None
    return failed / total * 100.0


def _response_time(calls: Mapping[str, Any]) -> Reading:
    percentiles = calls.get("response_time_ms")
    if type(percentiles) is dict or isinstance(percentiles, Mapping):
        p95 = _number(percentiles.get("p95"))
        if p95 is not MISSING:
            return p95
    return _number(calls.get("average_response_time_ms"))
