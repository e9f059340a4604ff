"""The fleet: every worker of one server start, sharing one directory of memory-mapped files.

Each worker writes its values into its own file as it records them (``store.py``).
Any worker answers for the fleet by reading every file: its own, its live
siblings', and an archive holding what exited workers counted. A worker that
died is folded into the archive by the next worker to notice, under the
directory's lock: its calls still in progress become abandoned calls (failed),
so ``total == successful + failed + active`` holds at every read. Readers take
the lock shared and the fold takes it exclusively, so a count moves from a
worker's file to the archive between two reads, never during one, and no
answer goes backwards.

A run is the life of one server: the run file names the master process, and a
worker that finds another master there (a new start of the server in the
same ``PROMETHEUS_MULTIPROC_DIR``) clears the earlier run's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from callwatch._metrics.history import History
from callwatch._metrics.placement import Placement, alive
from callwatch._metrics.snapshot import RECENT_ERRORS, Totals
from callwatch._metrics.specs import METRICS, PREFIX, Reader, families, key
from callwatch._metrics.store import Durable, read_entries, replace_file

__all__ = ["Fleet", "Report"]

LOCK = "callwatch.lock"
RUN = "callwatch-run.json"
HISTORY = "callwatch-history.ring"
ARCHIVE = "callwatch-archive.mmap"
ARCHIVE_ERRORS = "callwatch-archive.errors.json"
WORKER = "callwatch-w-"
_WORKER_ID = re.compile(r"^\d+-\d+$")
_ABSORBED = '["absorbed",'
_K_STARTED = key("calls_started")
_K_OK = key("calls_ended", "success")
_K_FAILED = key("calls_ended", "failure")
_K_ABANDONED = key("abandoned_calls")
_PROCESS_KEYS = frozenset(key(s.name) for s in METRICS if s.source == "process")
_MAX_CALL_IDS = 100
# A problem worth a log record: (level, message, extra fields).
Report = tuple[str, str, dict[str, Any]]


class Fleet:
    """This worker's membership of the fleet in ``placement.directory``."""

    def __init__(self, placement: Placement, window_sec: float,
                 report: Callable[[str, str, dict[str, Any]], None]) -> None:
        self.placement = placement
        self.directory = placement.directory
        self.pid = os.getpid()
        import psutil  # noqa: PLC0415 - loaded when a fleet is joined, not at import

        self.me = f"{self.pid}-{round(psutil.Process().create_time() * 100)}"
        self._window_sec = window_sec
        self._report = report
        self._reader = Reader()
        self._read_lock = threading.Lock()
        self._skipped: set[str] = set()
        self._liveness: dict[str, tuple[float, bool]] = {}
        self._errors_version = -1
        self._calls_written: tuple[str, ...] = ()
        self._leader: tuple[float, bool] | None = None
        self._errors_cache: dict[Path, tuple[tuple[int, int, int], list[Any]]] = {}
        self._checked: set[Path] = set()
        self._paths: dict[str, Path] = {}
        self._shared_lock: Any = None  # kept open for readers (serialised by _read_lock)
        self.durable: Durable | None = None
        self.history: History | None = None

    # -- membership ---------------------------------------------------------------------------

    def join(self) -> bool:
        """Sign in; returns True when this worker began the run (a new server start)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked(fcntl.LOCK_EX):
            run = _read_json(self._path(RUN), {})
            new = not isinstance(run, dict) or run.get("key") != self.placement.run_key
            if new:
                self._clear_earlier_run()
                run = {"key": self.placement.run_key, "started": time.time(),
                       "via": self.placement.via}
                _write_json(self._path(RUN), run)
            reports = self._compact()
            self.durable = Durable(self._worker_path(self.me))
            self.history = History(self._window_sec, float(run.get("started", time.time())),
                                   self._path(HISTORY))
        self._emit(reports)
        return new

    def leave(self) -> None:
        """Close this worker's file (it stays: its numbers are the fleet's)."""
        with self._read_lock:
            if self._shared_lock is not None:
                self._shared_lock.close()
                self._shared_lock = None
        if self.durable is not None:
            self.durable.close()
            self.durable = None

    def _clear_earlier_run(self) -> None:
        for path in glob.glob(os.path.join(self.directory, "callwatch-*")):
            with contextlib.suppress(OSError):
                os.remove(path)
        for path in glob.glob(os.path.join(self.directory, "*.db")):  # the app's own metrics
            pid = _pid_of_db(path)
            if pid is not None and not _pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.remove(path)

    # -- reading ------------------------------------------------------------------------------

    def read(self, now: float, own_errors: Sequence[dict[str, Any]] | None = None) -> Totals:
        """The fleet's totals and windows; ``own_errors`` are this worker's, fresher in memory."""
        with self._read_lock:
            if self._shared_lock is None:
                self._shared_lock = open(self.directory / LOCK, "a")  # noqa: SIM115
            fcntl.flock(self._shared_lock, fcntl.LOCK_SH)
            try:
                totals = self._read_unlocked(own_errors)
            finally:
                fcntl.flock(self._shared_lock, fcntl.LOCK_UN)
        if self.history is not None:
            self.history.windows(now, totals, (60.0, self._window_sec))
        return totals

    def _read_unlocked(self, own_errors: Sequence[dict[str, Any]] | None = None) -> Totals:
        archive = self._entries(self._path(ARCHIVE)) or []
        absorbed = {k for k, _ in archive if k.startswith(_ABSORBED)}
        values: dict[str, float] = {}  # every file's values, summed by key before reading
        _fold(values, archive)
        errors = list(self._errors_of(self._path(ARCHIVE_ERRORS)))
        for worker in self.worker_ids():
            if key("absorbed", worker) in absorbed:
                continue
            _fold(values, self._entries(self._worker_path(worker)) or ())
            if worker != self.me or own_errors is None:
                errors += self._errors_of(self._worker_path(worker, ".errors.json"))
        totals = Totals()
        self._reader.add(totals, values.items(), live=True)  # the archive has no live values
        if own_errors is not None:
            errors += own_errors
        totals.active = max(totals.started - totals.succeeded - totals.failed, 0)
        totals.add_errors([e for e in errors if isinstance(e, dict)])
        return totals

    def _errors_of(self, path: Path) -> list[Any]:
        """A recent-errors file, parsed again only when it changed (they change rarely)."""
        try:
            stat = os.stat(path)
        except OSError:
            return []
        version = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._errors_cache.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        errors: list[Any] = _read_json(path, [])
        if len(self._errors_cache) > 256:
            self._errors_cache.clear()
        self._errors_cache[path] = (version, errors)
        return errors

    def worker_ids(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        return [name[len(WORKER):-len(".mmap")] for name in names
                if name.startswith(WORKER) and name.endswith(".mmap")
                and _WORKER_ID.match(name[len(WORKER):-len(".mmap")])]

    def is_leader(self, max_age: float = 1.0) -> bool:
        """Whether this is the oldest live worker: the one that judges alert thresholds.

        One worker judges for all: N workers reading the same totals would
        otherwise send N copies of every alert. Cached for ``max_age`` seconds.
        """
        now = time.monotonic()
        cached = self._leader
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        live = [w for w in self.worker_ids() if w == self.me or self._alive(w)]
        oldest = min(live, key=lambda w: (int(w.split("-")[1]), int(w.split("-")[0])),
                     default=self.me)
        self._leader = (now, oldest == self.me)
        return oldest == self.me

    def exposition(self, totals: Totals, system: dict[str, Any]) -> bytes:
        """The fleet's callwatch metrics plus the application's own multiprocess metrics."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(families(totals, system) + self._app_metrics()))
        return bytes(generate_latest(registry))

    def _app_metrics(self) -> list[Metric]:
        files = [f for f in glob.glob(os.path.join(self.directory, "*.db")) if self._valid_db(f)]
        try:
            merged = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        except (OSError, RuntimeError, ValueError, KeyError, IndexError):
            return []
        return [m for m in merged if not m.name.startswith(PREFIX)]

    def _valid_db(self, path: str) -> bool:
        try:
            for raw_key, _ in read_entries(path):
                orjson.loads(raw_key)
            return True
        except FileNotFoundError:
            return False
        except Exception:  # a foreign or truncated file must never break the exposition
            self._skip(path)
            return False

    # -- background ---------------------------------------------------------------------------

    def tick(self, now: float, errors: tuple[int, list[dict[str, Any]]],
             active_ids: Sequence[object], process: dict[str, float]) -> None:
        """Once a second: per-process values, errors and live ids, the dead, the history row."""
        self.write_process(process)
        version, recent = errors
        if version != self._errors_version:
            _write_json(self._worker_path(self.me, ".errors.json"), recent)
            self._errors_version = version
        ids = tuple(str(i)[:200] for i in active_ids[:_MAX_CALL_IDS])
        if ids != self._calls_written:
            _write_json(self._worker_path(self.me, ".calls.json"), list(ids))
            self._calls_written = ids
        dead = any(w != self.me and not self._alive(w) for w in self.worker_ids())
        second = int(now)
        history = self.history
        if not dead and (history is None or history.has(second)):
            return
        with self._locked(fcntl.LOCK_EX):
            reports = self._compact() if dead else []
            if history is not None and not history.has(second):
                history.record(second, self._read_unlocked())
        self._emit(reports)

    def write_process(self, values: dict[str, float]) -> None:
        """Per-process values (memory, descriptors, log statistics) into this worker's file."""
        durable = self.durable
        if durable is None:
            return
        with durable.lock:
            for name, value in values.items():
                durable.write(key(name), value)

    def _compact(self) -> list[Report]:
        """Fold dead workers into the archive (caller holds the lock exclusively)."""
        dead = [w for w in self.worker_ids() if w != self.me and not self._alive(w)]
        if not dead:
            return []
        archive: dict[str, float] = {}
        for raw, value in self._entries(self._path(ARCHIVE)) or []:
            if not raw.startswith(_ABSORBED):
                archive[raw] = value
        errors = _read_json(self._path(ARCHIVE_ERRORS), [])
        reports: list[Report] = []
        for worker in dead:
            values = dict(self._entries(self._worker_path(worker)) or [])
            ended = values.get(_K_OK, 0.0) + values.get(_K_FAILED, 0.0)
            in_progress = max(int(values.get(_K_STARTED, 0.0) - ended), 0)
            if in_progress:
                values[_K_FAILED] = values.get(_K_FAILED, 0.0) + in_progress
                values[_K_ABANDONED] = values.get(_K_ABANDONED, 0.0) + in_progress
                call_ids = _read_json(self._worker_path(worker, ".calls.json"), [])
                reports.append(("error", "Worker died with calls in progress; they are counted "
                                "as failed (abandoned)", {
                                    "worker_pid": int(worker.split("-")[0]),
                                    "abandoned_calls": in_progress,
                                    "abandoned_call_ids": call_ids[:_MAX_CALL_IDS]}))
            _fold(archive, ((k, v) for k, v in values.items() if k not in _PROCESS_KEYS))
            errors += _read_json(self._worker_path(worker, ".errors.json"), [])
        _write_json(self._path(ARCHIVE_ERRORS), _newest(errors))
        # Marked absorbed first: a crash between the two writes cannot count a worker twice.
        replace_file(self._path(ARCHIVE), {**archive, **{key("absorbed", w): 1.0 for w in dead}})
        for worker in dead:
            for suffix in (".mmap", ".errors.json", ".calls.json"):
                with contextlib.suppress(OSError):
                    os.remove(self._worker_path(worker, suffix))
            mark_process_dead(int(worker.split("-")[0]), str(self.directory))  # type: ignore[no-untyped-call]
            self._liveness.pop(worker, None)
        replace_file(self._path(ARCHIVE), archive)
        return reports

    # -- helpers ------------------------------------------------------------------------------

    def _alive(self, worker: str, max_age: float = 1.0) -> bool:
        now = time.monotonic()
        cached = self._liveness.get(worker)
        if cached is not None and now - cached[0] < max_age:
            return cached[1]
        pid, created = worker.split("-")
        result = alive(int(pid), created)
        if len(self._liveness) > 4096:
            self._liveness.clear()
        self._liveness[worker] = (now, result)
        return result

    def _entries(self, path: Path) -> list[tuple[str, float]] | None:
        checked = path in self._checked  # a file seen whole once only grows
        try:
            entries = read_entries(path, check_header=not checked)
        except FileNotFoundError:
            self._checked.discard(path)
            return None
        except Exception:  # truncated, foreign, half-written: skipped, never fatal
            self._checked.discard(path)
            self._skip(str(path))
            return None
        if not checked:
            if len(self._checked) > 4096:
                self._checked.clear()
            self._checked.add(path)
        return entries

    def _skip(self, path: str) -> None:
        if path not in self._skipped:
            self._skipped.add(path)
            self._report("warning", "A file in the metrics directory cannot be read; skipped",
                         {"metrics_file": os.path.basename(path)})

    def _emit(self, reports: list[Report]) -> None:
        for level, message, extra in reports:
            self._report(level, message, extra)

    def _path(self, name: str) -> Path:
        found = self._paths.get(name)
        if found is None:  # Path objects are kept: they cache their text and hash
            if len(self._paths) > 4096:
                self._paths.clear()
            found = self._paths[name] = self.directory / name
        return found

    def _worker_path(self, worker: str, suffix: str = ".mmap") -> Path:
        return self._path(f"{WORKER}{worker}{suffix}")

    @contextlib.contextmanager
    def _locked(self, operation: int) -> Iterator[None]:
        with open(self.directory / LOCK, "a") as lock:
            fcntl.flock(lock, operation)
            yield


class _Families:
    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> list[Metric]:
        return self._metrics


def _fold(into: dict[str, float], entries: Iterable[tuple[str, float]]) -> None:
    """Add values into ``into`` by key; maxima take the larger one."""
    for raw, value in entries:
        if raw.endswith(',"max"]'):
            if value > into.get(raw, 0.0):
                into[raw] = value
        else:
            into[raw] = into.get(raw, 0.0) + value


def _newest(errors: list[Any]) -> list[dict[str, Any]]:
    kept = [e for e in errors if isinstance(e, dict)]
    return sorted(kept, key=lambda e: str(e.get("timestamp", "")))[-RECENT_ERRORS:]


def _pid_of_db(path: str) -> int | None:
    tail = os.path.basename(path).rsplit(".", 1)[0].rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _pid_alive(pid: int) -> bool:
    import psutil  # noqa: PLC0415 - see Fleet.__init__

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def _read_json(path: Path, default: Any) -> Any:
    try:
        value = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return default
    return value if isinstance(value, type(default)) else default


def _write_json(path: Path, value: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(orjson.dumps(value, default=str))
    os.replace(temporary, path)
