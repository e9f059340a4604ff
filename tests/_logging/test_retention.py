from __future__ import annotations

import datetime as dt
import gzip
import threading
from pathlib import Path

from callwatch._logging.retention import maintain
from callwatch.config import Retention

TODAY = dt.date(2026, 3, 10)


def seed(log_dir: Path, folder: str, prefix: str, days_ago: int, text: str = "x") -> Path:
    day = (TODAY - dt.timedelta(days=days_ago)).isoformat()
    path = log_dir / folder / f"{prefix}_{day}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{{"message":"{text}"}}\n')
    return path


def test_past_days_are_compressed_and_today_and_yesterday_are_not(tmp_path: Path) -> None:
    today = seed(tmp_path, "app", "app", 0)
    yesterday = seed(tmp_path, "app", "app", 1)
    older = seed(tmp_path, "app", "app", 2, text="older")
    result = maintain(tmp_path, Retention(), TODAY)
    assert today.exists() and yesterday.exists()
    assert not older.exists()
    packed = older.with_name(older.name + ".gz")
    assert gzip.decompress(packed.read_bytes()) == b'{"message":"older"}\n'
    assert result.compressed == [str(older)]


def test_each_category_keeps_its_own_retention(tmp_path: Path) -> None:
    kept = [
        seed(tmp_path, "app", "app", 29),
        seed(tmp_path, "errors", "error", 89),
        seed(tmp_path, "audit", "audit", 364),
        seed(tmp_path, "performance", "performance", 29),
    ]
    gone = [
        seed(tmp_path, "app", "app", 30),
        seed(tmp_path, "errors", "error", 90),
        seed(tmp_path, "audit", "audit", 365),
        seed(tmp_path, "performance", "performance", 30),
    ]
    result = maintain(tmp_path, Retention(), TODAY)
    assert all(p.with_name(p.name + ".gz").exists() for p in kept)
    assert not any(p.exists() or p.with_name(p.name + ".gz").exists() for p in gone)
    assert sorted(result.deleted) == sorted(str(p) for p in gone)


def test_retention_is_configurable(tmp_path: Path) -> None:
    old = seed(tmp_path, "app", "app", 5)
    maintain(tmp_path, Retention(app=3), TODAY)
    assert not old.exists()
    assert not old.with_name(old.name + ".gz").exists()


def test_a_late_writer_after_compression_loses_nothing(tmp_path: Path) -> None:
    first = seed(tmp_path, "app", "app", 3, text="first")
    maintain(tmp_path, Retention(), TODAY)
    seed(tmp_path, "app", "app", 3, text="late")  # recreated by a late writer
    maintain(tmp_path, Retention(), TODAY)
    packed = first.with_name(first.name + ".gz")
    assert gzip.decompress(packed.read_bytes()) == b'{"message":"first"}\n{"message":"late"}\n'


def test_concurrent_maintenance_compresses_each_day_exactly_once(tmp_path: Path) -> None:
    paths = [seed(tmp_path, "app", "app", days, text=f"d{days}") for days in range(2, 12)]
    results = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        results.append(maintain(tmp_path, Retention(), TODAY))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    compressed = [c for r in results for c in r.compressed]
    assert sorted(compressed) == sorted(str(p) for p in paths)
    for days, path in zip(range(2, 12), paths, strict=True):
        packed = path.with_name(path.name + ".gz")
        assert gzip.decompress(packed.read_bytes()) == f'{{"message":"d{days}"}}\n'.encode()


def test_leftover_temporary_files_are_removed(tmp_path: Path) -> None:
    seed(tmp_path, "app", "app", 4)
    stale = tmp_path / "app" / f"app_{(TODAY - dt.timedelta(days=4)).isoformat()}.log.gz.tmp-999"
    stale.write_bytes(b"half")
    maintain(tmp_path, Retention(), TODAY)
    assert not stale.exists()


def test_a_compressed_audit_day_still_verifies(tmp_path: Path) -> None:
    from callwatch._logging.audit import AuditChain, verify_file
    from callwatch._logging.render import render

    day = (TODAY - dt.timedelta(days=3)).isoformat()
    path = tmp_path / "audit" / f"audit_{day}.log"
    chain = AuditChain(None)
    for amount in (1, 2, 3):
        chain.append(path, {"message": "Payment processed", "extra": {"amount": amount}}, render)
    chain.close()
    maintain(tmp_path, Retention(), TODAY)
    packed = path.with_name(path.name + ".gz")
    assert not path.exists() and packed.exists()
    result = verify_file(packed)
    assert result.ok, result.reason
    assert result.records == 3


def test_an_explicit_pass_waits_for_the_lock_instead_of_skipping(tmp_path: Path) -> None:
    import fcntl
    import os

    old = seed(tmp_path, "app", "app", 4)
    holder = os.open(tmp_path / ".callwatch-maintenance.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a background pass of another process
    assert maintain(tmp_path, Retention(), TODAY).skipped
    release = threading.Timer(0.2, os.close, args=(holder,))
    release.start()
    result = maintain(tmp_path, Retention(), TODAY, wait=True)
    release.join()
    assert not result.skipped
    assert result.compressed == [str(old)]
