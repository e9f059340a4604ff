"""Alert lifecycle: when a condition becomes a notification, and when it stays quiet.

One track per fingerprint. A condition is *pending* until it has lasted the
hold-for duration, then *firing*; it resolves once it has been clear for the
resolve hold (the hold-for unless given), so a metric oscillating faster than
that changes nothing. A value in the hysteresis band (just below the
threshold, see ``manager.py``) is *held*: neither firing anew nor clear.
While firing, the same or a lower severity is not notified again within the
deduplication window, a higher one is notified at once, and a warning is held
back while the same metric has a critical firing. Every notification is also
kept in a bounded history.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import NamedTuple

from callwatch._alerts.model import (
    SEVERITIES,
    Alert,
    Status,
    Value,
    fingerprint,
    severity_rank,
)

__all__ = ["Lifecycle", "Spec", "make_spec"]

_CRITICAL = severity_rank("critical")
_HISTORY = 1000
_SWEEP_AT = 1024  # tracks before idle custom alerts are swept on the way in


class Spec(NamedTuple):
    """What identifies an alert: built once per alert kind and cached by the caller."""

    alertname: str
    title: str
    metric: str
    labels: dict[str, str]
    fingerprint: str
    managed: bool  # resolved by evaluation (thresholds) rather than by expiry (send_alert)


def make_spec(
    alertname: str, title: str, metric: str, labels: dict[str, str], *, managed: bool
) -> Spec:
    ordered = tuple(sorted(labels.items()))
    return Spec(alertname, title, metric, dict(ordered), fingerprint(alertname, ordered), managed)


@dataclass(slots=True)
class _Track:
    spec: Spec
    severity: str
    value: Value
    threshold: Value
    message: str
    hold_sec: float
    resolve_sec: float
    since: float  # the condition has held since (pending), or fired at (firing)
    seen: float
    firing: bool = False
    clear_since: float | None = None
    notified_at: float = 0.0
    notified_rank: int = -1  # -1: nothing sent yet (pending, or held back by a critical)
    notified_threshold: Value = None


class Lifecycle:
    """The state of every alert of this process; thread-safe, cheap when nothing changes."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.dedup_window_sec = 900.0
        self._tracks: dict[str, _Track] = {}
        # Read without the lock by the quiet path of a check: membership is all it needs.
        self.tracks: Mapping[str, object] = self._tracks
        self._history: deque[Alert] = deque(maxlen=_HISTORY)
        # metric -> fingerprints whose last notification was critical (they hold back warnings)
        self._criticals: dict[str, set[str]] = {}
        self._sweep_at = _SWEEP_AT
        self._lock = threading.Lock()

    def fire(
        self,
        spec: Spec,
        severity: str,
        value: Value,
        threshold: Value,
        *,
        message: str,
        hold_sec: float = 0.0,
        resolve_sec: float | None = None,
    ) -> Alert | None:
        """The condition holds now; returns the notification to send, if any.

        ``resolve_sec`` (default ``hold_sec``): how long it must then be clear to resolve.
        """
        resolve = hold_sec if resolve_sec is None else resolve_sec
        rank = severity_rank(severity)
        with self._lock:
            now = self.clock()
            track = self._tracks.get(spec.fingerprint)
            if track is None:
                if len(self._tracks) >= self._sweep_at:
                    self._expire(now)
                    self._sweep_at = max(_SWEEP_AT, 2 * len(self._tracks))
                track = _Track(spec, severity, value, threshold, message, hold_sec, resolve,
                               now, now)
                self._tracks[spec.fingerprint] = track
            track.severity, track.value, track.threshold = severity, value, threshold
            track.message, track.hold_sec, track.seen = message, hold_sec, now
            track.resolve_sec = resolve
            track.clear_since = None
            if not track.firing:
                if now - track.since < hold_sec:
                    return None
                track.firing, track.since = True, now
            if (
                rank <= track.notified_rank
                and now - track.notified_at < self.dedup_window_sec
            ):
                return None
            if rank < _CRITICAL and self._critical_firing(spec.metric, spec.fingerprint):
                return None
            self._notified(track, rank)
            track.notified_at, track.notified_threshold = now, threshold
            return self._record(track, "firing", now)

    def clear(self, fp: str, value: Value, message: str) -> Alert | None:
        """The condition no longer holds; resolves after it has been clear for the hold-for."""
        with self._lock:
            track = self._tracks.get(fp)
            if track is None:
                return None
            now = self.clock()
            track.value, track.message = value, message
            if track.firing:
                if track.clear_since is None:
                    track.clear_since = now
                if now - track.clear_since < track.resolve_sec:
                    return None
            return self._end(track, now)

    def hold(self, fp: str, value: Value) -> None:
        """Near the threshold but not over it: a firing alert stays, a pending one waits."""
        with self._lock:
            track = self._tracks.get(fp)
            if track is not None:
                track.value, track.seen, track.clear_since = value, self.clock(), None

    def resolve(self, fp: str) -> Alert | None:
        """Resolve now, whatever the hold-for (e.g. a custom alert whose cause is fixed)."""
        with self._lock:
            track = self._tracks.get(fp)
            if track is None:
                return None
            track.message = f"Resolved: {track.message}"
            return self._end(track, self.clock())

    def active(self) -> list[Alert]:
        """Firing alerts, most severe first; forgets custom alerts idle past the window."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            firing = [t for t in self._tracks.values() if t.firing]
            firing.sort(key=lambda t: (-severity_rank(t.severity), t.since))
            return [self._alert(t, "firing", now) for t in firing]

    def firing(self) -> list[Alert]:
        """Firing alerts that were notified: what a receiver keeping state must keep hearing."""
        with self._lock:
            now = self.clock()
            return [
                self._alert(t, "firing", now)
                for t in self._tracks.values()
                if t.firing and t.notified_rank >= 0
            ]

    def history(self, limit: int = 100) -> list[Alert]:
        """Notifications sent, newest first."""
        with self._lock:
            items = list(self._history)
        items.reverse()
        return items[: max(0, limit)]

    def reset(self) -> None:
        with self._lock:
            self._tracks.clear()
            self._history.clear()
            self._criticals.clear()

    def _expire(self, now: float) -> None:
        """Custom alerts end by not being sent again within the window."""
        for fp, track in list(self._tracks.items()):
            if not track.spec.managed and now - track.seen >= self.dedup_window_sec:
                del self._tracks[fp]
                self._forget_critical(track.spec.metric, fp)

    def _critical_firing(self, metric: str, other_than: str) -> bool:
        criticals = self._criticals.get(metric)
        return criticals is not None and any(fp != other_than for fp in criticals)

    def _notified(self, track: _Track, rank: int) -> None:
        track.notified_rank = rank
        metric, fp = track.spec.metric, track.spec.fingerprint
        if rank >= _CRITICAL:
            self._criticals.setdefault(metric, set()).add(fp)
        elif metric in self._criticals:
            self._forget_critical(metric, fp)

    def _forget_critical(self, metric: str, fp: str) -> None:
        criticals = self._criticals.get(metric)
        if criticals is not None:
            criticals.discard(fp)
            if not criticals:
                del self._criticals[metric]

    def _end(self, track: _Track, now: float) -> Alert | None:
        del self._tracks[track.spec.fingerprint]
        self._forget_critical(track.spec.metric, track.spec.fingerprint)
        if not track.firing or track.notified_rank < 0:
            return None  # nobody was told it started, so nobody is told it ended
        return self._record(track, "resolved", now)

    def _record(self, track: _Track, status: Status, now: float) -> Alert:
        alert = self._alert(track, status, now)
        self._history.append(alert)
        return alert

    def _alert(self, track: _Track, status: Status, now: float) -> Alert:
        spec = track.spec
        resolved = status == "resolved"
        moment = _utc(now)
        return Alert(
            severity=SEVERITIES[track.notified_rank] if resolved else track.severity,
            title=spec.title,
            message=track.message,
            metric=spec.metric,
            value=track.value,
            threshold=track.notified_threshold if resolved else track.threshold,
            timestamp=moment,
            labels=spec.labels,
            fingerprint=spec.fingerprint,
            status=status,
            alertname=spec.alertname,
            starts_at=moment if track.since == now else _utc(track.since),
            ends_at=moment if resolved else None,
        )


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
