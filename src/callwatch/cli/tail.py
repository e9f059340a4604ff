"""``callwatch tail``: the last records of today's app log, then follow it.

The app log holds every record at or above LOG_LEVEL, one file per UTC day;
following switches to the new day's file at midnight once the old one is
drained, and starts over when a file is truncated. Files are read in blocks
of bounded size, backwards for the backlog, so a huge line costs one pass and
at most :data:`~callwatch.cli._files.MAX_LINE` of memory; a FIFO or device
under the day file's name is never opened for a blocking read.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import orjson

from callwatch.cli._files import (
    MAX_LINE,
    BoundedLine,
    ReadStats,
    day_file,
    open_regular,
    parse_line,
)
from callwatch.cli._render import Output, format_record, parse_timestamp
from callwatch.config import LEVELS

__all__ = ["Filter", "Follower", "add_parser", "last_records", "run", "utc_day"]

_POLL_SEC = 0.2
_BACK_BLOCK = 1 << 20
_FOLLOW_BLOCK = 1 << 20
_FOLLOW_BLOCKS_PER_POLL = 8


def utc_day() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Filter:
    """Which records to show: minimum level, one call, one logger and its children."""

    level: str = "DEBUG"
    call_id: str | None = None
    logger: str | None = None

    @property
    def needle(self) -> bytes | None:
        """Bytes every matching line contains, to skip the others unparsed."""
        return orjson.dumps(self.call_id) if self.call_id else None

    def __call__(self, record: dict[str, Any]) -> bool:
        level = record.get("level")
        if level in LEVELS and LEVELS.index(level) < LEVELS.index(self.level):
            return False
        if self.call_id is not None:
            extra = record.get("extra")
            in_extra = isinstance(extra, dict) and extra.get("call_id") == self.call_id
            if record.get("call_id") != self.call_id and not in_extra:
                return False
        if self.logger is not None:
            name = str(record.get("logger", ""))
            if name != self.logger and not name.startswith(self.logger + "."):
                return False
        return True


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "tail",
        help="print and follow today's app log, filtered",
        description=(
            "Pretty-print the last N records of today's app log (UTC day) and, with "
            "--follow, keep printing new ones, switching to the next day's file at midnight."
        ),
    )
    parser.add_argument("--log-dir", type=Path, help="log root (default: LOG_DIR or ./logs)")
    parser.add_argument(
        "--level", type=str.upper, choices=LEVELS, default="DEBUG", help="minimum level shown"
    )
    parser.add_argument("--call-id", help="only records of this call")
    parser.add_argument("--logger", help="only this logger and its children (a.b matches a.b.c)")
    parser.add_argument(
        "-n", "--lines", type=_count, default=10, metavar="N", help="records shown first (10)"
    )
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new records; waits for the log directory and file to appear",
    )
    parser.add_argument(
        "--full-time",
        action="store_true",
        help="show every record's UTC date and time (2024-01-05T10:00:00.123Z); by default "
        "only the first record and the first of each new UTC day show them",
    )
    parser.set_defaults(handler=run)


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def run(args: argparse.Namespace, out: Output) -> int:
    log_dir: Path = args.log_dir
    if not log_dir.is_dir():
        if not args.follow:
            out.error(f"no log directory at {log_dir}")
            return 2
        out.note(f"waiting for {log_dir} to appear")
    keep = Filter(args.level, args.call_id, args.logger)
    stats = ReadStats()
    follower = Follower(log_dir, stats=stats)
    show = _Printer(out, args.full_time)
    for record in last_records(follower, keep, args.lines):
        show(record)
    _report(stats, out)
    if not args.follow:
        return 0
    if not follower.open:
        out.note(f"waiting for {follower.path}")
    try:
        while True:
            for line in follower.poll():
                fresh = parse_line(line, stats)
                if fresh is not None and keep(fresh):
                    show(fresh)
            _report(stats, out)
            if not follower.behind:
                time.sleep(_POLL_SEC)
    except KeyboardInterrupt:
        return 0


class _Printer:
    """Prints records; the date and ``Z`` show on the first one and whenever the UTC day changes."""

    def __init__(self, out: Output, full_time: bool) -> None:
        self._out = out
        self._always = full_time
        self._day: str | None = None

    def __call__(self, record: dict[str, Any]) -> None:
        stamp = parse_timestamp(record.get("timestamp"))
        day = stamp.astimezone(timezone.utc).strftime("%Y-%m-%d") if stamp else self._day
        full = self._always or day != self._day
        self._day = day
        self._out.line(*format_record(record, full_time=full))


def _report(stats: ReadStats, out: Output) -> None:
    """What was skipped since the last report, one line each, on stderr."""
    for path in stats.special_files:
        out.note(f"not a regular file, skipped: {path}")
    if stats.long_lines:
        out.note(f"skipped {stats.long_lines} line(s) longer than {MAX_LINE >> 20} MiB")
    stats.special_files.clear()
    stats.long_lines = 0


def last_records(follower: Follower, keep: Filter, count: int) -> list[dict[str, Any]]:
    """The last ``count`` matching records of the current file; the follower starts after them."""
    handle, end = follower.start_at_end()
    if count == 0 or handle is None:
        return []
    stats = follower.stats
    found: list[dict[str, Any]] = []
    needle = keep.needle
    with closing(_lines_backwards(handle, end, stats)) as lines:
        for line in lines:
            if needle is not None and needle not in line:
                continue
            record = parse_line(line, stats)
            if record is not None and keep(record):
                found.append(record)
                if len(found) == count:
                    break
    found.reverse()
    return found


def _lines_backwards(
    handle: IO[bytes], end: int, stats: ReadStats
) -> Generator[bytes, None, None]:
    """Lines of the file before ``end``, last first, reading 1 MB blocks from the end.

    Each byte is read once and a line longer than MAX_LINE is skipped (counted)
    without being held, so the cost is linear in what is read. The handle's
    position is restored afterwards.
    """
    resume = handle.tell()
    line = BoundedLine(stats)
    position = end
    try:
        while position > 0:
            start = max(0, position - _BACK_BLOCK)
            handle.seek(start)
            block = handle.read(position - start)
            position = start
            cut = len(block)
            while (newline := block.rfind(b"\n", 0, cut)) >= 0:
                whole = line.take(block[newline + 1 : cut], backwards=True)
                if whole:
                    yield whole
                cut = newline
            line.add(block[:cut])
        first = line.take(backwards=True)
        if first:
            yield first
    finally:
        handle.seek(resume)


class Follower:
    """New complete lines of the current UTC day's app log, poll by poll."""

    def __init__(
        self, log_dir: Path, today: Callable[[], str] = utc_day, stats: ReadStats | None = None
    ) -> None:
        self._log_dir = log_dir
        self._today = today
        self._day = today()
        self._handle: IO[bytes] | None = None
        self.stats = ReadStats() if stats is None else stats
        self._partial = BoundedLine(self.stats)
        self.behind = False
        """True when the last poll stopped before the end of the file: poll again at once."""
        self._special: Path | None = None

    @property
    def path(self) -> Path:
        return day_file(self._log_dir, "app", self._day)

    @property
    def open(self) -> bool:
        """Whether a day file is being followed (else it is awaited)."""
        return self._handle is not None

    def start_at_end(self) -> tuple[IO[bytes] | None, int]:
        """Open today's file positioned at its end: the backlog is everything before it."""
        if not self._open():
            return None, 0
        assert self._handle is not None
        end = self._handle.seek(0, 2)
        return self._handle, end

    def poll(self) -> list[bytes]:
        """Lines completed since the last poll; at a new day, the old file is drained first."""
        day = self._today()  # before reading: what the old day's file holds now is drained
        lines = self._read_new()
        if day != self._day and not self.behind:
            if rest := self._partial.take():
                lines.append(rest)
            self._close()
            self._day = day
            lines += self._read_new()
        return lines

    def _read_new(self) -> list[bytes]:
        self.behind = False
        if self._handle is None and not self._open():
            return []
        assert self._handle is not None
        position = self._handle.tell()
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            stat = None
        replaced = stat is not None and stat.st_ino != os.fstat(self._handle.fileno()).st_ino
        if replaced or (stat is not None and stat.st_size < position):  # start over
            self._close()
            if not self._open():
                return []
            assert self._handle is not None
        lines: list[bytes] = []
        for _ in range(_FOLLOW_BLOCKS_PER_POLL):
            block = self._handle.read(_FOLLOW_BLOCK)
            pieces = block.split(b"\n")
            for piece in pieces[:-1]:
                whole = self._partial.take(piece)
                if whole and whole.strip():
                    lines.append(whole)
            self._partial.add(pieces[-1])
            if len(block) < _FOLLOW_BLOCK:
                return lines
        self.behind = True
        return lines

    def _open(self) -> bool:
        try:
            handle = open_regular(self.path)
        except FileNotFoundError:
            return False
        if handle is None:
            if self._special != self.path:  # said once per file
                self._special = self.path
                self.stats.special_files.append(str(self.path))
            return False
        self._handle = handle
        self._partial = BoundedLine(self.stats)
        return True

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle = None
        self._partial = BoundedLine(self.stats)
