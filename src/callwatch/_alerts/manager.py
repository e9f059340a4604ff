"""The alert manager: thresholds in, notifications out, through lifecycle and delivery.

It owns the handlers and the delivery worker (a runtime component that stops
before the log writer, so delivery failures at shutdown are still logged).
Handlers from ``ALERT_WEBHOOK_URL`` and ``SLACK_WEBHOOK_URL`` are registered
each time callwatch is configured, replacing the previous ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from callwatch import _runtime
from callwatch._alerts import rules
from callwatch._alerts.console import ConsoleHandler
from callwatch._alerts.delivery import Delivery, Handler, Registration
from callwatch._alerts.evaluate import INVALID, judge, title_for
from callwatch._alerts.lifecycle import Lifecycle, Spec, make_spec
from callwatch._alerts.model import Alert, Value, alertname_for, host, severity_rank
from callwatch._alerts.slack import SlackHandler
from callwatch._alerts.thresholds import thresholds
from callwatch._alerts.webhook import WebhookHandler
from callwatch.config import Settings
from callwatch.logger import log

__all__ = ["AlertManager"]

_MAX_CUSTOM_SPECS = 1024
# Against flapping, a firing threshold alert resolves only once its value has stayed below
# ``resolve_below`` (default: 10 % under its lowest threshold) for ``resolve_sec`` (default:
# the longer of ``for_sec`` and ALERT_RESOLVE_SEC, 60 s). A value hovering at a threshold is
# then one firing and, once really back, one resolved notification.
RESOLVE_MARGIN = 0.10


def _show(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


class AlertManager:
    """``alert_manager`` in the guide: ``thresholds``, ``register_handler`` and the alert lists."""

    def __init__(self) -> None:
        self.lifecycle = Lifecycle()
        self.delivery = Delivery(self.lifecycle.firing)
        self.component = _runtime.Component("alerting", self._start, self._stop, priority=80)
        self._settings: Settings | None = None
        self._labels: dict[str, str] = {}
        self._specs: dict[str, Spec] = {}
        self._custom_specs: dict[tuple[str, str, tuple[tuple[str, str], ...]], Spec] = {}
        self._from_environment: list[Registration] = []
        self._bad_thresholds: set[str] = set()
        self.register_handler(ConsoleHandler())

    @property
    def thresholds(self) -> dict[str, dict[str, float]]:
        """The live threshold table (the guide's dict of dicts), shared with health and rules."""
        return thresholds

    @thresholds.setter
    def thresholds(self, table: Mapping[str, Mapping[str, float]]) -> None:
        # Replaced in place: health and the rule export hold this very dict.
        new = {key: dict(limits) for key, limits in table.items()}
        thresholds.clear()
        thresholds.update(new)

    # --- handlers -------------------------------------------------------------------------

    def register_handler(
        self, handler: Handler, *, name: str | None = None, send_resolved: bool | None = None
    ) -> Handler:
        """Add a handler: ``async def h(alert)``, a plain function, or one of the built-ins.

        ``send_resolved`` (default: the handler's own attribute, else True) decides
        whether it also hears when an alert clears. Registering the same object
        twice has no effect. Returns the handler, so this works as a decorator.
        """
        if not callable(handler):
            raise TypeError(f"an alert handler must be callable, not {type(handler).__name__}")
        if any(r.handler is handler for r in self.delivery.registrations):
            return handler
        if send_resolved is None:
            send_resolved = bool(getattr(handler, "send_resolved", True))
        resend = getattr(handler, "resend_sec", None)
        self.delivery.add(
            Registration(
                handler=handler,
                name=self._unique_name(name or _handler_name(handler)),
                send_resolved=send_resolved,
                resend_sec=float(resend) if isinstance(resend, int | float) else None,
            )
        )
        return handler

    def unregister_handler(self, handler: Handler | str) -> bool:
        """Remove a handler, by object or by name (``"console"`` silences the default)."""
        for registration in self.delivery.registrations:
            if registration.handler is handler or registration.name == handler:
                self.delivery.remove(registration)
                return True
        return False

    @property
    def handlers(self) -> dict[str, Handler]:
        """Registered handlers by name, in the order they were registered."""
        return {r.name: r.handler for r in self.delivery.registrations}

    def _unique_name(self, base: str) -> str:
        taken = {r.name for r in self.delivery.registrations}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        return name

    # --- evaluating -----------------------------------------------------------------------

    def check(self, metrics: Mapping[str, Any]) -> list[Alert]:
        """Judge ``metrics`` against the thresholds; returns the notifications handed over."""
        current = _runtime.settings()
        if current is not self._settings:
            self._adopt(current)
        sent: list[Alert] = []
        specs = self._specs
        tracks = self.lifecycle.tracks
        for key, value, severity in judge(metrics, thresholds, current.alert_min_calls):
            spec = specs.get(key) or self._threshold_spec(key)
            if severity is None:
                if spec.fingerprint not in tracks:
                    continue
                if value is not None and value >= _resolve_level(thresholds[key]):
                    self.lifecycle.hold(spec.fingerprint, value)
                    continue
                alert = self._clear(spec, key, value)
            elif severity == INVALID or value is None:
                self._warn_bad_threshold(key)
                continue
            else:
                alert = self._fire(spec, key, severity, value, thresholds[key],
                                   current.alert_resolve_sec)
            if alert is not None:
                sent.append(self._hand_over(alert))
        return sent

    def _fire(
        self, spec: Spec, key: str, severity: str, value: float, limits: Mapping[str, float],
        default_resolve_sec: float,
    ) -> Alert | None:
        threshold = limits[severity]
        message = (
            f"{key} is {_show(value)}, at or above the {severity} threshold of {_show(threshold)}"
        )
        hold_sec = float(limits.get("for_sec", 0) or 0)
        resolve_sec = limits.get("resolve_sec")
        return self.lifecycle.fire(
            spec, severity, value, threshold, message=message, hold_sec=hold_sec,
            resolve_sec=max(hold_sec, default_resolve_sec) if resolve_sec is None
            else float(resolve_sec),
        )

    def _clear(self, spec: Spec, key: str, value: float | None) -> Alert | None:
        if value is None:
            message = f"{key} is back below its thresholds (not enough data to judge it)"
        else:
            message = f"{key} is back to {_show(value)}, below its thresholds"
        return self.lifecycle.clear(spec.fingerprint, value, message)

    def send(
        self,
        severity: str,
        title: str,
        message: str,
        metric: str,
        value: Value = None,
        threshold: Value = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> Alert | None:
        """A custom alert; returns the notification, or None when deduplicated or held back."""
        severity_rank(severity)
        current = _runtime.settings()
        if current is not self._settings:
            self._adopt(current)
        extra = tuple(sorted((str(k), str(v)) for k, v in labels.items())) if labels else ()
        key = (title, metric, extra)
        spec = self._custom_specs.get(key)
        if spec is None:
            if len(self._custom_specs) >= _MAX_CUSTOM_SPECS:
                self._custom_specs.clear()
            labels_ = {**self._labels, "metric": metric, **dict(extra)}
            spec = make_spec(alertname_for(title), title, metric, labels_, managed=False)
            self._custom_specs[key] = spec
        alert = self.lifecycle.fire(spec, severity, value, threshold, message=message)
        return None if alert is None else self._hand_over(alert)

    def resolve(self, alert: Alert | str) -> Alert | None:
        """End a firing alert now (by the Alert or its fingerprint): one resolved notification."""
        fp = alert.fingerprint if isinstance(alert, Alert) else alert
        resolved = self.lifecycle.resolve(fp)
        return None if resolved is None else self._hand_over(resolved)

    def _hand_over(self, alert: Alert) -> Alert:
        if not self.delivery.running:
            _runtime.register(self.component)  # after shutdown(): start again rather than lose it
        self.delivery.submit(alert)
        return alert

    # --- reading --------------------------------------------------------------------------

    def active_alerts(self) -> list[dict[str, Any]]:
        """Firing alerts as JSON-safe dicts, most severe first."""
        return [a.to_dict() for a in self.lifecycle.active()]

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        """Notifications sent (firing and resolved), newest first."""
        return [a.to_dict() for a in self.lifecycle.history(limit)]

    def reset(self) -> None:
        """Forget every alert and the history (handlers stay): for tests and the demo."""
        self.lifecycle.reset()

    def prometheus_rules(self) -> str:
        current = _runtime.settings()
        return rules.prometheus_rules(
            self.thresholds, current.error_rate_window_sec, current.alert_min_calls
        )

    async def send_test_alert(self) -> dict[str, str]:
        """One test alert through every handler, directly: ``{handler: "ok" | "failed: why"}``."""
        current = _runtime.settings()
        if current is not self._settings:
            self._adopt(current)
        if not self.delivery.running:
            _runtime.register(self.component)
        now = datetime.now(timezone.utc)
        alert = make_spec(
            "CallwatchTestAlert", "callwatch test alert", "test", self._labels, managed=False
        )
        return await self.delivery.test_all(
            Alert(
                severity="info",
                title=alert.title,
                message="A test alert from `callwatch alert test`: delivery works.",
                metric="test",
                value=None,
                threshold=None,
                timestamp=now,
                labels=alert.labels,
                fingerprint=alert.fingerprint,
                alertname=alert.alertname,
                starts_at=now,
            )
        )

    # --- component ------------------------------------------------------------------------

    def _adopt(self, current: Settings) -> None:
        self._settings = current
        self.lifecycle.dedup_window_sec = current.alert_dedup_window_sec
        self._labels = {
            "instance": host(),
            "app": current.app_name,
            "environment": current.environment,
        }
        self._specs = {}
        self._custom_specs = {}

    def _threshold_spec(self, key: str) -> Spec:
        labels = {**self._labels, "metric": key}
        spec = make_spec(alertname_for("High " + key), title_for(key), key, labels, managed=True)
        self._specs[key] = spec
        return spec

    def _warn_bad_threshold(self, key: str) -> None:
        if key not in self._bad_thresholds:
            self._bad_thresholds.add(key)
            log.warning(
                "Alert threshold is not a number; it is skipped",
                extra={"threshold_key": key, "threshold": repr(self.thresholds.get(key))},
            )

    def _start(self, current: Settings) -> None:
        self._adopt(current)
        for registration in self._from_environment:
            self.delivery.remove(registration)
        self._from_environment = []
        for handler in (
            WebhookHandler(current.alert_webhook_url) if current.alert_webhook_url else None,
            SlackHandler(current.slack_webhook_url) if current.slack_webhook_url else None,
        ):
            if handler is not None:
                self.register_handler(handler)
                self._from_environment.append(self.delivery.registrations[-1])
        self.delivery.start(current)

    def _stop(self, timeout: float) -> None:
        self.delivery.stop(timeout)


def _resolve_level(limits: Mapping[str, float]) -> float:
    """Below this a firing alert resolves: ``resolve_below``, else 10 % under the lowest."""
    explicit = limits.get("resolve_below")
    if isinstance(explicit, int | float):
        return float(explicit)
    levels = [limits[s] for s in ("warning", "critical")
              if isinstance(limits.get(s), int | float)]
    return min(levels) * (1.0 - RESOLVE_MARGIN) if levels else float("inf")


def _handler_name(handler: Handler) -> str:
    name = getattr(handler, "name", None)
    if isinstance(name, str) and name:
        return name
    return str(getattr(handler, "__qualname__", None) or type(handler).__qualname__)
