"""Alertmanager: ``POST /api/v2/alerts``, so a fleet's alerts are grouped and deduplicated there.

Alertmanager forgets an alert that is not re-sent, so firing alerts are re-sent
every ``resend_sec`` with ``endsAt`` four periods ahead (an instance that dies
stops renewing and its alerts resolve by themselves). Severity is a label
there, so an escalation ends the lower-severity alert in the same request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from callwatch._alerts.http import post_json
from callwatch._alerts.model import Alert, iso
from callwatch._alerts.webhook import alert_annotations, alert_labels
from callwatch._logging.redact import redact_url

__all__ = ["AlertmanagerHandler"]


class AlertmanagerHandler:
    """Posts to one Alertmanager (run one handler per replica of an HA pair)."""

    name = "alertmanager"
    send_resolved = True  # Alertmanager must hear the end, or it waits for endsAt

    def __init__(self, base_url: str, *, resend_sec: float = 60.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v2/alerts"
        self.resend_sec = resend_sec
        # fingerprint -> severity last posted; touched only by this handler's lane.
        self._posted: dict[str, str] = {}

    def payload(self, alert: Alert) -> list[dict[str, Any]]:
        items = [self._item(alert, alert_labels(alert))]
        previous = self._posted.get(alert.fingerprint)
        if previous is not None and previous != alert.severity:
            ended = alert_labels(alert) | {"severity": previous}
            items.append(self._item(alert, ended, ends_at=iso(alert.timestamp)))
        return items

    def _item(
        self, alert: Alert, labels: dict[str, str], ends_at: str | None = None
    ) -> dict[str, Any]:
        if ends_at is None:
            if alert.resolved:
                ends_at = iso(alert.ends_at or alert.timestamp)
            else:
                ends_at = iso(alert.timestamp + timedelta(seconds=4 * self.resend_sec))
        return {
            "labels": labels,
            "annotations": alert_annotations(alert),
            "startsAt": iso(alert.starts_at or alert.timestamp),
            "endsAt": ends_at,
        }

    async def __call__(self, alert: Alert) -> None:
        await post_json(self.url, self.payload(alert))
        if alert.resolved:
            self._posted.pop(alert.fingerprint, None)
        else:
            self._posted[alert.fingerprint] = alert.severity

    def __repr__(self) -> str:
        return f"AlertmanagerHandler({redact_url(self.url)!r})"
