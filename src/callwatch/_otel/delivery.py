"""What became of exported telemetry: in flight, sent, or dropped (counted, said once).

An outage of the collector is one episode: its first failure is said on stderr
and as a WARNING record, its end says how much was lost; nothing is said per
batch. What shutdown comes too early for is not an outage: it is said once, on
stderr, when the export stops. Dropped records and spans are added to
``STATS.otlp_dropped``, which the metrics expose beside the other dropped counts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from callwatch._logging.stats import STATS

__all__ = ["Delivery", "say"]


class Delivery:
    """Counters of one exporting setup, shared by its exporters and the export thread."""

    def __init__(self, endpoint: str = "the collector") -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self.delivered: dict[str, int] = {}  # taken by the collector, by unit
        self._failing = False
        self._episode_dropped = 0
        self._cut_short = 0  # dropped because shutdown came first
        self._forgotten = False  # a forked child's copy of its parent's: counts nothing

    # -- the export thread ------------------------------------------------------------------

    def has_room(self, unit: str, capacity: int) -> bool:
        """True while the batch processor for ``unit`` can take one more without dropping."""
        return self._in_flight.get(unit, 0) < capacity

    def in_flight(self) -> int:
        """Items handed to the exporters and neither sent nor dropped yet."""
        return sum(self._in_flight.values())

    def accepted(self, unit: str) -> None:
        with self._lock:
            self._in_flight[unit] = self._in_flight.get(unit, 0) + 1

    def dropped(self, count: int, unit: str, reason: str) -> None:
        """``count`` items never handed to an exporter (a full queue, a stopped export)."""
        if count:
            self._lose(count, unit, reason)

    # -- the exporters' threads --------------------------------------------------------------

    def sent(self, count: int, unit: str = "") -> None:
        if self._forgotten:
            return
        with self._lock:
            if unit:
                self.delivered[unit] = self.delivered.get(unit, 0) + self._settle(count, unit)
            recovered = self._failing
            self._failing = False
            lost, self._episode_dropped = self._episode_dropped, 0
        if recovered:
            say(f"OTLP export to {self.endpoint} works again after dropping {lost} item(s)")
            _warn("OTLP export works again", {"dropped_items": lost, "endpoint": self.endpoint})

    def failed(self, count: int, unit: str) -> None:
        with self._lock:
            count = self._settle(count, unit) if count else 0
        self._lose(count, unit, "the collector did not take them")

    def _settle(self, count: int, unit: str) -> int:
        """How many of ``count`` finished items were still in flight (the rest were abandoned
        at shutdown and counted then: a batch that ends later is not counted twice)."""
        in_flight = self._in_flight.get(unit, 0)
        settled = min(count, in_flight)
        self._in_flight[unit] = in_flight - settled
        return settled

    # -- shutdown ---------------------------------------------------------------------------

    def cut_short(self, count: int) -> None:
        """``count`` items shutdown came too early for: counted now, said once by abandon."""
        if count and not self._forgotten:
            STATS.add("otlp_dropped", count)
        with self._lock:
            self._cut_short += count

    def forget(self) -> None:
        """A forked child's copy: the parent's exports are the parent's to count and to say.

        The lock is replaced, not taken: a parent's thread may have held it at the fork.
        """
        self._lock = threading.Lock()
        self._in_flight = {}
        self._cut_short = 0
        self._forgotten = True

    def abandon(self) -> None:
        """Count what is still in flight once the exporters were given up on, and say the loss."""
        with self._lock:
            pending, self._in_flight = dict(self._in_flight), {}
        self.cut_short(sum(pending.values()))
        with self._lock:
            lost, self._cut_short = self._cut_short, 0
        if lost:
            say(f"OTLP export to {self.endpoint}: {lost} item(s) not sent before shutdown "
                "(dropped and counted)")

    def internal_error(self) -> None:
        STATS.add("internal_errors")

    def _lose(self, count: int, unit: str, reason: str) -> None:
        if self._forgotten:
            return
        with self._lock:
            first = not self._failing
            self._failing = True
            self._episode_dropped += count
        if count:
            STATS.add("otlp_dropped", count)
        if first:
            say(f"OTLP export to {self.endpoint} failing ({reason}): {unit} are dropped "
                "and counted until it works again")
            _warn("OTLP export failing: telemetry is dropped and counted until it works again",
                  {"endpoint": self.endpoint, "reason": reason, "unit": unit})


def say(message: str) -> None:
    """A message about callwatch itself, on stderr, bypassing the pipeline."""
    with contextlib.suppress(OSError):
        os.write(2, f"callwatch: {message}\n".encode())


def _warn(message: str, extra: dict[str, object]) -> None:
    from callwatch._logging import pipeline  # noqa: PLC0415 - the pipeline imports us

    current = pipeline.current
    if current is not None:
        current.emit(logging.WARNING, "callwatch", "otlp_export", 0, message, dict(extra))
