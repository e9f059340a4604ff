from __future__ import annotations

from datetime import timedelta

from callwatch._alerts.alertmanager import AlertmanagerHandler
from tests._alerts.alerts import STARTED, firing, resolved


async def test_firing_alerts_expire_four_resend_periods_ahead_unless_renewed() -> None:
    handler = AlertmanagerHandler("http://127.0.0.1:9093/", resend_sec=60)
    assert handler.url == "http://127.0.0.1:9093/api/v2/alerts"
    (item,) = handler.payload(firing())
    assert item["labels"]["alertname"] == "HighCpuPercent"
    assert item["labels"]["severity"] == "warning"
    assert {"instance", "app", "environment"} <= set(item["labels"])
    assert item["startsAt"] == "2024-01-04T10:30:00.000Z"
    assert item["endsAt"] == "2024-01-04T10:34:30.000Z"  # timestamp + 4 minutes
    assert item["annotations"]["summary"] == "High CPU usage"


def test_resolve_sets_ends_at() -> None:
    (item,) = AlertmanagerHandler("http://am:9093").payload(resolved())
    assert item["endsAt"] == (STARTED + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def test_escalation_ends_the_lower_severity_in_the_same_request() -> None:
    handler = AlertmanagerHandler("http://am:9093")
    handler._posted["0123456789abcdef"] = "warning"  # what an earlier delivery recorded
    critical, ended = handler.payload(firing("critical", 99))
    assert critical["labels"]["severity"] == "critical"
    assert ended["labels"]["severity"] == "warning"
    assert ended["endsAt"] == "2024-01-04T10:30:30.000Z"
