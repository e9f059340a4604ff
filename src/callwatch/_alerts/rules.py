"""Prometheus alerting rules equivalent to the live thresholds, for fleets behind Alertmanager.

Each instance judges only itself; across a fleet, Prometheus evaluates these
rules over every instance's ``/monitoring/prometheus`` and Alertmanager groups
and deduplicates. Names, labels and comparisons (``>=``) match the in-process
alerts, so routes and inhibition rules written for one serve the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from callwatch._alerts.evaluate import title_for
from callwatch._alerts.model import alertname_for

__all__ = ["METRIC_EXPRESSIONS", "duration", "prometheus_rules"]

# Threshold key -> PromQL giving its value per instance, in the threshold's unit.
# {window} and {min_calls} come from the settings the in-process check uses.
METRIC_EXPRESSIONS: dict[str, str] = {
    "cpu_percent": "100 * max by (instance) (callwatch_system_cpu_usage_ratio)",
    "memory_percent": "100 * max by (instance) (callwatch_system_memory_usage_ratio)",
    "disk_percent": "100 * max by (instance) (callwatch_system_disk_usage_ratio)",
    "active_calls": "sum by (instance) (callwatch_active_calls)",
    "error_rate": (
        '100 * sum by (instance) (rate(callwatch_calls_ended_total{{outcome="failure"}}[{window}]))'
        " / sum by (instance) (rate(callwatch_calls_ended_total[{window}]))"
    ),
    "response_time_ms": (
        "1000 * histogram_quantile(0.95, sum by (instance, le)"
        " (rate(callwatch_response_time_seconds_bucket[{window}])))"
    ),
}
# Too few calls in the window to judge an error rate: the rule stays quiet, as the check does.
_MIN_CALLS_GUARD = (
    " and sum by (instance) (increase(callwatch_calls_ended_total[{window}])) >= {min_calls}"
)


def duration(seconds: float) -> str:
    """A Prometheus duration: ``300`` → ``5m``, ``90`` → ``90s``."""
    millis = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis >= size and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def _description(key: str, severity: str, limit: float) -> str:
    value = '{{ $value | printf "%.2f" }}'
    return f"{key} is {value} ({severity} threshold {limit:g})"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def prometheus_rules(
    thresholds: Mapping[str, Mapping[str, float]], window_sec: float, min_calls: int
) -> str:
    """The rule file: one rule per threshold key and severity, in the table's order."""
    window = duration(window_sec)
    lines = ["groups:", "  - name: callwatch", "    rules:"]
    skipped = []
    for key, limits in thresholds.items():
        template = METRIC_EXPRESSIONS.get(key)
        if template is None:
            skipped.append(key)
            continue
        value = template.format(window=window)
        hold = float(limits.get("for_sec", 0) or 0)
        # An explicit resolve hold is kept by Prometheus (>= 2.42) as keep_firing_for.
        keep = float(limits.get("resolve_sec", 0) or 0)
        for severity in ("warning", "critical"):
            limit = limits.get(severity)
            if limit is None:
                continue
            expr = f"{value} >= {limit:g}"
            if key == "error_rate":
                expr += _MIN_CALLS_GUARD.format(window=window, min_calls=min_calls)
            lines += [
                f"      - alert: {alertname_for('High ' + key)}",
                f"        expr: {_q(expr)}",
                *([f"        for: {duration(hold)}"] if hold > 0 else []),
                *([f"        keep_firing_for: {duration(keep)}"] if keep > 0 else []),
                "        labels:",
                f"          severity: {_q(severity)}",
                f"          metric: {_q(key)}",
                "        annotations:",
                f"          summary: {_q(title_for(key))}",
                f"          description: {_q(_description(key, severity, limit))}",
            ]
    if len(lines) == 3:
        lines[2] = "    rules: []"
    if skipped:
        lines.append("# In-process only, no Prometheus metric: " + ", ".join(skipped))
    return "\n".join(lines) + "\n"
