"""Counters of the log pipeline's own health, read by monitoring and health checks."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["STATS", "PipelineStats"]


@dataclass
class PipelineStats:
    """Plain integers, read by any thread; updated under a lock (:meth:`add`, or the writer's)."""

    dropped: int = 0  # records lost: queue full, disk full, unwritable LOG_DIR
    written: int = 0  # lines handed to the operating system
    write_errors: int = 0  # failed write() calls
    internal_errors: int = 0  # records that could not be built or rendered at all
    otlp_dropped: int = 0  # records and spans the OTLP export could not send

    def add(self, name: str, count: int = 1) -> None:
        """Increment a counter exactly, even from several threads (only on rare paths)."""
        with _lock:
            setattr(self, name, getattr(self, name) + count)


_lock = threading.Lock()
STATS = PipelineStats()
