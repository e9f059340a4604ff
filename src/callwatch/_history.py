"""Per-minute history of the fleet's figures, kept on disk so a restart does not erase the past.

Every worker samples the fleet's totals once a minute; a point is the difference
between two samples: the calls, failures and turn latencies of that minute, plus
the calls in flight and the alerts sent. Only the worker that judges alerts (the
oldest alive one under a pre-fork server) writes points, so the fleet has one
writer; the others add a note naming the longest and failed calls that ended in
them, merged into the writer's minute when read.
Points are JSON lines in ``LOG_DIR/history/YYYY-MM-DD.jsonl``, one file per UTC
day, pruned past ``CALLWATCH_HISTORY_DAYS``. This module reads metrics; metrics
never import it.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from callwatch import _runtime
from callwatch._alerts.model import Alert
from callwatch._metrics.histogram import RESPONSE_EDGES_MS, Histogram
from callwatch._metrics.snapshot import Totals
from callwatch.alerting import alert_manager
from callwatch.config import Settings
from callwatch.logger import log
from callwatch.monitoring import production_monitor

__all__ = ["POINT_SEC", "HistoryRecorder", "aggregate", "error_rate", "recorder", "stamp"]

POINT_SEC = 60
MAX_STAGES = 12  # the busiest stages of a minute; a point stays small
MAX_LISTED = 10  # call ids and alert events kept per point
_MAX_ID = 200
_SUFFIX = ".jsonl"
_CALL_LISTS = ("failed_calls", "longest_calls")
_WORST = ("p50_ms", "p95_ms", "p99_ms", "active_calls")


@dataclass
class _Sample:
    """The cumulative figures a point is the difference of."""

    at: float
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    response: Histogram = field(default_factory=lambda: Histogram(RESPONSE_EDGES_MS))
    operations: dict[str, Histogram] = field(default_factory=dict)

    @classmethod
    def of(cls, totals: Totals, at: float) -> _Sample:
        response = totals.hists.get("response_time_seconds", {}).get("")
        operations = totals.hists.get("operation_duration_seconds", {})
        return cls(at, totals.started, totals.succeeded, totals.failed,
                   response.copy() if response is not None else Histogram(RESPONSE_EDGES_MS),
                   {name: stats.copy() for name, stats in operations.items()})


def _minus(now: Histogram, before: Histogram | None) -> Histogram:
    """What was observed between two readings of one histogram (a restarted worker: clamped)."""
    delta = now.copy()
    if before is not None:
        delta.counts = [max(0, a - b) for a, b in zip(now.counts, before.counts, strict=True)]
        delta.count = sum(delta.counts)
        delta.sum = max(0.0, now.sum - before.sum)
    return delta


def error_rate(failed: float, ended: float) -> float:
    """Failed calls as a percentage of the calls that ended (0 when none did)."""
    return round(100.0 * failed / ended, 2) if ended else 0.0


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(stamp: object) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _percentile(hist: Histogram, q: float) -> float | None:
    return round(hist.quantile(q), 1) if hist.count else None


class _EndedCalls:
    """The longest and the failed calls that ended in this process since the last point."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._longest: list[tuple[float, str]] = []  # a min-heap of MAX_LISTED
        self._failed: dict[str, None] = {}

    def on_start(self, call_id: Hashable) -> None:
        """Starts tell nothing a point keeps."""

    def on_end(self, call_id: Hashable, duration_sec: float | None, success: bool) -> None:
        name = str(call_id)[:_MAX_ID]
        with self._lock:
            if duration_sec is not None:
                if len(self._longest) < MAX_LISTED:
                    heapq.heappush(self._longest, (duration_sec, name))
                elif duration_sec > self._longest[0][0]:
                    heapq.heapreplace(self._longest, (duration_sec, name))
            if not success and len(self._failed) < MAX_LISTED:
                self._failed[name] = None

    def take(self) -> tuple[list[tuple[float, str]], list[str]]:
        """(longest first, failed) since the last take; starts the next minute empty."""
        with self._lock:
            longest, self._longest = self._longest, []
            failed, self._failed = self._failed, {}
        return sorted(longest, reverse=True), list(failed)


