"""Alert values for handler tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from callwatch._alerts.model import Alert

STARTED = datetime(2024, 1, 4, 10, 30, 0, tzinfo=timezone.utc)
LABELS = {"instance": "voice-1", "app": "ai_voice_agent", "environment": "production", "metric": "cpu_percent"}


def firing(severity: str = "warning", value: float = 91.5) -> Alert:
    return Alert(
        severity=severity, title="High CPU usage",
        message=f"cpu_percent is {value}, at or above the {severity} threshold of 80",
        metric="cpu_percent", value=value, threshold=80, timestamp=STARTED + timedelta(seconds=30),
        labels=dict(LABELS), fingerprint="0123456789abcdef", status="firing",
        alertname="HighCpuPercent", starts_at=STARTED,
    )


def resolved(severity: str = "warning") -> Alert:
    ended = STARTED + timedelta(minutes=5)
    return Alert(
        severity=severity, title="High CPU usage", message="cpu_percent is back to 40, below its thresholds",
        metric="cpu_percent", value=40.0, threshold=80, timestamp=ended, labels=dict(LABELS),
        fingerprint="0123456789abcdef", status="resolved", alertname="HighCpuPercent",
        starts_at=STARTED, ends_at=ended,
    )
