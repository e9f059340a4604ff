"""The writer: a bounded queue drained by one thread that batches lines into files.

Callers hand over rendered lines. DEBUG/INFO/WARNING go through :meth:`Writer.submit`,
which never touches the disk: the line joins a bounded queue that the writer
thread drains at least every ``flush_interval_ms``. ERROR/CRITICAL and audit
records go through :meth:`Writer.write_now`, which drains what is queued and
writes the record before returning, so a SIGKILL right after cannot lose it and
each file keeps the order in which this process logged.

The writer alone decides what is queued, dropped or written, counts it, and
writes its own WARNING when records were lost: nothing it does calls back up
into the pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from callwatch._logging.console import pretty
from callwatch._logging.files import DayFiles, log_path
from callwatch._logging.records import Origin, own_record
from callwatch._logging.render import render
from callwatch._logging.stats import STATS
from callwatch.config import Settings

__all__ = [
    "APP",
    "BATCH_SINKS",
    "CONSOLE",
    "ERRORS",
    "HANDLERS",
    "PERFORMANCE",
    "AttachedHandler",
    "Item",
    "Writer",
]

# Where an item goes: a bit per sink.
APP, ERRORS, PERFORMANCE, CONSOLE, HANDLERS = 1, 2, 4, 8, 16
_FILE_SINKS = ((APP, "app"), (ERRORS, "errors"), (PERFORMANCE, "performance"))
_BATCH = 8192


# One rendered record on its way to the sinks: (sinks, day, line, console, levelno).
# A plain tuple: building a NamedTuple costs more than the rest of the hand-over.
Item = tuple[int, str, bytes, "bytes | None", int]

# Exporters fed every written batch on the writer thread (the OTLP exporter registers here).
# Each takes the batch's items and must only hand them over: it runs with the writer's lock held.
BATCH_SINKS: list[Callable[[list[Item]], None]] = []


class Writer:
    """Owns the queue, the writer thread, the open files, the console and stdlib handlers."""

    def __init__(
        self,
        settings: Settings,
        handlers: list[AttachedHandler],
        origin: Origin,
        json_console: bool | None,
        colour: bool = False,
    ) -> None:
        self.queue: deque[Item] = deque()
        self._capacity = settings.queue_size
        self._high_water = max(1, min(_BATCH, settings.queue_size // 4))
        self._block = settings.queue_policy == "block"
        self._block_sec = settings.queue_block_ms / 1000.0
        self._interval = settings.flush_interval_ms / 1000.0
        self._files = DayFiles(settings.log_dir) if settings.files else None
        self._handlers = handlers
        # For the writer's own WARNINGs: who writes, and how the console shows them.
        self._origin = origin
        self._notices = logging.getLevelName(settings.log_level) <= logging.WARNING
        self._json_console = json_console
        self._colour = colour
        self._lock = threading.RLock()
        self._drop_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._queue_drops = 0  # drops of the current queue-full episode
        self._disk_drops = 0  # lines lost in the current write-failure episode
        self._failing = False  # files unwritable right now (already said on stderr)
        self._in_writer = threading.local()
        self._thread = threading.Thread(target=self._run, name="callwatch-writer", daemon=True)
        self._thread.start()

    # -- caller side -------------------------------------------------------------

    def submit(self, item: Item) -> None:
        """Queue a line without waiting on the disk; the queue-full policy decides.

        The hot path of every DEBUG/INFO/WARNING record: kept to a few steps.
        """
        queue = self.queue
        if len(queue) < self._capacity or self._make_room():
            queue.append(item)
            if len(queue) >= self._high_water and not self._wake.is_set():
                self._wake.set()
        else:
            self._drop_queued()

    def write_now(self, item: Item) -> None:
        """Write everything queued, then ``item``, before returning (durable records)."""
        if getattr(self._in_writer, "active", False):
            self.queue.append(item)  # logged by a handler from inside a batch
            return
        with self._lock:
            self._drain_locked()
            self._write_batch([item])

    def flush(self) -> None:
        """Hand every queued line to the operating system now."""
        with self._lock:
            self._drain_locked()

    def stop(self, timeout: float) -> None:
        """Flush and stop the thread; lines handed over afterwards are written at once."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self.submit = self.write_now  # type: ignore[method-assign]
        with self._lock:
            self._drain_locked()
            if self._files is not None:
                self._files.close()

    def _make_room(self) -> bool:
        if not self._block or threading.current_thread() is self._thread:
            return False
        deadline = time.monotonic() + self._block_sec
        self._wake.set()
        while len(self.queue) >= self._capacity:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.0002)
        return True

    def _drop_queued(self) -> None:
        # Kept cheap: under a stalled disk this runs for every record.
        with self._drop_lock:
            self._queue_drops += 1
            first = self._queue_drops == 1
        STATS.add("dropped")
        if first:
            _say(
                f"log queue full ({self._capacity} records): dropping DEBUG/INFO/WARNING "
                "records until the writer catches up"
            )
            self._wake.set()

    # -- writer side -------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # the writer thread must survive anything
                STATS.add("internal_errors")
                _say(f"writer error: {type(exc).__name__}")

    def _drain_locked(self) -> None:
        queue = self.queue
        while True:
            while queue:
                batch = []
                pop = queue.popleft
                for _ in range(_BATCH):
                    try:
                        batch.append(pop())
                    except IndexError:
                        break
                self._write_batch(batch)
            if not self._queue_drops:
                return
            with self._drop_lock:
                dropped, self._queue_drops = self._queue_drops, 0
            self._notice(
                "Log records dropped: the log queue was full",
                {"dropped_records": dropped, "queue_size": self._capacity},
            )
            if not self._notices:
                return

    def _write_batch(self, batch: list[Item]) -> None:
        self._in_writer.active = True
        try:
            if self._files is not None:
                self._write_files(batch)
            console = [item[3] for item in batch if item[3] is not None]
            if console:
                _write_console(b"".join(console))
            if self._handlers:
                self._call_handlers(batch)
            for sink in BATCH_SINKS:
                sink(batch)
        finally:
            self._in_writer.active = False

    def _write_files(self, batch: list[Item]) -> None:
        day = batch[0][1]
        if batch[-1][1] == day and all(item[1] == day for item in batch):
            days = [(day, batch)]  # the common case: one day per batch
        else:
            by_day: dict[str, list[Item]] = {}
            for item in batch:
                by_day.setdefault(item[1], []).append(item)
            days = list(by_day.items())
        for day, items in days:
            for bit, category in _FILE_SINKS:
                lines = [item[2] for item in items if item[0] & bit]
                if lines:
                    self._append(category, day, lines)

    def _append(self, category: str, day: str, lines: list[bytes]) -> None:
        assert self._files is not None
        data = b"".join(lines)
        try:
            self._files.append(category, day, data)
        except OSError as exc:
            self.report_failure(log_path(self._files.log_dir, category, day), exc, len(lines))
        else:
            STATS.add("written", len(lines))
            if self._failing:
                self.report_success()

    @property
    def failing(self) -> bool:
        """True while log files cannot be written (since the last failed write)."""
        return self._failing

    def report_failure(self, path: Path, exc: OSError, lines: int) -> None:
        """Count lines lost to an unwritable file; say so once per episode, on stderr."""
        with self._lock:
            STATS.add("dropped", lines)
            STATS.add("write_errors")
            self._disk_drops += lines
            if not self._failing:
                self._failing = True
                _say(
                    f"{path} is not writable ({exc.strerror or exc}): log records are dropped "
                    "(and counted) until it is, console logging goes on"
                )

    def report_success(self) -> None:
        """Writing works again: say how much was lost, once, and log it as a WARNING."""
        with self._lock:
            if not self._failing:
                return
            self._failing = False
            dropped, self._disk_drops = self._disk_drops, 0
        _say(f"log files writable again after dropping {dropped} lines")
        self._notice(
            "Log records dropped: log files were not writable", {"dropped_records": dropped}
        )

    def _notice(self, message: str, extra: dict[str, Any]) -> None:
        """The writer's own WARNING about lost records, queued behind what it wrote."""
        if not self._notices:
            return
        record = own_record(self._origin, "WARNING", "writer", message, extra)
        line = render(record)
        console = None
        if self._json_console is not None:
            console = line if self._json_console else pretty(record, self._colour)
        sinks = HANDLERS | APP | (CONSOLE if console is not None else 0)
        self.queue.append((sinks, record["timestamp"][:10], line, console, logging.WARNING))
        self._wake.set()

    def _call_handlers(self, batch: list[Item]) -> None:
        for attached in self._handlers:
            for item in batch:
                if item[0] & HANDLERS and item[4] >= attached.levelno:
                    record = logging.LogRecord(
                        "callwatch", item[4], "", 0, attached.text(item[2]), None, None
                    )
                    try:
                        attached.handler.handle(record)
                    except Exception:
                        STATS.add("internal_errors")


@dataclass(frozen=True)
class AttachedHandler:
    """A stdlib handler fed by the writer, with its threshold and optional formatter."""

    handler: logging.Handler
    levelno: int
    formatter: Callable[[dict[str, Any]], str] | None = None

    def text(self, line: bytes) -> str:
        """The JSON line, or what the user's formatter makes of the record (if it can)."""
        if self.formatter is not None:
            try:
                return str(self.formatter(orjson.loads(line)))
            except Exception:
                STATS.add("internal_errors")
        return line.decode().rstrip("\n")


def _write_console(data: bytes) -> None:
    stream = sys.stdout
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            buffer.write(data)
        else:
            stream.write(data.decode("utf-8", "replace"))
        stream.flush()
    except (OSError, ValueError):  # closed or broken stdout must not stop file logging
        pass


def _say(message: str) -> None:
    """A message about callwatch itself, on stderr, bypassing the pipeline."""
    with contextlib.suppress(OSError):
        os.write(2, f"callwatch: {message}\n".encode())
