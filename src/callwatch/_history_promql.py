"""The history's points from a Prometheus that scrapes the fleet (``CALLWATCH_PROMETHEUS_URL``).

The same shape as the on-disk history, computed by PromQL over callwatch's own
metric names, so every host Prometheus scrapes is in it, for as long as it keeps
data. Rates are taken over at least two minutes, so a scrape interval up to 30 s
gives every point.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import httpx

from callwatch._history import error_rate, stamp

__all__ = ["PrometheusUnavailable", "history_from_prometheus"]

_TIMEOUT_SEC = 5.0


class PrometheusUnavailable(RuntimeError):
    """Prometheus did not answer, or answered an error (the URL is never part of the message)."""


def _queries(step: int) -> dict[str, str]:
    window = f"{max(step, 2)}m"
    per_step = 60 * step

    def quantile(q: float, by: str = "le") -> str:
        return (f"histogram_quantile({q}, sum by ({by}) "
                f"(rate(callwatch_response_time_seconds_bucket[{window}]))) * 1000")

    return {
        "calls": f"sum(rate(callwatch_calls_started_total[{window}])) * {per_step}",
        "ended": f"sum(rate(callwatch_calls_ended_total[{window}])) * {per_step}",
        "failed": (f'sum(rate(callwatch_calls_ended_total{{outcome="failure"}}[{window}]))'
                   f" * {per_step}"),
        "p50_ms": quantile(0.5),
        "p95_ms": quantile(0.95),
        "p99_ms": quantile(0.99),
        "active_calls": "sum(callwatch_active_calls)",
        "stages_p95_ms": ("histogram_quantile(0.95, sum by (le, operation) "
                          f"(rate(callwatch_operation_duration_seconds_bucket[{window}]))) * 1000"),
        "instances": (f"sum by (instance) (rate(callwatch_calls_started_total[{window}]))"
                      f" * {per_step}"),
    }


_LABELS = {"stages_p95_ms": "operation", "instances": "instance"}


async def history_from_prometheus(
    base_url: str, minutes: int, step: int, now: float | None = None
) -> list[dict[str, Any]]:
    """Points of ``step`` minutes over the last ``minutes`` minutes, oldest first."""
    end = round(time.time() if now is None else now)
    start = end - (minutes - 1) * 60
    params = {"start": start, "end": end, "step": 60 * step}
    url = base_url.rstrip("/") + "/api/v1/query_range"
    queries = _queries(step)
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT_SEC) as client:
            answers = await asyncio.gather(*(
                client.get(url, params={**params, "query": query}) for query in queries.values()
            ))
    except httpx.HTTPError as exc:
        raise PrometheusUnavailable(f"Prometheus did not answer ({type(exc).__name__})") from None
    points: dict[float, dict[str, Any]] = {}
    for name, answer in zip(queries, answers, strict=True):
        if answer.status_code != 200:
            raise PrometheusUnavailable(f"Prometheus answered {answer.status_code}")
        for series in answer.json().get("data", {}).get("result", []):
            label = series.get("metric", {}).get(_LABELS.get(name, ""), "")
            for at, raw in series.get("values", []):
                value = _number(raw)
                point = points.setdefault(float(at), {})
                if name in _LABELS:
                    if value is not None:
                        point.setdefault(name, {})[label] = value
                else:
                    point[name] = value
    return [_finish(at, points[at]) for at in sorted(points)]


def _number(raw: object) -> float | None:
    try:
        value = float(str(raw))
    except ValueError:
        return None
    return round(value, 2) if math.isfinite(value) else None


def _finish(at: float, point: dict[str, Any]) -> dict[str, Any]:
    ended, failed = point.get("ended") or 0.0, point.get("failed") or 0.0
    return {
        "t": stamp(at),
        "calls": point.get("calls") or 0.0,
        "ended": ended,
        "failed": failed,
        "error_rate": error_rate(failed, ended),
        "p50_ms": point.get("p50_ms"),
        "p95_ms": point.get("p95_ms"),
        "p99_ms": point.get("p99_ms"),
        "active_calls": point.get("active_calls"),
        "stages_p95_ms": point.get("stages_p95_ms", {}),
        "instances": point.get("instances", {}),
        "alerts": [],
        "failed_calls": [],
        "longest_calls": [],
    }
