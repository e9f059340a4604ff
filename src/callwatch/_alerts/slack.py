"""Slack incoming webhook: a plain ``text`` fallback and an attachment coloured by severity."""

from __future__ import annotations

from typing import Any

from callwatch._alerts.http import post_json
from callwatch._alerts.model import Alert
from callwatch._logging.redact import redact_url, register_secret

__all__ = ["COLORS", "SlackHandler"]

COLORS = {"critical": "#d32f2f", "warning": "#f9a825", "info": "#1e88e5", "resolved": "#2e7d32"}


def _escape(text: str) -> str:
    """Slack reads ``&``, ``<`` and ``>`` as markup; a metric value must not become a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)


class SlackHandler:
    """POSTs to a Slack incoming webhook (Mattermost and Rocket.Chat accept the same body)."""

    name = "slack"

    def __init__(self, url: str, *, send_resolved: bool = True) -> None:
        self.url = url
        self.send_resolved = send_resolved
        register_secret(url)  # the URL is the webhook's key: masked wherever it is quoted

    def payload(self, alert: Alert) -> dict[str, Any]:
        state = "RESOLVED" if alert.resolved else alert.severity.upper()
        headline = _escape(f"[{state}] {alert.title}")
        text = f"{headline}: {_escape(alert.message)}"
        labels = alert.labels
        fields = [
            ("Metric", alert.metric),
            ("Value", _show(alert.value)),
            ("Threshold", _show(alert.threshold)),
            ("Host", labels.get("instance", "-")),
            ("App", labels.get("app", "-")),
            ("Environment", labels.get("environment", "-")),
        ]
        return {
            "text": text,
            "attachments": [
                {
                    "color": COLORS["resolved" if alert.resolved else alert.severity],
                    "fallback": text,
                    "title": headline,
                    "text": _escape(alert.message),
                    "fields": [
                        {"title": title, "value": _escape(value), "short": True}
                        for title, value in fields
                    ],
                    "footer": "callwatch",
                    "ts": int(alert.timestamp.timestamp()),
                }
            ],
        }

    async def __call__(self, alert: Alert) -> None:
        await post_json(self.url, self.payload(alert))

    def __repr__(self) -> str:
        return f"SlackHandler({redact_url(self.url)!r})"
