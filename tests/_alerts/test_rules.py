"""The exported Prometheus rules follow the live thresholds (promtool runs them in integration)."""

from __future__ import annotations

import json

from callwatch._alerts.rules import duration, prometheus_rules
from callwatch._alerts.thresholds import DEFAULT_THRESHOLDS


def rule_blocks(text: str) -> list[dict[str, str]]:
    """The rule list as flat dicts (the YAML is written as one key per line)."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- alert: "):
            blocks.append({"alert": stripped.removeprefix("- alert: ")})
        elif blocks and ": " in stripped:
            key, value = stripped.split(": ", 1)
            blocks[-1][key] = json.loads(value) if value.startswith('"') else value
    return blocks


def test_one_rule_per_threshold_and_severity_with_the_in_process_names() -> None:
    blocks = rule_blocks(prometheus_rules(DEFAULT_THRESHOLDS, 300, 10))
    assert len(blocks) == 12
    cpu_warning = blocks[0]
    assert cpu_warning["alert"] == "HighCpuPercent"
    assert cpu_warning["severity"] == "warning"
    assert cpu_warning["metric"] == "cpu_percent"
    assert cpu_warning["expr"].endswith(">= 80")
    error_rule = next(b for b in blocks if b["metric"] == "error_rate" and b["severity"] == "critical")
    assert "[5m]" in error_rule["expr"]
    assert ">= 10 and" in error_rule["expr"] and error_rule["expr"].endswith(">= 10")


def test_rules_follow_changed_thresholds_hold_for_and_settings() -> None:
    table = {"cpu_percent": {"warning": 70, "critical": 90, "for_sec": 120}, "error_rate": {"warning": 2}}
    text = prometheus_rules(table, 90, 25)
    blocks = rule_blocks(text)
    assert [(b["alert"], b["severity"]) for b in blocks] == [
        ("HighCpuPercent", "warning"),
        ("HighCpuPercent", "critical"),
        ("HighErrorRate", "warning"),
    ]
    assert blocks[0]["for"] == "2m" and blocks[0]["expr"].endswith(">= 70")
    assert "for" not in blocks[2]
    assert "[90s]" in blocks[2]["expr"] and blocks[2]["expr"].endswith(">= 25")


def test_thresholds_without_a_prometheus_metric_are_named_not_dropped_silently() -> None:
    text = prometheus_rules({"calls_per_minute": {"warning": 100}}, 300, 10)
    assert "calls_per_minute" in text.splitlines()[-1]
    assert "- alert:" not in text


def test_durations() -> None:
    assert duration(300) == "5m"
    assert duration(3600) == "1h"
    assert duration(90) == "90s"
    assert duration(1.5) == "1500ms"


def test_an_explicit_resolve_hold_becomes_keep_firing_for() -> None:
    table = {"cpu_percent": {"warning": 70, "resolve_sec": 120}, "error_rate": {"warning": 2}}
    blocks = rule_blocks(prometheus_rules(table, 300, 10))
    assert blocks[0]["keep_firing_for"] == "2m"
    assert "keep_firing_for" not in blocks[1]
