"""promtool checks the exported rules and proves each fires at its threshold and not below."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from callwatch._alerts.rules import prometheus_rules
from callwatch._alerts.thresholds import DEFAULT_THRESHOLDS
from tests.conftest import need

pytestmark = pytest.mark.integration

# Ratios exposed for the system gauges; the rules compare them as percents.
SYSTEM = {
    "cpu_percent": "callwatch_system_cpu_usage_ratio",
    "memory_percent": "callwatch_system_memory_usage_ratio",
    "disk_percent": "callwatch_system_disk_usage_ratio",
}
TITLES = {
    "cpu_percent": "High CPU usage",
    "memory_percent": "High memory usage",
    "disk_percent": "High disk usage",
    "error_rate": "High error rate",
    "active_calls": "Too many active calls",
    "response_time_ms": "Slow responses",
}
ALERTNAMES = {
    "cpu_percent": "HighCpuPercent",
    "memory_percent": "HighMemoryPercent",
    "disk_percent": "HighDiskPercent",
    "error_rate": "HighErrorRate",
    "active_calls": "HighActiveCalls",
    "response_time_ms": "HighResponseTimeMs",
}


def gauge(name: str, instance: str, value: float) -> dict[str, str]:
    return {"series": f'{name}{{instance="{instance}"}}', "values": f"{value}x10"}


def counter(name: str, labels: str, per_minute: float) -> dict[str, str]:
    # Starts far from zero so rate() never extrapolates towards zero.
    return {"series": f"{name}{{{labels}}}", "values": f"100000+{per_minute}x10"}


def series_at(key: str, instance: str, value: float) -> list[dict[str, str]]:
    """Input series that make ``key`` read exactly ``value`` at 5m for ``instance``."""
    if key in SYSTEM:
        return [gauge(SYSTEM[key], instance, value / 100)]
    if key == "active_calls":
        return [gauge("callwatch_active_calls", instance, value)]
    if key == "error_rate":
        # 1200 calls a minute, ``value`` percent of them failing.
        failures = 1200 * value / 100
        return [
            counter("callwatch_calls_ended_total", f'instance="{instance}",outcome="failure"', failures),
            counter("callwatch_calls_ended_total", f'instance="{instance}",outcome="success"', 1200 - failures),
        ]
    assert key == "response_time_ms"
    # 95% of 3600 turns a minute at or below the bucket holding the value, so p95 is its bound.
    seconds = value / 1000
    bounds = [seconds / 2, seconds, seconds * 2]
    counts = [0.0, 3420.0, 3600.0]
    out = [counter("callwatch_response_time_seconds_bucket", f'instance="{instance}",le="{b:g}"', c) for b, c in zip(bounds, counts, strict=True)]
    out.append(counter("callwatch_response_time_seconds_bucket", f'instance="{instance}",le="+Inf"', 3600.0))
    return out


def series_below(key: str, instance: str, value: float) -> list[dict[str, str]]:
    """Just below ``value``."""
    if key == "response_time_ms":
        seconds = value / 1000
        bounds = [seconds / 2, seconds, seconds * 2]
        counts = [0.0, 3480.0, 3600.0]  # 96.7% in the lower buckets: p95 inside the bucket below
        out = [counter("callwatch_response_time_seconds_bucket", f'instance="{instance}",le="{b:g}"', c) for b, c in zip(bounds, counts, strict=True)]
        out.append(counter("callwatch_response_time_seconds_bucket", f'instance="{instance}",le="+Inf"', 3600.0))
        return out
    return series_at(key, instance, below(key, value))


def below(key: str, value: float) -> float:
    """What ``series_below`` makes ``key`` read."""
    if key == "response_time_ms":
        return value / 2 + value / 2 * 3420 / 3480
    return value - (1 if key in ("active_calls", "error_rate") else 0.1)


def expected(key: str, severity: str, instance: str, value: float) -> dict[str, object]:
    limit = DEFAULT_THRESHOLDS[key][severity]
    return {
        "exp_labels": {"severity": severity, "metric": key, "instance": instance},
        "exp_annotations": {
            "summary": TITLES[key],
            "description": f"{key} is {value:.2f} ({severity} threshold {limit:g})",
        },
    }


def unit_tests() -> dict[str, object]:
    inputs: list[dict[str, str]] = []
    checks: list[dict[str, object]] = []
    for key, limits in DEFAULT_THRESHOLDS.items():
        warning, critical = limits["warning"], limits["critical"]
        inputs += series_at(key, "at-warning", warning)
        inputs += series_below(key, "below-warning", warning)
        inputs += series_at(key, "at-critical", critical)
        inputs += series_below(key, "below-critical", critical)
        checks.append({
            "eval_time": "5m",
            "alertname": ALERTNAMES[key],
            "exp_alerts": [
                expected(key, "warning", "at-warning", warning),
                expected(key, "warning", "at-critical", critical),
                expected(key, "critical", "at-critical", critical),
                # below-critical is still at or above the warning threshold
                expected(key, "warning", "below-critical", below(key, critical)),
            ],
        })
    return {"interval": "1m", "input_series": inputs, "alert_rule_test": checks}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def write(tmp_path: Path, rules: str, tests: list[dict[str, object]]) -> None:
    (tmp_path / "rules.yml").write_text(rules)
    (tmp_path / "tests.yml").write_text(json.dumps({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}, indent=1))


def test_exported_rules_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(prometheus_rules(DEFAULT_THRESHOLDS, 300, 10))
    result = promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 rules found" in result.stdout


def test_each_rule_fires_at_its_threshold_and_not_below(tmp_path: Path) -> None:
    write(tmp_path, prometheus_rules(DEFAULT_THRESHOLDS, 300, 10), [unit_tests()])
    result = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_error_rate_rule_needs_the_minimum_calls(tmp_path: Path) -> None:
    # 50% errors but only 4 calls in 5 minutes: the check stays quiet, so must the rule.
    inputs = [
        counter("callwatch_calls_ended_total", 'instance="quiet",outcome="failure"', 0.4),
        counter("callwatch_calls_ended_total", 'instance="quiet",outcome="success"', 0.4),
    ]
    test = {"interval": "1m", "input_series": inputs, "alert_rule_test": [{"eval_time": "5m", "alertname": "HighErrorRate", "exp_alerts": []}]}
    write(tmp_path, prometheus_rules(DEFAULT_THRESHOLDS, 300, 10), [test])
    result = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hold_for_becomes_the_rules_for(tmp_path: Path) -> None:
    table = {"cpu_percent": {"warning": 80, "critical": 95, "for_sec": 180}}
    test = {
        "interval": "1m",
        "input_series": [gauge(SYSTEM["cpu_percent"], "busy", 0.9)],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "HighCpuPercent", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "HighCpuPercent", "exp_alerts": [expected("cpu_percent", "warning", "busy", 90)]},
        ],
    }
    write(tmp_path, prometheus_rules(table, 300, 10), [test])
    result = promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
