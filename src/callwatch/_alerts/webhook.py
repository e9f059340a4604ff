"""Generic webhook: the JSON body modelled on Alertmanager's webhook payload (version 4).

One alert per request, so a receiver sees firing and resolved in order. Tools
that already read Alertmanager webhooks read this without change.
"""

from __future__ import annotations

from typing import Any

from callwatch._alerts.http import post_json
from callwatch._alerts.model import Alert, iso
from callwatch._logging.redact import redact_url, register_secret

__all__ = ["ZERO_TIME", "WebhookHandler", "alert_annotations", "alert_labels"]

# Alertmanager's "not ended" endsAt, kept so its consumers parse firing alerts as usual.
ZERO_TIME = "0001-01-01T00:00:00Z"


def alert_labels(alert: Alert) -> dict[str, str]:
    """Identity plus severity, as Alertmanager and the exported rules label alerts."""
    return {**alert.labels, "alertname": alert.alertname, "severity": alert.severity}


def alert_annotations(alert: Alert) -> dict[str, str]:
    out = {"summary": alert.title, "description": alert.message}
    if alert.value is not None:
        out["value"] = str(alert.value)
    if alert.threshold is not None:
        out["threshold"] = str(alert.threshold)
    return out


class WebhookHandler:
    """POSTs one Alertmanager-style notification per alert to ``url``."""

    name = "webhook"

    def __init__(self, url: str, *, send_resolved: bool = True) -> None:
        self.url = url
        self.send_resolved = send_resolved
        register_secret(url)  # the URL is the webhook's key: masked wherever it is quoted

    def payload(self, alert: Alert) -> dict[str, Any]:
        labels = alert_labels(alert)
        annotations = alert_annotations(alert)
        return {
            "version": "4",
            "receiver": "callwatch",
            "status": alert.status,
            "groupKey": alert.fingerprint,
            "truncatedAlerts": 0,
            "groupLabels": {"alertname": alert.alertname},
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": "",
            "alerts": [
                {
                    "status": alert.status,
                    "labels": labels,
                    "annotations": annotations,
                    "startsAt": iso(alert.starts_at or alert.timestamp),
                    "endsAt": iso(alert.ends_at) or ZERO_TIME,
                    "generatorURL": "",
                    "fingerprint": alert.fingerprint,
                }
            ],
        }

    async def __call__(self, alert: Alert) -> None:
        await post_json(self.url, self.payload(alert))

    def __repr__(self) -> str:
        return f"WebhookHandler({redact_url(self.url)!r})"
