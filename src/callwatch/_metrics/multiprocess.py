"""Totals across the workers of a pre-fork server, on prometheus_client's multiprocess files.

Each worker publishes its totals (as deltas) into its own ``*_<pid>.db`` files
about once a second and whenever it answers a read, plus its recent errors as
``callwatch_errors_<pid>.json``. A reader sums its own live totals with the
other workers' published ones, so any worker answers with the totals of all.

Clean start: the workers of one run sign in to ``callwatch_run.json`` under a
file lock. The first one to find no live member starts a new run and removes
the files of dead processes from an earlier run; a worker that restarts while
others live joins the run and keeps the dead workers' counts. Dead workers'
live gauges (active calls, windows, process memory) are dropped with
``mark_process_dead``.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from callwatch._metrics.prometheus import INTERNAL_PREFIX, Publisher, totals_from_families
from callwatch._metrics.snapshot import Totals

__all__ = ["MultiProcess", "pid_alive"]

RUN_FILE = "callwatch_run.json"
LOCK_FILE = "callwatch_run.lock"
ERRORS_PREFIX = "callwatch_errors_"


class MultiProcess:
    """This worker's view of the shared directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._publisher: Publisher | None = None
        self._errors_version = -1
        self._others: tuple[float, Totals] | None = None
        self._leader: tuple[float, bool] | None = None

    def join(self) -> bool:
        """Sign in to the current run; returns True when this worker started a new one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        me = {"pid": self.pid, "created": psutil.Process(self.pid).create_time()}
        with open(self.directory / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            members = _read_json(self.directory / RUN_FILE, [])
            alive = [m for m in members if m.get("pid") != self.pid and _same_process(m)]
            if not alive:
                self._remove_stale_files()
            _write_json(self.directory / RUN_FILE, [*alive, me])
        return not alive

    def _remove_stale_files(self) -> None:
        for path in self._files("*.db") + self._files(ERRORS_PREFIX + "*.json"):
            pid = _pid_of(path)
            if pid is not None and pid != self.pid and not pid_alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

    def publish(self, own: Totals, system: dict[str, Any], errors_version: int) -> None:
        """Write this worker's totals into its files (deltas since the last call)."""
        with self._lock:
            if self._publisher is None:
                self._publisher = Publisher()
            self._publisher.publish(own, system)
            if errors_version != self._errors_version:
                _write_json(self.directory / f"{ERRORS_PREFIX}{self.pid}.json", own.recent_errors)
                self._errors_version = errors_version

    def others(self, max_age: float = 1.0) -> Totals:
        """The other workers' published totals; cached, since they publish once a second."""
        cached = self._others
        now = time.monotonic()
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        mine = f"_{self.pid}."
        files = [f for f in self._files("*.db") if mine not in os.path.basename(f)]
        totals = totals_from_families(_merge(files, accumulate=False))
        errors: list[dict[str, Any]] = []
        for path in self._files(ERRORS_PREFIX + "*.json"):
            if mine not in os.path.basename(path):
                errors += _read_json(Path(path), [])
        totals.recent_errors = sorted(errors, key=lambda e: str(e.get("timestamp", "")))
        self._others = (now, totals)
        return totals

    def is_leader(self, max_age: float = 1.0) -> bool:
        """Whether this worker is the oldest live member of the run (cached ``max_age``).

        One worker judges alert thresholds for all: N workers reading the same
        totals would otherwise send N copies of every alert.
        """
        cached = self._leader
        now = time.monotonic()
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        members = [m for m in _read_json(self.directory / RUN_FILE, []) if _same_process(m)]
        oldest = min(members, key=lambda m: (float(m["created"]), int(m["pid"])), default=None)
        leader = oldest is None or int(oldest["pid"]) == self.pid
        self._leader = (now, leader)
        return leader

    def sweep_dead(self) -> list[int]:
        """Drop the live gauges of workers that died; returns their pids."""
        dead = set()
        for path in self._files("gauge_live*.db"):
            pid = _pid_of(path)
            if pid is not None and not pid_alive(pid):
                dead.add(pid)
        for pid in dead:
            mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]
        if dead:
            self._others = None
        return sorted(dead)

    def exposition(self) -> bytes:
        """Every metric in the directory (callwatch's and the app's), summed over workers."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_PublicCollector(self))
        return bytes(generate_latest(registry))

    def _files(self, pattern: str) -> list[str]:
        return glob.glob(os.path.join(self.directory, pattern))


class _PublicCollector:
    """The merged multiprocess files without callwatch's internal plumbing."""

    def __init__(self, owner: MultiProcess) -> None:
        self._owner = owner

    def collect(self) -> list[Metric]:
        metrics = _merge(self._owner._files("*.db"), accumulate=True)
        return [m for m in metrics if not m.name.startswith(INTERNAL_PREFIX)]


def _merge(files: list[str], accumulate: bool) -> list[Metric]:
    for _ in range(3):  # a file can vanish mid-read (a clean start, a dead worker swept)
        try:
            merged = MultiProcessCollector.merge(files, accumulate=accumulate)  # type: ignore[no-untyped-call]
            return list(merged)
        except FileNotFoundError:
            files = [f for f in files if os.path.exists(f)]
    return []


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie waiting to be reaped."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # exists, but not ours to inspect
        return True


def _same_process(member: dict[str, Any]) -> bool:
    """A run member is alive if its pid runs and was started when the member signed in."""
    try:
        process = psutil.Process(int(member["pid"]))
        return (process.status() != psutil.STATUS_ZOMBIE
                and abs(process.create_time() - float(member["created"])) < 1.0)
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def _pid_of(path: str) -> int | None:
    stem = os.path.basename(path).rsplit(".", 1)[0]
    tail = stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _read_json(path: Path, default: Any) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return default


def _write_json(path: Path, value: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(orjson.dumps(value, default=str))
    os.replace(temporary, path)
