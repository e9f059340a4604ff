"""Reading what callwatch wrote, for assertions."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-strict JSON constant {name}")


def strict_loads(line: bytes | str) -> dict[str, Any]:
    """Parse one line as strict JSON: no NaN/Infinity, exactly one object."""
    value = json.loads(line, parse_constant=_reject_constant)
    assert isinstance(value, dict)
    return value


def read_records(log_dir: Path, folder: str) -> list[dict[str, Any]]:
    """Every record in one category folder, plain and gzipped days, in file order."""
    from callwatch._logging import pipeline

    if pipeline.current is not None:
        pipeline.current.writer.flush()
    records = []
    for path in sorted((log_dir / folder).glob("*.log*")):
        if path.name.endswith(".head"):
            continue
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        records.extend(strict_loads(line) for line in data.splitlines() if line)
    return records