class HistoryRecorder:
    """Samples the fleet once a minute and appends one point per minute (one writer per fleet)."""

    def __init__(
        self,
        totals: Callable[[], Totals] = production_monitor.totals,
        is_writer: Callable[[], bool] = production_monitor.evaluates_alerts,
        alerts: Callable[[], list[Alert]] = lambda: alert_manager.lifecycle.history(100),
    ) -> None:
        self._totals = totals
        self._is_writer = is_writer
        self._alerts = alerts
        self.ended = _EndedCalls()
        self._last: _Sample | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.directory: Path | None = None
        self.days = 7

    # -- component --------------------------------------------------------------------------

    def start(self, settings: Settings) -> None:
        """Component start: a fresh baseline and a thread waking at each minute's turn."""
        self.directory = settings.log_dir / "history"
        self.days = settings.history_days
        self._last = None
        self.ended.take()
        production_monitor.remove_call_listener(self.ended.on_start, self.ended.on_end)
        production_monitor.add_call_listener(self.ended.on_start, self.ended.on_end)
        self._stop = stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(stop,), daemon=True,
                                        name="callwatch-history")
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Component stop; a minute not yet whole is not written."""
        self._stop.set()
        production_monitor.remove_call_listener(self.ended.on_start, self.ended.on_end)
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        wait = 0.0  # the first sample is the baseline of the first minute
        while not stop.wait(wait):
            try:
                self.sample(time.time())
            except Exception:  # the recorder must outlive any one failure
                log.exception("History sample failed")
            wait = POINT_SEC - time.time() % POINT_SEC

    # -- writing ----------------------------------------------------------------------------

    def sample(self, now: float) -> dict[str, Any] | None:
        """Take a sample; return (and, in the writing worker, store) the point it closes."""
        totals = self._totals()
        current = _Sample.of(totals, now)
        with self._lock:
            last, self._last = self._last, current
        if last is None or now - last.at < POINT_SEC / 2:
            return None
        point = self._point(last, current, totals)
        if self._is_writer():
            self._append(point, now)
            self._prune(now)
        elif point["failed_calls"] or point["longest_calls"]:
            # Calls end in every worker: the others add theirs to the writer's minute.
            self._append({"t": point["t"], "worker": os.getpid(),
                          **{name: point[name] for name in _CALL_LISTS}}, now)
        return point

    def _point(self, last: _Sample, current: _Sample, totals: Totals) -> dict[str, Any]:
        begin, end = last.at, current.at
        failed = max(0, current.failed - last.failed)
        ended = failed + max(0, current.succeeded - last.succeeded)
        response = _minus(current.response, last.response)
        stages = {name: _minus(hist, last.operations.get(name))
                  for name, hist in current.operations.items()}
        busiest = sorted((h for h in stages.items() if h[1].count), key=lambda h: -h[1].count)
        events = [a for a in self._alerts() if begin <= a.timestamp.timestamp() < end]
        longest, ended_failed = self.ended.take()
        failed_calls = ended_failed + [e.get("call_id") for e in totals.recent_errors
                                       if begin <= (_epoch(e.get("timestamp")) or 0.0) < end]
        return {
            "t": stamp(round(end / POINT_SEC) * POINT_SEC - POINT_SEC),
            "calls": max(0, current.started - last.started),
            "ended": ended,
            "failed": failed,
            "error_rate": error_rate(failed, ended),
            "turns": response.count,
            "p50_ms": _percentile(response, 0.5),
            "p95_ms": _percentile(response, 0.95),
            "p99_ms": _percentile(response, 0.99),
            "active_calls": totals.active,
            "stages_p95_ms": {name: _percentile(h, 0.95) for name, h in busiest[:MAX_STAGES]},
            "alerts_fired": sum(1 for a in events if a.status == "firing"),
            "alerts": [{"t": stamp(a.timestamp.timestamp()), "status": a.status,
                        "severity": a.severity, "title": a.title}
                       for a in events[:MAX_LISTED]],
            "failed_calls": list(dict.fromkeys(c for c in failed_calls if c))[:MAX_LISTED],
            "longest_calls": [{"call_id": name, "duration_sec": round(seconds, 1)}
                              for seconds, name in longest],
        }

    def _append(self, point: Mapping[str, Any], now: float) -> None:
        directory = self.directory
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        day = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")
        path = directory / (day + _SUFFIX)
        line = orjson.dumps(point) + b"\n"
        with open(path, "ab") as file:
            if file.tell() and not _ends_with_newline(path):
                line = b"\n" + line  # a torn last line stays a lone bad line
            file.write(line)

    def _prune(self, now: float) -> None:
        directory = self.directory
        if directory is None:
            return
        oldest = (datetime.fromtimestamp(now, timezone.utc) - timedelta(days=self.days)).date()
        for path in directory.glob("*" + _SUFFIX):
            day = _day_of(path)
            if day is not None and day < oldest:
                path.unlink(missing_ok=True)

    # -- reading ----------------------------------------------------------------------------

    def read(self, minutes: int, now: float | None = None) -> list[dict[str, Any]]:
        """The points of the last ``minutes`` minutes, oldest first (newest last)."""
        directory = self.directory
        if directory is None or not directory.is_dir():
            return []
        end = time.time() if now is None else now
        since = (end // POINT_SEC - minutes) * POINT_SEC  # whole minutes, the current one open
        first_day = datetime.fromtimestamp(since, timezone.utc).date()
        files = sorted(p for p in directory.glob("*" + _SUFFIX)
                       if (day := _day_of(p)) is not None and day >= first_day)
        points: dict[str, dict[str, Any]] = {}
        notes: list[dict[str, Any]] = []
        for line in _lines(files):
            if (_epoch(line["t"]) or 0.0) >= since:
                if "calls" in line:
                    points[line["t"]] = line
                else:
                    notes.append(line)
        for note in notes:  # another worker's calls of a minute the writer wrote
            point = points.get(note["t"])
            if point is not None:
                _add_calls(point, note)
        return [points[t] for t in sorted(points)]


def _add_calls(point: dict[str, Any], note: Mapping[str, Any]) -> None:
    def both(name: str) -> list[Any]:
        return [*(point.get(name) or []), *(note.get(name) or [])]

    failed = [c for c in both("failed_calls") if isinstance(c, str)]
    point["failed_calls"] = list(dict.fromkeys(failed))[:MAX_LISTED]
    longest = [c for c in both("longest_calls")
               if isinstance(c, dict) and isinstance(c.get("duration_sec"), (int, float))]
    point["longest_calls"] = sorted(longest, key=lambda c: -c["duration_sec"])[:MAX_LISTED]


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, 2)
        return file.read(1) == b"\n"


def _day_of(path: Path) -> Any:
    try:
        return datetime.strptime(path.name.removesuffix(_SUFFIX), "%Y-%m-%d").date()
    except ValueError:
        return None


def _lines(files: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for line in data.splitlines():
            try:
                point = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(point, dict) and isinstance(point.get("t"), str):
                yield point


def aggregate(points: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """Points of ``step`` minutes each: counts summed, latencies and load at their worst minute."""
    if step <= 1:
        return points
    buckets: dict[int, list[dict[str, Any]]] = {}
    for point in points:
        epoch = _epoch(point["t"]) or 0.0
        buckets.setdefault(int(epoch // (step * POINT_SEC)), []).append(point)
    merged = []
    for key in sorted(buckets):
        group = buckets[key]
        sums = {name: sum(p.get(name) or 0 for p in group)
                for name in ("calls", "ended", "failed", "turns", "alerts_fired")}
        stages: dict[str, float] = {}
        for p in group:
            for name, value in (p.get("stages_p95_ms") or {}).items():
                if value is not None:
                    stages[name] = max(stages.get(name, 0.0), value)
        merged.append({
            "t": stamp(key * step * POINT_SEC),
            **sums,
            "error_rate": error_rate(sums["failed"], sums["ended"]),
            **{name: _worst(group, name) for name in _WORST},
            "stages_p95_ms": stages,
            "alerts": [a for p in group for a in p.get("alerts") or []][:MAX_LISTED],
            "failed_calls": [c for p in group for c in p.get("failed_calls") or []][:MAX_LISTED],
            "longest_calls": sorted((c for p in group for c in p.get("longest_calls") or []),
                                    key=lambda c: -c["duration_sec"])[:MAX_LISTED],
        })
    return merged


def _worst(group: list[dict[str, Any]], name: str) -> Any:
    values = [p[name] for p in group if isinstance(p.get(name), (int, float))]
    return max(values) if values else None


recorder = HistoryRecorder()
_runtime.register(_runtime.Component("history", start=recorder.start, stop=recorder.stop,
                                     priority=60))
