"""Finding and reading callwatch log files: four folders, plain and gzipped days.

Readers never trust a line: a process killed mid-write leaves a torn line, a
crash while compressing leaves a truncated ``.gz``. Both are counted in
:class:`ReadStats` and skipped, never raised to the user. Readers never trust
the directory either: a FIFO or device under a log file's name is skipped
(opening it would block), a folder or file the OS refuses is reported, and no
line is held beyond :data:`MAX_LINE`, so memory stays bounded on any input.
"""

from __future__ import annotations

import gzip
import os
import queue
import re
import stat
import threading
import zlib
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = [
    "CATEGORIES",
    "MAX_LINE",
    "BoundedLine",
    "LogFile",
    "ReadStats",
    "day_file",
    "describe_os_error",
    "find_log_files",
    "iter_matching_lines",
    "open_regular",
    "parse_line",
    "read_ahead",
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
_BATCH_LINES = 256
_BATCH_BYTES = 1 << 20
_BATCHES_AHEAD = 4

MAX_LINE = 4 << 20
"""Longest line a reader keeps (4 MiB); records are far smaller, longer lines are skipped."""


class _Readable(Protocol):
    def readinto(self, buffer: bytearray, /) -> int: ...


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
    """What a reader saw besides records: files, bytes and lines it had to skip.

    ``broken_files`` had damaged content (a cut ``.gz``); ``unreadable`` are the
    folders and files the OS refused; ``special_files`` are FIFOs, devices and
    folders found under a log file's name.
    """

    files: int = 0
    bytes: int = 0
    bad_lines: int = 0
    long_lines: int = 0
    broken_files: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    special_files: list[str] = field(default_factory=list)

    def merge(self, other: ReadStats) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.bad_lines += other.bad_lines
        self.long_lines += other.long_lines
        self.broken_files += other.broken_files
        self.unreadable += other.unreadable
        self.special_files += other.special_files


class BoundedLine:
    """The pieces of one line read in blocks, dropped once they pass :data:`MAX_LINE`."""

    def __init__(self, stats: ReadStats) -> None:
        self._stats = stats
        self._pieces: list[bytes] = []
        self._size = 0
        self._too_long = False

    def add(self, piece: bytes) -> None:
        if self._too_long or not piece:
            return
        self._size += len(piece)
        if self._size > MAX_LINE:
            self._too_long = True
            self._pieces.clear()
        else:
            self._pieces.append(piece)

    def take(self, last: bytes = b"", *, backwards: bool = False) -> bytes | None:
        """The whole line ending with ``last`` (added in reverse when ``backwards``), or
        ``None`` (counted) when it was too long; the buffer starts over."""
        self.add(last)
        too_long, pieces = self._too_long, self._pieces
        self._pieces, self._size, self._too_long = [], 0, False
        if too_long:
            self._stats.long_lines += 1
            return None
        return b"".join(reversed(pieces) if backwards else pieces)

    @property
    def empty(self) -> bool:
        return not self._pieces and not self._too_long


def describe_os_error(error: OSError, path: Path | None = None) -> str:
    """One line for the user: what was refused and why, no traceback."""
    reason = error.strerror or str(error)
    where = error.filename or path
    return f"{where}: {reason}" if where else reason


def open_regular(path: Path) -> BufferedReader | None:
    """``path`` opened for reading, or ``None`` when it is a FIFO, device or folder.

    Opening a FIFO for reading blocks until a writer comes, so the file is
    opened non-blocking and checked before anything is read from it.
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the check
            os.close(fd)
            return None
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def day_file(log_dir: Path, category: str, day: str) -> Path:
    """The plain file a category writes on a UTC day (``YYYY-MM-DD``)."""
    return log_dir / category / f"{CATEGORIES[category]}_{day}.log"


def find_log_files(
    log_dir: Path,
    categories: tuple[str, ...] = tuple(CATEGORIES),
    stats: ReadStats | None = None,
) -> list[LogFile]:
    """Every plain or gzipped day file under ``log_dir``, oldest day first.

    A folder the OS refuses and a special file under a log file's name are
    noted in ``stats`` and left out.
    """
    stats = ReadStats() if stats is None else stats
    found: list[LogFile] = []
    for category in categories:
        folder = log_dir / category
        try:
            with os.scandir(folder) as entries:
                named = [(e, _NAME.match(e.name)) for e in entries]
                matching = [(e, m) for e, m in named if m and m["prefix"] == CATEGORIES[category]]
                regular = [(e, m) for e, m in matching if e.is_file()]
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            stats.unreadable.append(describe_os_error(error))
            continue
        stats.special_files += sorted(str(e.path) for e, m in matching if not e.is_file())
        for entry, match in regular:
            found.append(
                LogFile(Path(entry.path), category, match["day"], match["gz"] is not None)
            )
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
    """Lines of ``log_file`` containing ``needle``, read block by block.

    The bytes search runs before any JSON parsing, so a needle that occurs
    rarely costs little more than reading the file.
    """
    stats.files += 1
    try:
        handle = open_regular(log_file.path)
        if handle is None:
            stats.special_files.append(str(log_file.path))
            return
        with handle:
            if log_file.compressed:
                with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                    yield from _scan_stream(stream, needle, stats)
            else:
                yield from _scan_stream(handle, needle, stats)
    except FileNotFoundError:  # pruned between listing and reading
        return
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        stats.broken_files.append(f"{log_file.path}: {exc}")
    except OSError as exc:
        stats.unreadable.append(describe_os_error(exc, log_file.path))


def _scan_stream(stream: _Readable, needle: bytes, stats: ReadStats) -> Iterator[bytes]:
    """Lines with ``needle``, read into one reused buffer; only a line cut by a block
    boundary is copied whole, and only up to :data:`MAX_LINE`."""
    unfinished = BoundedLine(stats)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    while size := stream.readinto(buffer):
        stats.bytes += size
        first = buffer.find(b"\n", 0, size)
        if first < 0:
            unfinished.add(bytes(view[:size]))
            continue
        line = unfinished.take(bytes(view[:first]))
        if line is not None and needle in line:
            yield line
        last = buffer.rfind(b"\n", 0, size)
        yield from _lines_with(buffer, needle, first + 1, last, stats)
        unfinished.add(bytes(view[last + 1 : size]))
    line = unfinished.take()
    if line and needle in line:
        yield line


def _lines_with(
    data: bytearray, needle: bytes, begin: int, end: int, stats: ReadStats
) -> Iterator[bytes]:
    """Whole lines within ``data[begin:end]`` that contain ``needle``."""
    pos = data.find(needle, begin, end)
    while pos >= 0:
        start = data.rfind(b"\n", begin, pos) + 1 or begin
        stop = data.find(b"\n", pos, end)
        stop = end if stop < 0 else stop
        if stop - start > MAX_LINE:
            stats.long_lines += 1
        else:
            yield bytes(data[start:stop])
        pos = data.find(needle, stop, end)


def read_ahead(
    files: list[LogFile], needle: bytes, stats: ReadStats, threads: int = 4
) -> Generator[tuple[LogFile, list[bytes]], None, None]:
    """Batches of the lines with ``needle``, file by file in the order given.

    Up to ``threads`` files are read at once (gzip decompression releases the
    GIL), each through a short queue, so memory stays bounded however many
    lines match; each file ends with an empty batch, after its figures are
    merged into ``stats``.
    """
    boxes: list[queue.Queue[list[bytes] | ReadStats | BaseException]] = [
        queue.Queue(_BATCHES_AHEAD) for _ in files
    ]
    stop = threading.Event()

    def put(box: queue.Queue[list[bytes] | ReadStats | BaseException], item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def scan(index: int) -> None:
        box, file_stats = boxes[index], ReadStats()
        batch: list[bytes] = []
        size = 0
        try:
            for line in iter_matching_lines(files[index], needle, file_stats):
                batch.append(line)
                size += len(line)
                if size >= _BATCH_BYTES or len(batch) >= _BATCH_LINES:
                    if not put(box, batch):
                        return
                    batch, size = [], 0
            if not batch or put(box, batch):
                put(box, file_stats)
        except BaseException as error:  # handed to the reader, raised there
            put(box, error)

    pool = ThreadPoolExecutor(max(1, min(threads, len(files))))
    try:
        for index in range(len(files)):
            pool.submit(scan, index)
        for log_file, box in zip(files, boxes, strict=True):
            while not isinstance(item := box.get(), ReadStats):
                if isinstance(item, BaseException):
                    raise item
                yield log_file, item
            stats.merge(item)
            yield log_file, []
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
