"""Real pre-fork servers, no settings: every answer is the fleet's, through recycling and kill -9.

Each test starts a server with three workers and no ``PROMETHEUS_MULTIPROC_DIR``,
sends calls on fresh connections (so any worker may take each), counts what the
server acknowledged, and reads the metrics from whichever workers answer.
Figures are printed (``pytest -s``) as ``fleet figures: ...``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson
import pytest

from tests.integration._fleet import (
    CALLS,
    WORKERS,
    Reads,
    fresh,
    send_calls,
    start_server,
)
from tests.integration._servers import stop

pytestmark = pytest.mark.integration

@pytest.mark.parametrize("server", ["gunicorn", "uvicorn", "hypercorn", "granian"])
def test_every_answer_is_the_fleets_through_recycling(server: str, tmp_path: Path) -> None:
    process, base = start_server(server, tmp_path)
    try:
        reads = Reads(base)
        acked_at: list[float] = []
        acked, failed, served = send_calls(base, reads, CALLS, acked_at)
        metrics = reads.until(lambda c: c["total_calls"] >= acked)
        read_at = time.monotonic()
        calls = metrics["calls"]
        print(f"fleet figures: {server}: sent {CALLS}, acknowledged {acked}, counted "
              f"{calls['total_calls']} (failed {calls['failed_calls']} of {failed} sent to fail), "
              f"{len(served)} worker pids served, {reads.count} reads from "
              f"{len(reads.readers)} pids, calls_per_minute {calls['calls_per_minute']}, "
              f"error_rate {calls['error_rate']}")
        assert len(served) >= WORKERS, f"only {len(served)} workers served"
        assert acked <= calls["total_calls"] <= CALLS
        assert calls["failed_calls"] >= failed and calls["active_calls"] == 0
        # The windows count the calls of workers that have exited since (the minute to the
        # sampler's one-second resolution; the error-rate window is five minutes long).
        assert (sum(t >= read_at - 58 for t in acked_at) <= calls["calls_per_minute"]
                <= sum(t >= read_at - 62 for t in acked_at) + CALLS - acked)
        assert calls["window_calls"] == calls["total_calls"]
        assert calls["error_rate"] == pytest.approx(
            100.0 * calls["failed_calls"] / calls["total_calls"], abs=0.01)
        assert calls["response_time_ms"]["p99"] > 2000  # the failed calls' slow turns, fleet-wide
        assert metrics["errors"]["errors_by_type"] == {"LLM_ERROR": calls["failed_calls"]}
    finally:
        stop(process)


def test_a_killed_workers_calls_in_progress_are_abandoned_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    process, base = start_server("gunicorn-steady", tmp_path)
    try:
        reads = Reads(base)
        acked, failed, _ = send_calls(base, reads, 90)
        holds: dict[int, list[str]] = {}
        for i in range(60):  # calls left in progress, until one worker holds three
            call_id = f"held-{i}"
            holds.setdefault(fresh("POST", f"{base}/hold/{call_id}").json()["pid"],
                             []).append(call_id)
            if max(len(v) for v in holds.values()) >= 3:
                break
        victim = max(holds, key=lambda pid: len(holds[pid]))
        held = sum(len(v) for v in holds.values())
        _wait_published(tmp_path, victim, holds[victim])
        os.kill(victim, signal.SIGKILL)  # what the OOM killer does
        lost = len(holds[victim])
        metrics = reads.until(lambda c: c["abandoned_calls"] >= lost)
        calls = metrics["calls"]
        print(f"fleet figures: kill -9: acknowledged {acked} ended + {held} held, "
              f"{lost} held by the killed worker; counted total {calls['total_calls']}, "
              f"abandoned {calls['abandoned_calls']}, active {calls['active_calls']}")
        assert calls["total_calls"] == acked + held
        assert calls["abandoned_calls"] == lost
        assert calls["active_calls"] == held - lost
        assert calls["failed_calls"] == failed + lost
    finally:
        stop(process)
    records = [orjson.loads(line) for path in (tmp_path / "logs" / "errors").glob("*.log")
               for line in path.read_bytes().splitlines()]
    abandoned = [r for r in records if r["message"].startswith("Worker died with calls")]
    assert len(abandoned) == 1
    assert abandoned[0]["extra"]["worker_pid"] == victim
    assert sorted(abandoned[0]["extra"]["abandoned_call_ids"]) == sorted(holds[victim])


def _wait_published(tmp_path: Path, pid: int, call_ids: list[str]) -> None:
    """Until the worker has published its live call ids (it does once a second), bounded."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in (tmp_path / "logs" / ".fleet").glob(f"*/callwatch-w-{pid}-*.calls.json"):
            if set(call_ids) <= set(orjson.loads(path.read_bytes() or b"[]")):
                return
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} did not publish its live calls")
