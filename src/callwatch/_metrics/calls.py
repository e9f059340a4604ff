"""Call counts, active calls, durations and response times: bounded whatever the traffic.

Only live calls are held (call id → start time); a bounded memory of recently
ended ids tells a second end from an end without a start. The recent windows
come from the per-second history (``history.py``), so the hot path does no
window bookkeeping at all. In a fleet, every count is also written to this
worker's shared file (``store.py``) before the recording call returns.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Hashable
from time import monotonic

from callwatch._metrics.histogram import CALL_DURATION_EDGES_SEC, RESPONSE_EDGES_MS, Histogram
from callwatch._metrics.specs import key
from callwatch._metrics.store import Durable

__all__ = ["Anomaly", "CallStats", "EndListener", "StartListener", "as_key", "process_calls"]

StartListener = Callable[[Hashable], object]
EndListener = Callable[[Hashable, "float | None", bool], object]

_INF = float("inf")
RECENTLY_ENDED = 4096
_STARTED = key("calls_started")
_OUTCOME = {True: key("calls_ended", "success"), False: key("calls_ended", "failure")}



def _histogram_keys(name: str, bounds: tuple[float, ...]) -> tuple[list[str], str, str]:
    """(bucket keys, sum key, max key) of a histogram in the shared file."""
    return ([key(name, "", f"b{i}") for i in range(len(bounds) + 1)],
            key(name, "", "sum"), key(name, "", "max"))


_DURATION_KEYS = _histogram_keys("call_duration_seconds", CALL_DURATION_EDGES_SEC)
_RESPONSE_KEYS = _histogram_keys("response_time_seconds", RESPONSE_EDGES_MS)


class Anomaly:
    """Kinds of bad input, the ``kind`` label of ``callwatch_call_anomalies_total``."""

    DOUBLE_START = "double_start"
    DOUBLE_END = "double_end"
    END_WITHOUT_START = "end_without_start"
    INVALID_DURATION = "invalid_duration"
    INVALID_RESPONSE_TIME = "invalid_response_time"
    REAPED = "reaped"


class CallStats:
    """Everything about calls in this process.

    Writes take no lock: each is a handful of dict operations and integer or
    float increments, which CPython's GIL does not interleave (since 3.10 a
    thread switch happens only at calls and backward jumps). This keeps a
    call's start and end near the cost of two prometheus_client increments.
    """

    def __init__(self) -> None:
        self.on_anomaly: Callable[[str, object], None] = lambda kind, call_id: None
        # (on_start, on_end) pairs; empty, they cost one truth test per write.
        self.listeners: tuple[tuple[StartListener, EndListener], ...] = ()
        self.on_listener_error: Callable[[BaseException], None] = lambda exc: None
        self.durable: Durable | None = None  # this worker's shared file, in a fleet
        self.reset()

    def reset(self) -> None:
        """Forget everything, in place (the face's functions are bound to this object)."""
        self._active: dict[Hashable, float] = {}  # call id -> monotonic start, oldest first
        # Recently ended ids, oldest first. An OrderedDict, because popping the oldest key of a
        # plain dict scans the deleted slots before it: O(n) per call under FIFO churn.
        self._ended: OrderedDict[Hashable, None] = OrderedDict()
        self.started = 0
        self.succeeded = 0
        self.failed = 0
        self.duration = Histogram(CALL_DURATION_EDGES_SEC)
        self.response = Histogram(RESPONSE_EDGES_MS)
        self.anomalies: dict[str, int] = {}

    # -- writes ---------------------------------------------------------------------------

    def start(self, call_id: Hashable) -> None:
        """A call began. A second start of a live call is ignored (the first start is kept)."""
        active = self._active
        try:
            known = call_id in active
        except TypeError:  # unhashable (a dict, a list): counted under its text
            call_id = as_key(call_id)
            known = call_id in active
        if known:
            self._anomaly(Anomaly.DOUBLE_START, call_id)
            return
        active[call_id] = monotonic()
        durable = self.durable
        if durable is None:
            self.started += 1
        else:
            with durable.lock:
                self.started += 1
                durable.write(_STARTED, self.started)
        if self.listeners:
            self._notify(0, call_id, None, True)

    def end(
        self,
        call_id: Hashable,
        duration_sec: float | None = None,
        success: bool = True,
        *,
        duration: float | None = None,
    ) -> None:
        """A call ended after ``duration_sec`` seconds (measured from its start when omitted).

        A second end is ignored. An end without a start counts as a call of its
        own. A negative or non-finite duration is replaced by the measured one
        when the start was seen, otherwise the call is counted without a duration.
        """
        try:
            started_at = self._active.pop(call_id, None)
        except TypeError:  # unhashable: counted under its text, as its start was
            call_id = as_key(call_id)
            started_at = self._active.pop(call_id, None)
        if started_at is None:
            if call_id in self._ended:
                self._anomaly(Anomaly.DOUBLE_END, call_id)
                return
            self._anomaly(Anomaly.END_WITHOUT_START, call_id)
        ended = self._ended
        ended[call_id] = None
        if len(ended) > RECENTLY_ENDED:
            ended.popitem(last=False)
        if duration_sec is None:
            duration_sec = duration
        if duration_sec is None:
            if started_at is not None:
                duration_sec = monotonic() - started_at
        else:
            if type(duration_sec) is not float:
                duration_sec = _as_float(duration_sec)
            if not 0.0 <= duration_sec < _INF:
                self._anomaly(Anomaly.INVALID_DURATION, call_id)
                duration_sec = None if started_at is None else monotonic() - started_at
        durable = self.durable
        if durable is None:
            self._count_end(started_at is None, bool(success), duration_sec)
        else:
            with durable.lock:
                self._count_end(started_at is None, bool(success), duration_sec, durable)
        if self.listeners:
            self._notify(1, call_id, duration_sec, bool(success))

    def _count_end(
        self, unstarted: bool, success: bool, duration_sec: float | None,
        durable: Durable | None = None,
    ) -> None:
        """Count one ended call (and write what changed to the shared file, in a fleet)."""
        if unstarted:
            self.started += 1
        if success:
            self.succeeded += 1
        else:
            self.failed += 1
        if durable is not None:
            if unstarted:
                durable.write(_STARTED, self.started)
            durable.write(_OUTCOME[success], self.succeeded if success else self.failed)
        if duration_sec is not None:
            self._observe(self.duration, duration_sec, durable, _DURATION_KEYS)

    def response_time(self, latency_ms: float, call_id: str | None = None) -> None:
        """One agent turn's latency in ms; negative or non-finite values are ignored."""
        if type(latency_ms) is not float:
            latency_ms = _as_float(latency_ms)
        if not 0.0 <= latency_ms < _INF:
            self._anomaly(Anomaly.INVALID_RESPONSE_TIME, call_id)
            return
        durable = self.durable
        if durable is None:
            self._observe(self.response, latency_ms, None, _RESPONSE_KEYS)
        else:
            with durable.lock:
                self._observe(self.response, latency_ms, durable, _RESPONSE_KEYS)

    @staticmethod
    def _observe(
        hist: Histogram, value: float, durable: Durable | None,
        keys: tuple[list[str], str, str],
    ) -> None:
        """Histogram.observe, inlined (this is the hot path), plus the shared file's copy."""
        index = bisect_left(hist.bounds, value)
        hist.counts[index] += 1
        hist.sum += value
        hist.count += 1
        if value > hist.max:
            hist.max = value
            if durable is not None:
                durable.write(keys[2], value)
        if durable is not None:
            durable.write(keys[0][index], hist.counts[index])
            durable.write(keys[1], hist.sum)

    def add_listener(self, on_start: StartListener, on_end: EndListener) -> None:
        """Call ``on_start(call_id)`` at each call start and ``on_end(call_id, duration, ok)``."""
        self.listeners = (*self.listeners, (on_start, on_end))

    def remove_listener(self, on_start: StartListener, on_end: EndListener) -> bool:
        """Remove a listener pair added before; False when it was not registered."""
        pairs = self.listeners
        self.listeners = tuple(p for p in pairs if p != (on_start, on_end))
        return len(self.listeners) != len(pairs)

    def _notify(self, which: int, call_id: Hashable, duration: float | None, ok: bool) -> None:
        """Tell each listener; a failing listener never reaches the recording caller."""
        for pair in self.listeners:
            try:
                if which == 0:
                    pair[0](call_id)
                else:
                    pair[1](call_id, duration, ok)
            except Exception as exc:  # a listener's bug stays with the listener
                self.on_listener_error(exc)

    def _anomaly(self, kind: str, call_id: object) -> None:
        self._count_anomaly(kind)
        self.on_anomaly(kind, call_id)

    def _count_anomaly(self, kind: str) -> None:
        durable = self.durable
        if durable is None:
            self.anomalies[kind] = self.anomalies.get(kind, 0) + 1
            return
        with durable.lock:
            self.anomalies[kind] = count = self.anomalies.get(kind, 0) + 1
            durable.write(key("call_anomalies", kind), count)

    # -- background -----------------------------------------------------------------------

    def reap(self, max_age_sec: float) -> list[tuple[Hashable, float]]:
        """End as failed every call live longer than ``max_age_sec``; returns (id, age) each."""
        now = monotonic()
        reaped: list[tuple[Hashable, float]] = []
        active = self._active
        while active:
            try:
                call_id, started_at = next(iter(active.items()))
            except (StopIteration, RuntimeError):  # emptied or changed by another thread
                break
            if now - started_at < max_age_sec:
                break  # ids are held in start order: every later call is younger
            if active.pop(call_id, None) is None:
                continue  # ended meanwhile
            self._ended[call_id] = None
            durable = self.durable
            if durable is None:
                self._count_end(False, False, None)
            else:
                with durable.lock:
                    self._count_end(False, False, None, durable)
            self._count_anomaly(Anomaly.REAPED)
            reaped.append((call_id, now - started_at))
        while len(self._ended) > RECENTLY_ENDED:
            self._ended.popitem(last=False)
        return reaped

    # -- reads ----------------------------------------------------------------------------

    @property
    def active(self) -> int:
        return len(self._active)

    def copy_histograms(self) -> tuple[Histogram, Histogram]:
        return self.duration.copy(), self.response.copy()

    def active_ids(self, limit: int = 100) -> list[Hashable]:
        """Up to ``limit`` ids of calls in progress, oldest first."""
        try:
            return list(self._active)[:limit]
        except RuntimeError:  # changed by another thread meanwhile: next time
            return []

    def counters(self) -> tuple[int, int, int, int, dict[str, int]]:
        """(started, succeeded, failed, active, anomalies)."""
        return (self.started, self.succeeded, self.failed, len(self._active),
                dict(self.anomalies))


def _as_float(value: object) -> float:
    """A number given as int, str or Decimal; NaN (invalid) for anything else."""
    try:
        return float(value)  # type: ignore[arg-type]
    except Exception:  # TypeError, ValueError, OverflowError, or whatever __float__ raises
        return math.nan


def as_key(value: object) -> str:
    """A hashable, bounded stand-in for an unhashable id (its text, or its type's name)."""
    try:
        text = str(value)
    except Exception:  # an object whose __str__ raises
        text = f"<{type(value).__name__}>"
    return text[:200]


# This process's calls. The monitor records into it; an exporter listens to it without
# importing the monitor, which logs, so it can start while the logger is being imported.
process_calls = CallStats()
