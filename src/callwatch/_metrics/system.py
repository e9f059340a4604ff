"""Host and process resources, sampled at most about once a second.

CPU is measured from our own ``cpu_times`` pair (not ``psutil.cpu_percent``'s
global state, which the application may also use) and primed at creation, so
the first reading covers a real interval. Inside a container, memory is read
against the cgroup limit, which is what the kernel will enforce.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil


__all__ = ["MIN_CPU_INTERVAL_SEC", "SystemSampler", "cgroup_memory"]

MIN_CPU_INTERVAL_SEC = 0.05
_MB = 1024 * 1024
_GB = 1024 * 1024 * 1024


class SystemSampler:
    """Caches one sample; ``latest()`` refreshes it when older than ``max_age``."""

    def __init__(self, disk_path: Path | None = None) -> None:
        self.disk_path = disk_path or Path("/")
        self._lock = threading.Lock()
        self._process: psutil.Process | None = None
        self._cpu_times = (0.0, 0.0)
        self._cpu_at = 0.0
        self._sample: dict[str, Any] | None = None
        self._sampled_at = 0.0

    def prime(self) -> None:
        """Take the first CPU reading (component start; psutil loads here, not at import).

        A forked child gets a lock of its own: the parent's sampling thread may have
        held this one at the fork, and no thread of the child would ever release it.
        """
        self._lock = threading.Lock()
        self._prime()

    def _prime(self) -> psutil.Process:
        import psutil  # noqa: PLC0415

        self._process = process = psutil.Process()
        self._cpu_times, self._cpu_at = _busy_total(), time.monotonic()
        self._sample = None
        return process

    def latest(self, max_age: float = 2.0) -> dict[str, Any]:
        """The cached sample if fresher than ``max_age`` seconds, else a new one."""
        sample = self._sample
        if sample is not None and time.monotonic() - self._sampled_at < max_age:
            return sample
        return self.refresh()

    def refresh(self) -> dict[str, Any]:
        with self._lock:
            sample = self._measure()
            self._sample = sample
            self._sampled_at = time.monotonic()
            return sample

    def _measure(self) -> dict[str, Any]:
        import psutil  # noqa: PLC0415 - see prime()

        process = self._process or self._prime()
        cpu = self._cpu_percent()
        memory = psutil.virtual_memory()
        used, limit = memory.total - memory.available, memory.total
        container = cgroup_memory()
        limited = container is not None and container[1] < memory.total
        if container is not None and limited:
            used, limit = container
        disk = psutil.disk_usage(str(_existing(self.disk_path)))
        with process.oneshot():
            rss = process.memory_info().rss
            try:
                open_files = process.num_fds()
            except (AttributeError, psutil.Error):  # not POSIX
                open_files = len(process.open_files())
        return {
            "cpu_percent": round(cpu, 1),
            "memory_percent": round(100.0 * used / limit, 1) if limit else 0.0,
            "disk_percent": round(disk.percent, 1),
            "memory_available_mb": round(max(limit - used, 0) / _MB, 1),
            "memory_limit_mb": round(limit / _MB, 1),
            "memory_limited_by_cgroup": limited,
            "disk_free_gb": round(disk.free / _GB, 2),
            "process_memory_mb": round(rss / _MB, 1),
            "open_files": open_files,
            "cpu_count": psutil.cpu_count() or 1,
        }

    def _cpu_percent(self) -> float:
        elapsed = time.monotonic() - self._cpu_at
        if elapsed < MIN_CPU_INTERVAL_SEC:
            if self._sample is not None:  # too short an interval to mean anything: keep the last
                return float(self._sample["cpu_percent"])
            time.sleep(MIN_CPU_INTERVAL_SEC - elapsed)  # first read right after priming
        busy, total = _busy_total()
        last_busy, last_total = self._cpu_times
        self._cpu_times, self._cpu_at = (busy, total), time.monotonic()
        if total <= last_total:
            return 0.0
        return min(max(100.0 * (busy - last_busy) / (total - last_total), 0.0), 100.0)


def _busy_total() -> tuple[float, float]:
    import psutil  # noqa: PLC0415 - see SystemSampler.prime()

    times = psutil.cpu_times()
    total = sum(times)
    # guest time is already included in user time on Linux.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _existing(path: Path) -> Path:
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            return candidate
    return Path("/")


def cgroup_memory(root: Path = Path("/sys/fs/cgroup")) -> tuple[int, int] | None:
    """(bytes used less reclaimable page cache, limit) of our cgroup; None if unlimited."""
    v2 = _cgroup_v2_dir(root)
    if v2 is not None:
        limit = _read_int(v2 / "memory.max")
        usage = _read_int(v2 / "memory.current")
        inactive = _stat(v2 / "memory.stat", "inactive_file")
    else:
        v1 = root / "memory"
        limit = _read_int(v1 / "memory.limit_in_bytes")
        usage = _read_int(v1 / "memory.usage_in_bytes")
        inactive = _stat(v1 / "memory.stat", "total_inactive_file")
    if limit is None or usage is None or limit >= 1 << 60:
        return None
    return max(usage - inactive, 0), limit


def _cgroup_v2_dir(root: Path) -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            directory = root / line[3:].lstrip("/")
            if (directory / "memory.max").exists():
                return directory
            if (root / "memory.max").exists():  # cgroup namespace: we are the root
                return root
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    with contextlib.suppress(ValueError):
        return int(text)
    return None


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0

