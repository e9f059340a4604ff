"""The default handler: every alert as a log line on the console (and in the log files)."""

from __future__ import annotations

from callwatch._alerts.model import Alert
from callwatch.logger import log

__all__ = ["ConsoleHandler"]


class ConsoleHandler:
    """Writes through callwatch's own logger, so it never blocks and respects LOG_LEVEL."""

    name = "console"
    send_resolved = True

    async def __call__(self, alert: Alert) -> None:
        extra = {
            "alertname": alert.alertname,
            "severity": alert.severity,
            "status": alert.status,
            "metric": alert.metric,
            "value": alert.value,
            "threshold": alert.threshold,
            "fingerprint": alert.fingerprint,
        }
        if alert.resolved:
            log.info(f"ALERT RESOLVED {alert.title}: {alert.message}", extra=extra)
        elif alert.severity == "critical":
            log.critical(f"ALERT [CRITICAL] {alert.title}: {alert.message}", extra=extra)
        elif alert.severity == "warning":
            log.warning(f"ALERT [WARNING] {alert.title}: {alert.message}", extra=extra)
        else:
            log.info(f"ALERT [INFO] {alert.title}: {alert.message}", extra=extra)

    def __repr__(self) -> str:
        return "ConsoleHandler()"
