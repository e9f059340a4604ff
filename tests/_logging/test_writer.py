from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import callwatch
from callwatch._logging import pipeline
from callwatch._logging.stats import STATS
from callwatch.logger import audit_log, log
from tests.helpers import read_records


@contextmanager
def stalled_writer() -> Iterator[None]:
    """Hold the writer's lock, as a disk that stopped answering would."""
    writer = pipeline.get().writer
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer._lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait()
    try:
        yield
    finally:
        release.set()
        thread.join()


def test_full_queue_drops_are_counted_said_once_and_reported(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    callwatch.configure(log_dir=tmp_path, console=False, queue_size=100)
    try:
        before = STATS.dropped
        with stalled_writer():
            for i in range(500):
                log.info("line %d", i)
        assert STATS.dropped - before == 400
        pipeline.get().writer.flush()
        records = read_records(tmp_path, "app")
    finally:
        callwatch.shutdown()
    assert [r["message"] for r in records[:100]] == [f"line {i}" for i in range(100)]
    (notice,) = [r for r in records if r["message"].startswith("Log records dropped")]
    assert notice["level"] == "WARNING"
    assert notice["extra"]["dropped_records"] == 400
    assert capfd.readouterr().err.count("log queue full") == 1


def test_block_policy_waits_for_room_instead_of_dropping(tmp_path: Path) -> None:
    callwatch.configure(
        log_dir=tmp_path, console=False, queue_size=50, queue_policy="block", queue_block_ms=1000
    )
    try:
        before = STATS.dropped
        for i in range(5000):
            log.info("line %d", i)
        assert STATS.dropped == before
        assert len(read_records(tmp_path, "app")) == 5000
    finally:
        callwatch.shutdown()


def test_errors_and_audit_are_on_disk_when_the_call_returns(tmp_path: Path) -> None:
    callwatch.configure(log_dir=tmp_path, console=False, flush_interval_ms=60_000)
    try:
        log.info("queued first")
        log.error("durable")
        audit_log("Payment processed", amount=12)
        # No flush: read the files directly, as a process killed now would leave them.
        app = b"".join(p.read_bytes() for p in (tmp_path / "app").glob("*.log"))
        errors = b"".join(p.read_bytes() for p in (tmp_path / "errors").glob("*.log"))
        audit = b"".join(p.read_bytes() for p in (tmp_path / "audit").glob("*.log"))
    finally:
        callwatch.shutdown()
    assert app.count(b"\n") == 3
    assert app.index(b"queued first") < app.index(b"durable") < app.index(b"Payment processed")
    assert b"durable" in errors
    assert b"Payment processed" in audit


def test_order_within_a_process_is_kept_in_every_file(log_dir: Path) -> None:
    for i in range(200):
        if i % 7 == 0:
            log.error("event %d", i)
        else:
            log.info("event %d", i)
    app = [int(r["message"].split()[1]) for r in read_records(log_dir, "app")]
    errors = [int(r["message"].split()[1]) for r in read_records(log_dir, "errors")]
    assert app == list(range(200))
    assert errors == list(range(0, 200, 7))


def test_records_reach_the_os_within_the_flush_interval(tmp_path: Path) -> None:
    callwatch.configure(log_dir=tmp_path, console=False, flush_interval_ms=20)
    try:
        log.info("soon on disk")
        done = threading.Event()
        for _ in range(100):  # bounded: up to ~5 s in total
            if any(b"soon on disk" in p.read_bytes() for p in (tmp_path / "app").glob("*.log")):
                done.set()
                break
            threading.Event().wait(0.05)
        assert done.is_set()
    finally:
        callwatch.shutdown()


def test_concurrent_drops_are_counted_exactly_and_every_record_is_accounted_for(
    tmp_path: Path,
) -> None:
    callwatch.configure(log_dir=tmp_path, console=False, queue_size=100)
    threads, per_thread = 4, 1000
    try:
        dropped_before, written_before = STATS.dropped, STATS.written
        with stalled_writer():
            workers = [
                threading.Thread(target=lambda: [log.info("x") for _ in range(per_thread)])
                for _ in range(threads)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        records = read_records(tmp_path, "app")
        dropped, written = STATS.dropped - dropped_before, STATS.written - written_before
    finally:
        callwatch.shutdown()
    kept = [r for r in records if r["message"] == "x"]
    notices = [r for r in records if r["message"].startswith("Log records dropped")]
    assert len(kept) + dropped == threads * per_thread
    assert sum(n["extra"]["dropped_records"] for n in notices) == dropped
    assert written == len(records)

