"""Date-named, append-only log files shared safely by several processes.

Every process opens ``<folder>/<prefix>_YYYY-MM-DD.log`` with ``O_APPEND`` and
writes whole lines in one ``write()``: the kernel places each write at the end
of the file atomically, so lines from several processes never interleave and
no file is ever renamed, so there is nothing to rotate over each other.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

__all__ = ["CATEGORIES", "DayFiles", "day_of", "log_path"]

# category -> (folder, file prefix), as the guide names them.
CATEGORIES: dict[str, tuple[str, str]] = {
    "app": ("app", "app"),
    "errors": ("errors", "error"),
    "audit": ("audit", "audit"),
    "performance": ("performance", "performance"),
}
_DAY_IN_NAME = re.compile(r"_(\d{4}-\d{2}-\d{2})\.log")
# A torn tail is one that stays the same this many times, this far apart (0.1 s in all).
_SETTLE_CHECKS = 5
_SETTLE_SEC = 0.02
_MAX_CHECKS = 50


def log_path(log_dir: Path, category: str, day: str) -> Path:
    folder, prefix = CATEGORIES[category]
    return log_dir / folder / f"{prefix}_{day}.log"


def day_of(path: Path) -> str | None:
    """The UTC day a log file (plain, gzipped or a sidecar) belongs to, from its name."""
    match = _DAY_IN_NAME.search(path.name)
    return match.group(1) if match else None


def _ends_mid_line(path: Path) -> bool:
    """Whether the file ends in a torn line: its last byte is not a newline, and stays so.

    Another process's append in progress also shows a partial last line for a moment
    (the kernel grows the file page by page): only a tail that does not change while
    we look again is a fragment left by a process killed mid-write.
    """
    last = _tail(path)
    steady = 0
    for _ in range(_MAX_CHECKS):  # a file others keep growing mid-line: leave it be
        if last is None or last[1] == b"\n":
            return False
        if steady == _SETTLE_CHECKS:
            return True
        time.sleep(_SETTLE_SEC)
        now = _tail(path)
        steady = steady + 1 if now == last else 0
        last = now
    return False


def _tail(path: Path) -> tuple[int, bytes] | None:
    """(size, last byte) of the file; None when empty or unreadable (nothing to mend)."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            if size == 0:
                return None
            file.seek(size - 1)
            return size, file.read(1)
    except OSError:  # unreadable (write-only permissions): nothing can be known
        return None


class DayFiles:
    """Open append descriptors, one per (category, day); only the newest day stays open."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._fds: dict[tuple[str, str], int] = {}
        self._newest_day = ""
        self._broken: set[tuple[str, str]] = set()

    def append(self, category: str, day: str, data: bytes) -> None:
        """Hand ``data`` (whole lines) to the OS; raises ``OSError`` with what got through lost."""
        key = (category, day)
        fd = self._fds.get(key)
        if fd is None:
            fd = self._open(key)
        if key in self._broken:
            # An earlier write stopped mid-line (disk full): end that fragment first,
            # so the lines that follow stay whole. It stays broken until a write succeeds.
            data = b"\n" + data
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except OSError:
                if len(view) != len(data):
                    self._broken.add(key)
                raise
            view = view[written:]
        self._broken.discard(key)

    def _open(self, key: tuple[str, str]) -> int:
        category, day = key
        path = log_path(self.log_dir, category, day)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._fds[key] = fd
        if _ends_mid_line(path):
            # A process killed mid-write left a torn last line: the first write ends it,
            # so the fragment stays one bad line and the new records parse.
            self._broken.add(key)
        if day > self._newest_day:
            self._newest_day = day
            self._close_days_before(day)
        return fd

    def _close_days_before(self, day: str) -> None:
        for old in [k for k in self._fds if k[1] < day]:
            os.close(self._fds.pop(old))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
