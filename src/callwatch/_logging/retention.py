"""Retention and compression of past days, safe with several processes at once.

Only one process maintains a ``LOG_DIR`` at a time: the others find the
maintenance lock taken and skip. A day is compressed only once it is at least
a full day old, so no writer can still be appending to it; compression writes
a temporary file and renames it into place, so a crash leaves either the plain
file or the complete ``.gz``, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import gzip
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from callwatch._logging.files import CATEGORIES, day_of
from callwatch.config import Retention

__all__ = ["Maintenance", "MaintenanceResult", "maintain"]

_LOCK_NAME = ".callwatch-maintenance.lock"


@dataclass
class MaintenanceResult:
    """What one maintenance pass did; ``skipped`` when another process held the lock."""

    compressed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"compressed": self.compressed, "deleted": self.deleted, "skipped": self.skipped}


def maintain(
    log_dir: Path, retention: Retention, today: dt.date | None = None, *, wait: bool = False
) -> MaintenanceResult:
    """Delete days past retention and gzip days before yesterday, under the maintenance lock.

    The background pass skips when another process holds the lock; an explicit
    call (``wait=True``) waits for it, then does whatever is still left to do.
    """
    result = MaintenanceResult()
    if not log_dir.is_dir():
        return result
    today = today or dt.datetime.now(dt.timezone.utc).date()
    try:
        lock_fd = os.open(log_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError:
        result.skipped = True
        return result
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            result.skipped = True
            return result
        for category, (folder, _prefix) in CATEGORIES.items():
            directory = log_dir / folder
            if directory.is_dir():
                keep_days = getattr(retention, category)
                _maintain_folder(directory, today, keep_days, result)
    finally:
        os.close(lock_fd)
    return result


def _maintain_folder(
    directory: Path, today: dt.date, keep_days: int, result: MaintenanceResult
) -> None:
    oldest_kept = (today - dt.timedelta(days=keep_days - 1)).isoformat()
    compress_before = (today - dt.timedelta(days=1)).isoformat()
    for path in sorted(directory.iterdir()):
        day = day_of(path)
        if day is None:
            continue
        if ".tmp-" in path.name:
            path.unlink(missing_ok=True)  # left by a crash mid-compression; we hold the lock
        elif day < oldest_kept:
            path.unlink(missing_ok=True)
            result.deleted.append(str(path))
        elif day < compress_before and path.name.endswith(".log"):
            _compress(path)
            result.compressed.append(str(path))


def _compress(path: Path) -> None:
    target = path.with_name(path.name + ".gz")
    temporary = path.with_name(f"{path.name}.gz.tmp-{os.getpid()}")
    with open(temporary, "wb") as raw:
        if target.exists():
            # A late writer recreated a compressed day: keep the old part, gzip
            # members concatenate into one valid file.
            with open(target, "rb") as previous:
                shutil.copyfileobj(previous, raw)
        with open(path, "rb") as source, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
            shutil.copyfileobj(source, packed, 1 << 20)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(temporary, target)
    path.unlink()


class Maintenance:
    """Runs :func:`maintain` at start-up and then after every UTC midnight, off the hot path."""

    def __init__(self, log_dir: Path, retention: Retention) -> None:
        self._log_dir = log_dir
        self._retention = retention
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-maintenance", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                maintain(self._log_dir, self._retention)
            except Exception as exc:  # one bad pass must not stop pruning for good
                why = str(exc) if isinstance(exc, OSError) else type(exc).__name__
                with contextlib.suppress(OSError):
                    os.write(2, f"callwatch: log maintenance failed: {why}\n".encode())
            self._stop.wait(_seconds_to_next_midnight() + 60)

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._thread.join(timeout)


def _seconds_to_next_midnight() -> float:
    now = time.time()
    return 86400 - (now % 86400)
