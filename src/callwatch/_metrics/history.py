"""Cumulative call counts once a second: what the recent windows are measured against.

A window is "now minus then": the totals now less the totals recorded at the
window's start. Rows live in a ring of doubles, in a file shared by the fleet
(so a worker that just started, or that replaced an exited one, reads the
windows of the whole fleet) or in anonymous memory for a lone process.
A row is ``[second, started, succeeded, failed, response sum, response buckets...]``;
its second is written last (and cleared first), so a reader never takes a half
written row for a whole one.
"""

from __future__ import annotations

import array
import contextlib
import math
import mmap
import os
from pathlib import Path

from callwatch._metrics.histogram import RESPONSE_EDGES_MS, Histogram
from callwatch._metrics.snapshot import Totals, Window

__all__ = ["History"]

_MAGIC = 0x63776831  # "cwh1"
_HEADER = 4  # magic, rows, row width, run start (epoch seconds)
_WIDTH = 5 + len(RESPONSE_EDGES_MS) + 1
_SEARCH = 10  # seconds searched around a missing row


class History:
    """The ring of per-second rows; ``path=None`` keeps it in this process's memory."""

    def __init__(self, seconds: float, run_started: float, path: Path | None = None) -> None:
        self.rows = int(seconds) + 2 * _SEARCH
        size = (_HEADER + self.rows * _WIDTH) * 8
        header = [float(_MAGIC), float(self.rows), float(_WIDTH), run_started]
        if path is None:
            self._map = mmap.mmap(-1, size)
            self._map[:32] = _doubles(header)
        else:
            self._map = _shared_map(path, size, _doubles(header))
        self._view = memoryview(self._map).cast("d")
        self.run_started = self._view[3]

    def has(self, second: int) -> bool:
        return self._view[self._at(second)] == second

    def record(self, second: int, totals: Totals) -> None:
        """Keep ``totals`` as the row of ``second`` (callers serialise writers)."""
        start = self._at(second)
        response = totals.hists.get("response_time_seconds", {}).get("")
        counts = response.counts if response is not None else [0] * (len(RESPONSE_EDGES_MS) + 1)
        row = [float(totals.started), float(totals.succeeded), float(totals.failed),
               response.sum if response is not None else 0.0, *map(float, counts)]
        view = self._view
        view[start] = -1.0
        view[start + 1:start + _WIDTH] = memoryview(_doubles(row)).cast("d")
        view[start] = float(second)

    def windows(self, now: float, totals: Totals, seconds: tuple[float, float]) -> None:
        """Fill ``totals.minute``, ``totals.recent`` and ``totals.recent_response``."""
        minute, recent = (self._window(now - s, totals) for s in seconds)
        totals.minute, totals.recent = minute[0], recent[0]
        totals.recent_response = recent[1]

    def _window(self, since: float, totals: Totals) -> tuple[Window, Histogram]:
        base = self._row_at(since)
        response = totals.hists.get("response_time_seconds", {}).get("")
        recent = response.copy() if response is not None else Histogram(RESPONSE_EDGES_MS)
        if base is None:  # the run began within the window: everything counts
            return Window(totals.started, totals.succeeded, totals.failed), recent
        window = Window(totals.started - int(base[0]), totals.succeeded - int(base[1]),
                        totals.failed - int(base[2]))
        recent.sum -= base[3]
        recent.counts = [max(n - int(m), 0) for n, m in zip(recent.counts, base[4:], strict=True)]
        recent.count = sum(recent.counts)
        return window, recent

    def _row_at(self, since: float) -> list[float] | None:
        """The newest whole row at or before ``since``; None when the run is younger."""
        if since < self.run_started:
            return None
        second = math.floor(since)
        for candidate in range(second, second - _SEARCH, -1):
            row = self._read(candidate)
            if row is not None:
                return row
        # No sample near the window's start (the sampler was held up): the nearest one.
        seconds = [int(self._view[self._at(0) + i * _WIDTH]) for i in range(self.rows)]
        older = [s for s in seconds if 0 < s <= second]
        newer = [s for s in seconds if s > second]
        for candidate in ([max(older)] if older else []) + ([min(newer)] if newer else []):
            row = self._read(candidate)
            if row is not None:
                return row
        return None

    def _read(self, second: int) -> list[float] | None:
        start = self._at(second)
        view = self._view
        if view[start] != second:
            return None
        row: list[float] = list(map(float, view[start + 1:start + _WIDTH].tolist()))
        return row if view[start] == second else None

    def _at(self, second: int) -> int:
        return _HEADER + (second % self.rows) * _WIDTH

    def close(self) -> None:
        self._view.release()
        with contextlib.suppress(BufferError):
            self._map.close()


def _shared_map(path: Path, size: int, header: bytes) -> mmap.mmap:
    """Map the fleet's ring, creating it when absent, foreign or of another layout.

    A replacement is a new file renamed into place (callers hold the fleet's lock):
    truncating a file other workers have mapped would crash them with SIGBUS.
    """
    try:
        fd = os.open(path, os.O_RDWR)
        if os.fstat(fd).st_size != size or os.pread(fd, 24, 0) != header[:24]:
            os.close(fd)
            fd = -1
    except OSError:
        fd = -1
    if fd < 0:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as out:
            out.truncate(size)
            out.write(header)
        os.replace(temporary, path)
        fd = os.open(path, os.O_RDWR)
    try:
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


def _doubles(values: list[float]) -> bytes:
    return array.array("d", values).tobytes()
