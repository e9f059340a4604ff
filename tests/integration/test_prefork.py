"""Pre-fork workers: a parent logs, forks three children that log, logs again.

The parent's records are still queued when it forks (60 s flush interval); a
child must neither lose its own records nor write the parent's a second time.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.integration._workers import command, environment, folder_records

pytestmark = pytest.mark.integration

CHILDREN = 3
LINES = 1_000


def _check_every_line_once(log_dir: Path) -> None:
    seen: Counter[tuple[str, int, int]] = Counter()
    for records in folder_records(log_dir, "app").values():
        for r in records:
            seen[(r["message"], r["extra"].get("child", -1), r["extra"]["index"])] += 1
    expected = Counter(
        [("parent before fork", -1, i) for i in range(500)]
        + [("parent after fork", -1, i) for i in range(500)]
        + [("child record", c, i) for c in range(CHILDREN) for i in range(LINES)]
    )
    missing, duplicated = expected - seen, seen - expected
    assert not missing, f"{sum(missing.values())} lost, e.g. {list(missing)[:3]}"
    assert not duplicated, f"{sum(duplicated.values())} extra, e.g. {list(duplicated)[:3]}"


def _run(worker: str, log_dir: Path) -> None:
    env = environment(log_dir, LOG_FLUSH_INTERVAL_MS="60000")
    result = subprocess.run(command(worker, str(CHILDREN), str(LINES)), env=env,
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    report = orjson.loads(result.stdout.splitlines()[-1])
    assert report["statuses"] == [0] * CHILDREN
    assert report["dropped"] == 0


def test_forked_workers_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    _run("prefork", tmp_path / "logs")
    _check_every_line_once(tmp_path / "logs")


def test_multiprocessing_fork_workers_lose_nothing(tmp_path: Path) -> None:
    _run("prefork_multiprocessing", tmp_path / "logs")
    _check_every_line_once(tmp_path / "logs")
