"""Finding and reading callwatch log files: four folders, plain and gzipped days.

Readers never trust a line: a process killed mid-write leaves a torn line, a
crash while compressing leaves a truncated ``.gz``. Both are counted in
:class:`ReadStats` and skipped, never raised to the user.
"""

from __future__ import annotations

import gzip
import mmap
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = [
    "CATEGORIES",
    "LogFile",
    "ReadStats",
    "day_file",
    "find_log_files",
    "iter_matching_lines",
    "parse_line",
]

# Folder -> file-name prefix, in the order a duplicated record is attributed:
# the audit copy keeps its chain, the errors copy says where it came from.
CATEGORIES: dict[str, str] = {
    "audit": "audit",
    "performance": "performance",
    "errors": "error",
    "app": "app",
}

_NAME = re.compile(r"^(?P<prefix>[a-z]+)_(?P<day>\d{4}-\d{2}-\d{2})\.log(?P<gz>\.gz)?$")
_RECORD_START = b'{"timestamp"'
_CHUNK = 8 << 20


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True)
class LogFile:
    """One day's file of one category."""

    path: Path
    category: str
    day: str
    compressed: bool

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:  # removed by retention while we read
            return 0


@dataclass
class ReadStats:
    """What a reader saw besides records: files, bytes and lines it had to skip."""

    files: int = 0
    bytes: int = 0
    bad_lines: int = 0
    broken_files: list[str] = field(default_factory=list)

    def merge(self, other: ReadStats) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.bad_lines += other.bad_lines
        self.broken_files += other.broken_files


def day_file(log_dir: Path, category: str, day: str) -> Path:
    """The plain file a category writes on a UTC day (``YYYY-MM-DD``)."""
    return log_dir / category / f"{CATEGORIES[category]}_{day}.log"


def find_log_files(log_dir: Path, categories: tuple[str, ...] = tuple(CATEGORIES)) -> list[LogFile]:
    """Every plain or gzipped day file under ``log_dir``, oldest day first."""
    found: list[LogFile] = []
    for category in categories:
        folder = log_dir / category
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _NAME.match(path.name)
            if match is None or match["prefix"] != CATEGORIES[category]:
                continue
            found.append(LogFile(path, category, match["day"], match["gz"] is not None))
    found.sort(key=lambda f: (f.day, list(CATEGORIES).index(f.category), f.compressed))
    return found


def parse_line(line: bytes, stats: ReadStats) -> dict[str, Any] | None:
    """One record from one line, or ``None`` (counted) when the line is not a JSON object.

    A write torn by a crash can leave the head of one record glued to a whole
    next record on the same line; the whole record at the end is recovered.
    """
    line = line.strip()
    if not line:
        return None
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        stats.bad_lines += 1  # the torn head is lost either way
        start = line.rfind(_RECORD_START)
        if start <= 0:
            return None
        try:
            value = orjson.loads(line[start:])
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    if isinstance(value, dict):
        return value
    stats.bad_lines += 1
    return None


def iter_matching_lines(log_file: LogFile, needle: bytes, stats: ReadStats) -> Iterator[bytes]:
    """Lines of ``log_file`` containing ``needle``.

    The bytes search runs before any JSON parsing, so a needle that occurs
    rarely costs little more than reading the file.
    """
    stats.files += 1
    try:
        if log_file.compressed:
            with gzip.open(log_file.path, "rb") as stream:
                yield from _scan_stream(stream, needle, stats)
        else:
            yield from _scan_plain(log_file.path, needle, stats)
    except FileNotFoundError:  # pruned between listing and reading
        return
    except (OSError, EOFError, zlib.error) as exc:
        stats.broken_files.append(f"{log_file.path}: {exc}")


def _scan_plain(path: Path, needle: bytes, stats: ReadStats) -> Iterator[bytes]:
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            stats.bytes += size
            yield from _lines_with(data, needle, size)


def _scan_stream(stream: _Readable, needle: bytes, stats: ReadStats) -> Iterator[bytes]:
    carry = b""
    while True:
        block = stream.read(_CHUNK)
        if not block:
            break
        stats.bytes += len(block)
        data = carry + block
        cut = data.rfind(b"\n") + 1
        carry = data[cut:]
        yield from _lines_with(data, needle, cut)
    if carry:
        yield from _lines_with(carry, needle, len(carry))


def _lines_with(data: bytes | mmap.mmap, needle: bytes, end: int) -> Iterator[bytes]:
    """Whole lines within ``data[:end]`` that contain ``needle``."""
    pos = data.find(needle, 0, end)
    while pos >= 0:
        start = data.rfind(b"\n", 0, pos) + 1
        stop = data.find(b"\n", pos, end)
        stop = end if stop < 0 else stop
        yield data[start:stop]
        pos = data.find(needle, stop, end)
