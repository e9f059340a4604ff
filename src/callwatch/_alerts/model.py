"""What an alert is: the value handed to every handler, and its stable identity.

An alert's identity (its fingerprint) is its name plus its labels, never its
severity: a rise from warning to critical is the same alert getting worse, so
PagerDuty keeps one incident and deduplication can tell escalation from repeat.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache, lru_cache
from typing import Any, Literal

from callwatch._logging.redact import redact_text

__all__ = [
    "SEVERITIES",
    "Alert",
    "Status",
    "Value",
    "alertname_for",
    "fingerprint",
    "host",
    "iso",
    "severity_rank",
]

Value = float | int | str | bool | None
Status = Literal["firing", "resolved"]

# Lowest first; the index is the rank used for escalation and suppression.
SEVERITIES = ("info", "warning", "critical")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_WORD = re.compile(r"[A-Za-z0-9]+")


def severity_rank(severity: str) -> int:
    """Rank of a severity; an unknown one is a ValueError telling what is allowed."""
    try:
        return _RANK[severity]
    except KeyError:
        raise ValueError(
            f"severity {severity!r} is not one of {', '.join(SEVERITIES)}"
        ) from None


@cache
def host() -> str:
    """This machine's name: the ``instance`` label, shared by pre-fork workers on purpose."""
    return socket.gethostname()


@lru_cache(maxsize=1024)
def alertname_for(text: str) -> str:
    """A Prometheus-style alert name from free text: ``"High CPU usage"`` → ``HighCPUUsage``."""
    words = _WORD.findall(text)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name or "Alert"


def fingerprint(alertname: str, labels: tuple[tuple[str, str], ...]) -> str:
    """Stable across restarts and processes: a hash of the name and the sorted labels."""
    text = "\0".join([alertname, *(f"{key}={value}" for key, value in labels)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with milliseconds and ``Z``, the form every receiver accepts."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _json_safe(value: Value) -> Value:
    if isinstance(value, float) and not math.isfinite(value):  # NaN and inf are not JSON
        return None
    return value


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification: what handlers receive (``alert.severity``, ``alert.title``, ...)."""

    severity: str
    title: str
    message: str
    metric: str
    value: Value
    threshold: Value
    timestamp: datetime
    labels: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    status: Status = "firing"
    alertname: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"

    def redacted(self, pii: bool = False) -> Alert:
        """This alert as it may leave the process: every text masked as in a log record.

        Titles, messages and labels are built from metrics and errors, which can
        quote a caller's card number or a token; receivers must never see them.
        """
        changes: dict[str, Any] = {}
        for name in ("title", "message", "metric", "alertname", "value", "threshold"):
            value = getattr(self, name)
            if isinstance(value, str):
                masked = redact_text(value, pii=pii)
                if masked is not value:
                    changes[name] = masked
        labels = {
            redact_text(key, pii=pii) if isinstance(key, str) else key: (
                redact_text(value, pii=pii) if isinstance(value, str) else value
            )
            for key, value in self.labels.items()
        }
        if labels != self.labels:
            changes["labels"] = labels
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe form listed by ``active_alerts()``/``history()`` and the routes."""
        return {
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
            "severity": self.severity,
            "status": self.status,
            "title": self.title,
            "message": self.message,
            "metric": self.metric,
            "value": _json_safe(self.value),
            "threshold": _json_safe(self.threshold),
            "labels": dict(self.labels),
            "timestamp": iso(self.timestamp),
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
        }
