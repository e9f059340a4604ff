"""callwatch.alerting as the guide uses it: samples run with only their imports changed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import callwatch
from callwatch import _alerts
from callwatch._alerts.thresholds import DEFAULT_THRESHOLDS
from callwatch.alerting import (
    Alert,
    alert_manager,
    check_and_alert,
    prometheus_rules,
    send_alert,
    send_test_alert,
    slack_alert_handler,
    webhook_alert_handler,
)


async def eventually(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
def fresh(log_dir: Path) -> Iterator[None]:
    alert_manager.reset()
    try:
        yield
    finally:
        for name in list(alert_manager.handlers):
            if name != "console":
                alert_manager.unregister_handler(name)
        alert_manager.thresholds = DEFAULT_THRESHOLDS
        alert_manager.reset()


@pytest.fixture
def received() -> list[Alert]:
    seen: list[Alert] = []

    async def collect(alert: Alert) -> None:
        seen.append(alert)

    alert_manager.register_handler(collect)
    return seen


def metrics(cpu: float = 20, failed: int = 0, total: int = 100, active: int = 5, response: float = 800) -> dict:
    return {
        "calls": {
            "total_calls": total, "active_calls": active, "successful_calls": total - failed,
            "failed_calls": failed, "average_response_time_ms": response,
        },
        "system": {"cpu_percent": cpu, "memory_percent": 40.0, "disk_percent": 40.0},
    }


async def test_guide_custom_alert_sample(received: list[Alert]) -> None:
    await send_alert(
        severity="critical",  # critical, warning, info
        title="Database Connection Lost",
        message="Unable to connect to PostgreSQL database",
        metric="database_connection",
        value="disconnected",
        threshold="connected",
    )
    await eventually(lambda: len(received) == 1)
    alert = received[0]
    assert (alert.severity, alert.title, alert.value, alert.threshold) == ("critical", "Database Connection Lost", "disconnected", "connected")
    assert alert.status == "firing" and alert.fingerprint


async def test_guide_custom_handler_and_threshold_samples(received: list[Alert]) -> None:
    sent: list[dict[str, str]] = []

    async def send_email(to: str, subject: str, body: str) -> None:
        sent.append({"to": to, "subject": subject, "body": body})

    async def email_alert_handler(alert: Alert):
        """Send alert via email"""
        await send_email(
            to="ops@example.com",
            subject=f"[{alert.severity.upper()}] {alert.title}",
            body=alert.message,
        )

    alert_manager.register_handler(email_alert_handler)

    alert_manager.thresholds["cpu_percent"] = {"warning": 70, "critical": 90}
    alert_manager.thresholds["active_calls"] = {"warning": 50, "critical": 75}

    await check_and_alert(metrics(cpu=72, active=76))
    await eventually(lambda: len(sent) == 2)
    assert sorted(m["subject"] for m in sent) == ["[CRITICAL] Too many active calls", "[WARNING] High CPU usage"]
    assert alert_manager.thresholds is _alerts.thresholds.thresholds


async def test_guide_slack_and_webhook_samples_register_handlers() -> None:
    slack_webhook = "https://hooks.slack.com/services/YOUR/WEBHOOK/URL"
    alert_manager.register_handler(await slack_alert_handler(slack_webhook))
    webhook_url = "https://your-monitoring-system.com/alerts"
    alert_manager.register_handler(await webhook_alert_handler(webhook_url))
    assert list(alert_manager.handlers) == ["console", "slack", "webhook"]


async def test_guide_automatic_alerting_sample_with_get_metrics(received: list[Alert]) -> None:
    monitoring = pytest.importorskip("callwatch.monitoring")
    metrics_now = monitoring.get_metrics()
    alert_manager.thresholds["cpu_percent"] = {"warning": 0, "critical": 1000}
    await check_and_alert(metrics_now)
    await eventually(lambda: any(a.metric == "cpu_percent" for a in received))


async def test_alert_goes_firing_escalated_resolved_once_each(received: list[Alert]) -> None:
    alert_manager.thresholds["cpu_percent"]["resolve_sec"] = 0  # resolved at the first clear check
    for _ in range(50):
        await check_and_alert(metrics(cpu=85))
    await check_and_alert(metrics(cpu=97))
    for _ in range(50):
        await check_and_alert(metrics(cpu=85))
    for _ in range(5):
        await check_and_alert(metrics(cpu=20))
    await eventually(lambda: len(received) == 3)
    await asyncio.sleep(0.05)
    assert [(a.status, a.severity) for a in received] == [("firing", "warning"), ("firing", "critical"), ("resolved", "critical")]
    assert len({a.fingerprint for a in received}) == 1
    history = alert_manager.history()
    assert [h["status"] for h in history] == ["resolved", "firing", "firing"]
    assert alert_manager.active_alerts() == []


async def test_one_failed_call_out_of_two_does_not_page(received: list[Alert]) -> None:
    assert await check_and_alert(metrics(failed=1, total=2)) == []
    windowed = metrics()
    windowed["calls"].update(error_rate=50.0, window_calls=4)
    assert await check_and_alert(windowed) == []
    windowed["calls"].update(window_calls=40)
    (alert,) = await check_and_alert(windowed)
    assert alert.metric == "error_rate" and alert.severity == "critical"


async def test_active_alerts_are_listed_json_safe(received: list[Alert]) -> None:
    await check_and_alert(metrics(cpu=99, response=6000))
    active = alert_manager.active_alerts()
    json.dumps(active)
    assert [(a["metric"], a["severity"]) for a in active] == [("cpu_percent", "critical"), ("response_time_ms", "warning")]
    assert active[0]["labels"]["app"] == "ai_voice_agent"


async def test_sync_handlers_work_too() -> None:
    seen: list[str] = []
    alert_manager.register_handler(lambda alert: seen.append(alert.title))
    await send_alert("warning", "Queue backing up", "42 calls waiting", "queue_depth", 42, 20)
    await eventually(lambda: seen == ["Queue backing up"])


async def test_a_failing_handler_does_not_stop_the_others(received: list[Alert]) -> None:
    async def broken(alert: Alert) -> None:
        raise RuntimeError("boom")

    alert_manager.register_handler(broken)
    await send_alert("warning", "Something", "m", "x", 1, 0)
    await eventually(lambda: len(received) == 1)


async def test_unknown_severity_is_rejected() -> None:
    with pytest.raises(ValueError, match="critical"):
        await send_alert("urgent", "t", "m", "x")


async def test_env_urls_register_handlers_at_start_up(log_dir: Path) -> None:
    callwatch.configure(log_dir=log_dir, console=False, alert_webhook_url="https://example.com/hook/SECRET", slack_webhook_url="https://hooks.slack.com/services/A/B/SECRET")
    assert {"webhook", "slack"} <= set(alert_manager.handlers)
    callwatch.configure(log_dir=log_dir, console=False, slack_webhook_url="https://hooks.slack.com/services/A/B/OTHER")
    assert [n for n in alert_manager.handlers if n in ("webhook", "slack")] == ["slack"]
    assert "SECRET" not in repr(alert_manager.handlers)


async def test_send_test_alert_reports_each_handler(received: list[Alert]) -> None:
    async def broken(alert: Alert) -> None:
        raise ConnectionRefusedError("refused by https://example.com/hook/SECRET")

    alert_manager.register_handler(broken, name="broken")
    results = await send_test_alert()
    assert results["console"] == "ok"
    assert results["broken"].startswith("failed: ConnectionRefusedError")
    assert "SECRET" not in results["broken"]
    assert received[0].title == "callwatch test alert"
    assert alert_manager.history() == []  # a test alert is not an incident


async def test_alerts_after_shutdown_are_still_delivered(received: list[Alert]) -> None:
    callwatch.shutdown()
    await send_alert("warning", "Late", "after shutdown", "x", 1, 0)
    await eventually(lambda: len(received) == 1)


async def test_deliveries_are_counted_in_the_default_prometheus_registry(received: list[Alert]) -> None:
    before = REGISTRY.get_sample_value("callwatch_alert_deliveries_total", {"handler": "console", "result": "success"}) or 0
    await send_alert("info", "Counted", "m", "x")
    await eventually(lambda: (REGISTRY.get_sample_value("callwatch_alert_deliveries_total", {"handler": "console", "result": "success"}) or 0) > before)


async def test_rules_follow_the_live_thresholds() -> None:
    alert_manager.thresholds["cpu_percent"] = {"warning": 66, "critical": 77, "for_sec": 30}
    text = prometheus_rules()
    assert "callwatch_system_cpu_usage_ratio) >= 66" in text
    assert "for: 30s" in text
