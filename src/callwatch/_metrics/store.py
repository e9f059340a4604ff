"""One worker's values in a memory-mapped file, written at the moment they are recorded.

The file is prometheus_client's ``MmapedDict`` (the store behind its own
multiprocess mode): a write is a copy into shared memory, so the value is in
the fleet's totals when the recording call returns and survives a SIGKILL of
the worker the next instant. Keys come from :func:`callwatch._metrics.specs.key`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict

__all__ = ["Durable", "read_entries", "replace_file"]


class Durable:
    """This worker's file. Hold :attr:`lock` around every :meth:`write` (and the update
    it records): the value written must be the one counted, whatever thread wrote last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._file = MmapedDict(str(path))  # type: ignore[no-untyped-call]
        self._write = self._file.write_value

    def write(self, key: str, value: float) -> None:
        self._write(key, value, 0.0)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        with self.lock:
            self._file.close()  # type: ignore[no-untyped-call]


def read_entries(path: Path | str, check_header: bool = True) -> list[tuple[str, float]]:
    """``(key, value)`` of a file; raises on a truncated or foreign file (callers skip it)."""
    if check_header:
        with open(path, "rb") as header:
            used = int.from_bytes(header.read(4), "little", signed=True)
            if not 8 <= used <= os.fstat(header.fileno()).st_size:
                raise ValueError(f"{path}: not a metrics file")
    values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
    return [(raw_key, value) for raw_key, value, _, _ in values]


def replace_file(path: Path, values: dict[str, float]) -> None:
    """Write ``values`` as a new file renamed over ``path``: readers see old or new, whole."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.remove(temporary)
    store = Durable(temporary)
    try:
        for raw, value in values.items():
            store.write(raw, value)
    finally:
        store.close()
    os.replace(temporary, path)
