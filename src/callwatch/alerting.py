"""Alerting, as the guide writes it: thresholds, ``send_alert``, ``check_and_alert`` and handlers.

Checking costs microseconds and never waits for a receiver: notifications are
handed to a background worker that retries, times out and logs failures.
An alert is identified by its name and labels (its fingerprint); it is sent
once when it fires, again only after the deduplication window or when it gets
worse, and once more when it resolves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callwatch import _runtime
from callwatch._alerts.alertmanager import AlertmanagerHandler
from callwatch._alerts.console import ConsoleHandler
from callwatch._alerts.delivery import STATS
from callwatch._alerts.email import EmailHandler
from callwatch._alerts.manager import AlertManager
from callwatch._alerts.model import SEVERITIES, Alert, Value
from callwatch._alerts.pagerduty import EVENTS_URL, PagerDutyHandler
from callwatch._alerts.slack import SlackHandler
from callwatch._alerts.webhook import WebhookHandler
from callwatch.monitoring import production_monitor

__all__ = [
    "SEVERITIES",
    "Alert",
    "AlertManager",
    "AlertmanagerHandler",
    "ConsoleHandler",
    "EmailHandler",
    "PagerDutyHandler",
    "SlackHandler",
    "WebhookHandler",
    "alert_manager",
    "alertmanager_alert_handler",
    "check_and_alert",
    "delivery_stats",
    "email_alert_handler",
    "pagerduty_alert_handler",
    "prometheus_rules",
    "send_alert",
    "send_test_alert",
    "slack_alert_handler",
    "webhook_alert_handler",
]

alert_manager = AlertManager()
_runtime.register(alert_manager.component)


async def send_alert(
    severity: str,
    title: str,
    message: str,
    metric: str,
    value: Value = None,
    threshold: Value = None,
    *,
    labels: Mapping[str, str] | None = None,
) -> Alert | None:
    """Send a custom alert (severity ``critical``, ``warning`` or ``info``).

    Returns the notification handed to the handlers, or None when it was
    deduplicated or held back by a critical on the same metric.
    """
    return alert_manager.send(severity, title, message, metric, value, threshold, labels=labels)


async def check_and_alert(metrics: Mapping[str, Any]) -> list[Alert]:
    """Judge a ``get_metrics()``-shaped dict against ``alert_manager.thresholds``.

    Under a pre-fork server every worker sees the same cross-worker totals, so
    only one of them (the oldest alive) judges thresholds; the others return [].
    """
    if not production_monitor.evaluates_alerts():
        return []
    return alert_manager.check(metrics)


async def slack_alert_handler(url: str, *, send_resolved: bool = True) -> SlackHandler:
    """A handler posting to a Slack incoming webhook (awaited, as in the guide)."""
    return SlackHandler(url, send_resolved=send_resolved)


async def webhook_alert_handler(url: str, *, send_resolved: bool = True) -> WebhookHandler:
    """A handler posting an Alertmanager-style JSON body to ``url`` (see docs/alerting.md)."""
    return WebhookHandler(url, send_resolved=send_resolved)


def pagerduty_alert_handler(
    routing_key: str, url: str = EVENTS_URL, *, send_resolved: bool = True
) -> PagerDutyHandler:
    """A handler for PagerDuty Events API v2 (trigger and resolve, fingerprint as dedup_key)."""
    return PagerDutyHandler(routing_key, url, send_resolved=send_resolved)


def alertmanager_alert_handler(base_url: str, *, resend_sec: float = 60.0) -> AlertmanagerHandler:
    """A handler posting to an Alertmanager at ``base_url`` (e.g. ``http://alertmanager:9093``)."""
    return AlertmanagerHandler(base_url, resend_sec=resend_sec)


# A handler sending each alert as an e-mail over SMTP:
# email_alert_handler(host, port=25, *, sender, to, username=None, password=None, ...).
email_alert_handler = EmailHandler


def prometheus_rules() -> str:
    """Prometheus alerting rules (YAML) equivalent to the current thresholds."""
    return alert_manager.prometheus_rules()


async def send_test_alert() -> dict[str, str]:
    """Send one test alert through every handler; ``{handler: "ok" | "failed: why"}``."""
    return await alert_manager.send_test_alert()


def delivery_stats() -> dict[str, dict[str, int]]:
    """Notifications per handler and result (``success``, ``retry``, ``failure``, ``dropped``)."""
    return STATS.snapshot()

