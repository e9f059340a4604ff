"""Call counts, active calls, durations and response times: bounded whatever the traffic.

Only live calls are held (call id → start time); a bounded memory of recently
ended ids tells a second end from an end without a start. Calls-per-minute and
the error-rate window come from a ring of cumulative counts taken once a second
by the sampler, so the hot path does no window bookkeeping at all.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from time import monotonic

from callwatch._metrics.histogram import CALL_DURATION_EDGES_SEC, RESPONSE_EDGES_MS, Histogram

__all__ = ["Anomaly", "CallStats", "EndListener", "StartListener", "Window"]

StartListener = Callable[[Hashable], object]
EndListener = Callable[[Hashable, "float | None", bool], object]

_INF = float("inf")
RECENTLY_ENDED = 4096


class Anomaly:
    """Kinds of bad input, the ``kind`` label of ``callwatch_call_anomalies_total``."""

    DOUBLE_START = "double_start"
    DOUBLE_END = "double_end"
    END_WITHOUT_START = "end_without_start"
    INVALID_DURATION = "invalid_duration"
    INVALID_RESPONSE_TIME = "invalid_response_time"
    REAPED = "reaped"


@dataclass
class Window:
    """Calls started, succeeded and failed within a recent window."""

    started: int = 0
    succeeded: int = 0
    failed: int = 0

    def add(self, other: Window) -> None:
        self.started += other.started
        self.succeeded += other.succeeded
        self.failed += other.failed


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
        self.history_sec = 300.0
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
        self._tick_times: deque[float] = deque([monotonic()])
        self._tick_counts: deque[tuple[int, int, int]] = deque([(0, 0, 0)])
        self._tick_responses: deque[tuple[tuple[int, ...], float]] = deque(
            [((0,) * len(self.response.counts), 0.0)]
        )

    # -- writes ---------------------------------------------------------------------------

    def start(self, call_id: Hashable) -> None:
        """A call began. A second start of a live call is ignored (the first start is kept)."""
        active = self._active
        if call_id in active:
            self._anomaly(Anomaly.DOUBLE_START, call_id)
            return
        active[call_id] = monotonic()
        self.started += 1
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
        started_at = self._active.pop(call_id, None)
        if started_at is None:
            if call_id in self._ended:
                self._anomaly(Anomaly.DOUBLE_END, call_id)
                return
            self.started += 1
            self._anomaly(Anomaly.END_WITHOUT_START, call_id)
        ended = self._ended
        ended[call_id] = None
        if len(ended) > RECENTLY_ENDED:
            ended.popitem(last=False)
        if success:
            self.succeeded += 1
        else:
            self.failed += 1
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
        if duration_sec is not None:
            hist = self.duration  # Histogram.observe, inlined: this is the hot path
            hist.counts[bisect_left(hist.bounds, duration_sec)] += 1
            hist.sum += duration_sec
            hist.count += 1
            if duration_sec > hist.max:  # noqa: PLR1730  (cheaper than max())
                hist.max = duration_sec
        if self.listeners:
            self._notify(1, call_id, duration_sec, bool(success))

    def response_time(self, latency_ms: float, call_id: str | None = None) -> None:
        """One agent turn's latency in ms; negative or non-finite values are ignored."""
        if type(latency_ms) is not float:
            latency_ms = _as_float(latency_ms)
        if not 0.0 <= latency_ms < _INF:
            self._anomaly(Anomaly.INVALID_RESPONSE_TIME, call_id)
            return
        hist = self.response
        hist.counts[bisect_left(hist.bounds, latency_ms)] += 1
        hist.sum += latency_ms
        hist.count += 1
        if latency_ms > hist.max:  # noqa: PLR1730
            hist.max = latency_ms

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
        self.anomalies[kind] = self.anomalies.get(kind, 0) + 1
        self.on_anomaly(kind, call_id)

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
            self.failed += 1
            self.anomalies[Anomaly.REAPED] = self.anomalies.get(Anomaly.REAPED, 0) + 1
            reaped.append((call_id, now - started_at))
        while len(self._ended) > RECENTLY_ENDED:
            self._ended.popitem(last=False)
        return reaped

    def tick(self) -> None:
        """Remember the cumulative counts now (once a second) for the recent windows."""
        now = monotonic()
        counts = (self.started, self.succeeded, self.failed)
        self._tick_times.append(now)
        self._tick_counts.append(counts)
        self._tick_responses.append((tuple(self.response.counts), self.response.sum))
        horizon = now - self.history_sec - 2.0
        while len(self._tick_times) > 2 and self._tick_times[1] < horizon:
            self._tick_times.popleft()
            self._tick_counts.popleft()
            self._tick_responses.popleft()

    # -- reads ----------------------------------------------------------------------------

    @property
    def active(self) -> int:
        return len(self._active)

    def window(self, seconds: float) -> Window:
        """Calls in the last ``seconds`` (to the sampler's one-second resolution)."""
        now = monotonic()
        current = (self.started, self.succeeded, self.failed)
        times, counts = self._tick_times, self._tick_counts
        # The newest tick at or before the window's start; the oldest one if history is shorter.
        index = max(bisect_right(times, now - seconds) - 1, 0)
        base = counts[index]
        return Window(current[0] - base[0], current[1] - base[1], current[2] - base[2])

    def recent_response(self, seconds: float) -> Histogram:
        """Response times of the last ``seconds`` (to the sampler's one-second resolution).

        Its maximum is the lifetime one: an upper bound for the top bucket only.
        """
        recent = self.response.copy()
        if self._tick_times:
            index = max(bisect_right(self._tick_times, monotonic() - seconds) - 1, 0)
            base_counts, base_sum = self._tick_responses[index]
            recent.counts = [n - m for n, m in zip(recent.counts, base_counts, strict=True)]
            recent.count = sum(recent.counts)
            recent.sum -= base_sum
        return recent

    def copy_histograms(self) -> tuple[Histogram, Histogram]:
        return self.duration.copy(), self.response.copy()

    def counters(self) -> tuple[int, int, int, int, dict[str, int]]:
        """(started, succeeded, failed, active, anomalies)."""
        return (self.started, self.succeeded, self.failed, len(self._active),
                dict(self.anomalies))


def _as_float(value: object) -> float:
    """A number given as int, str or Decimal; NaN (invalid) for anything else."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
