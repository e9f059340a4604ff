"""PagerDuty Events API v2: trigger while firing, resolve when cleared.

The fingerprint is the ``dedup_key``, so one alert is one incident however often it is sent.
"""

from __future__ import annotations

from typing import Any

from callwatch._alerts.http import post_json
from callwatch._alerts.model import Alert, iso
from callwatch._logging.redact import register_secret

__all__ = ["EVENTS_URL", "PagerDutyHandler"]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
# PagerDuty's severities are critical, error, warning and info.
_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
_SUMMARY_MAX = 1024


class PagerDutyHandler:
    """The routing key is a secret: it is sent in the body only, never shown in repr or logs."""

    name = "pagerduty"

    def __init__(
        self, routing_key: str, url: str = EVENTS_URL, *, send_resolved: bool = True
    ) -> None:
        if not routing_key:
            raise ValueError("a PagerDuty routing key (integration key) is required")
        self._routing_key = routing_key
        register_secret(routing_key)
        self.url = url
        self.send_resolved = send_resolved

    def payload(self, alert: Alert) -> dict[str, Any]:
        if alert.resolved:
            return {
                "routing_key": self._routing_key,
                "event_action": "resolve",
                "dedup_key": alert.fingerprint,
            }
        labels = alert.labels
        summary = f"[{alert.severity.upper()}] {alert.title}: {alert.message}"
        return {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": alert.fingerprint,
            "client": "callwatch",
            "payload": {
                "summary": summary[:_SUMMARY_MAX],
                "source": labels.get("instance", "callwatch"),
                "severity": _SEVERITY.get(alert.severity, "error"),
                "timestamp": iso(alert.timestamp),
                "component": labels.get("app"),
                "group": labels.get("environment"),
                "class": alert.metric,
                "custom_details": {
                    "alertname": alert.alertname,
                    "metric": alert.metric,
                    "value": alert.value,
                    "threshold": alert.threshold,
                    "message": alert.message,
                    "labels": dict(labels),
                },
            },
        }

    async def __call__(self, alert: Alert) -> None:
        await post_json(self.url, self.payload(alert))

    def __repr__(self) -> str:
        return "PagerDutyHandler(routing_key=[REDACTED])"
