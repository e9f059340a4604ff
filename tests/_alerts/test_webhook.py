from __future__ import annotations

from callwatch._alerts.webhook import ZERO_TIME, WebhookHandler
from tests._alerts.alerts import firing, resolved


def test_firing_payload_follows_alertmanagers_webhook_shape() -> None:
    body = WebhookHandler("https://example.com/hook").payload(firing("critical"))
    assert body["version"] == "4"
    assert body["status"] == "firing"
    (alert,) = body["alerts"]
    assert alert["labels"] == {
        "alertname": "HighCpuPercent", "severity": "critical", "metric": "cpu_percent",
        "instance": "voice-1", "app": "ai_voice_agent", "environment": "production",
    }
    assert alert["annotations"]["summary"] == "High CPU usage"
    assert alert["annotations"]["value"] == "91.5" and alert["annotations"]["threshold"] == "80"
    assert alert["startsAt"] == "2024-01-04T10:30:00.000Z"
    assert alert["endsAt"] == ZERO_TIME
    assert alert["fingerprint"] == "0123456789abcdef"
    assert body["commonLabels"] == alert["labels"] and body["groupKey"] == "0123456789abcdef"


def test_resolved_payload_has_its_end() -> None:
    body = WebhookHandler("https://example.com/hook").payload(resolved())
    assert body["status"] == "resolved"
    assert body["alerts"][0]["status"] == "resolved"
    assert body["alerts"][0]["endsAt"] == "2024-01-04T10:35:00.000Z"
