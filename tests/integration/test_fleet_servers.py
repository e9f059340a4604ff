"""Real pre-fork servers, no settings: every answer is the fleet's, through recycling and kill -9.

Each test starts a server with three workers and no ``PROMETHEUS_MULTIPROC_DIR``,
sends calls on fresh connections (so any worker may take each), counts what the
server acknowledged, and reads the metrics from whichever workers answer.
Figures are printed (``pytest -s``) as ``fleet figures: ...``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import REQUIRE_INTEGRATION
from tests.integration._servers import HERE, free_port, stop, wait_http

pytestmark = pytest.mark.integration

WORKERS = 3
CALLS = 150
FAIL_EVERY = 10  # every 10th call fails: a 10 % error rate


def _need_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        message = f"{name} is not installed (pip install -e '.[dev]')"
        if REQUIRE_INTEGRATION:
            pytest.fail(message)
        pytest.skip(message)


def _command(server: str, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if server in ("gunicorn", "gunicorn-steady"):
        recycle = ["--max-requests", "40", "--max-requests-jitter", "20"]
        return [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-k",
                "uvicorn.workers.UvicornWorker", *(recycle if server == "gunicorn" else []),
                "-b", bind, "--log-level", "warning", "_fleet_app:app"]
    if server == "uvicorn":  # every worker recycles at once, after its 40th request
        return [sys.executable, "-m", "uvicorn", "_fleet_app:app", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(WORKERS), "--limit-max-requests", "40",
                "--log-level", "warning"]
    if server == "hypercorn":
        return [sys.executable, "-m", "hypercorn", "-w", str(WORKERS), "-b", bind,
                "--max-requests", "40", "_fleet_app:app"]
    if server == "granian":
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--workers",
                str(WORKERS), "--host", "127.0.0.1", "--port", str(port), "--log-level",
                "warning", "_fleet_app:app"]
    raise ValueError(server)


def _start(server: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    _need_module(server.split("-", maxsplit=1)[0])
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")}
    env["LOG_DIR"] = str(tmp_path / "logs")
    process = subprocess.Popen(_command(server, port), cwd=HERE, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/metrics.json", timeout=60)
    except TimeoutError:
        stop(process)
        raise
    return process, base


def _fresh(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request on a new connection, so the kernel may hand it to any worker."""
    with httpx.Client(headers={"Connection": "close"}, timeout=10) as client:
        return client.request(method, url, **kwargs)


class Reads:
    """Metrics reads from whichever worker answers; asserts no counter ever goes backwards."""

    COUNTERS = ("total_calls", "successful_calls", "failed_calls", "abandoned_calls")

    def __init__(self, base: str) -> None:
        self.base = base
        self.last = dict.fromkeys(self.COUNTERS, 0)
        self.readers: set[int] = set()
        self.count = 0

    def read(self) -> dict[str, Any]:
        for _ in range(5):  # a worker being recycled may drop the connection
            try:
                answer = _fresh("GET", f"{self.base}/metrics.json").json()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("no worker answered")
        calls = answer["metrics"]["calls"]
        for name in self.COUNTERS:
            assert calls[name] >= self.last[name], f"{name} went back: {self.last} -> {calls}"
            self.last[name] = calls[name]
        assert calls["total_calls"] == (calls["successful_calls"] + calls["failed_calls"]
                                        + calls["active_calls"]), calls
        self.readers.add(answer["pid"])
        self.count += 1
        return dict(answer["metrics"])

    def until(self, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        metrics = self.read()
        while not predicate(metrics["calls"]) and time.monotonic() < deadline:
            time.sleep(0.2)
            metrics = self.read()
        return metrics


def _send_calls(
    base: str, reads: Reads, calls: int, acked_at: list[float] | None = None
) -> tuple[int, int, Counter[int]]:
    """(acknowledged, of which failed, calls per worker pid); a read every 25 calls."""
    acked = failed = 0
    served: Counter[int] = Counter()
    for i in range(calls):
        success = i % FAIL_EVERY != 0
        try:
            answer = _fresh("POST", f"{base}/call/c-{i}",
                            params={"success": str(success).lower()})
        except httpx.HTTPError:
            continue  # not acknowledged (a worker recycling as it was asked)
        if answer.status_code == 200:
            if acked_at is not None:
                acked_at.append(time.monotonic())
            acked += 1
            failed += not success
            served[answer.json()["pid"]] += 1
        if i % 25 == 0:
            reads.read()
    return acked, failed, served


@pytest.mark.parametrize("server", ["gunicorn", "uvicorn", "hypercorn", "granian"])
def test_every_answer_is_the_fleets_through_recycling(server: str, tmp_path: Path) -> None:
    process, base = _start(server, tmp_path)
    try:
        reads = Reads(base)
        acked_at: list[float] = []
        acked, failed, served = _send_calls(base, reads, CALLS, acked_at)
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
    process, base = _start("gunicorn-steady", tmp_path)
    try:
        reads = Reads(base)
        acked, failed, _ = _send_calls(base, reads, 90)
        holds: dict[int, list[str]] = {}
        for i in range(60):  # calls left in progress, until one worker holds three
            call_id = f"held-{i}"
            holds.setdefault(_fresh("POST", f"{base}/hold/{call_id}").json()["pid"],
                             []).append(call_id)
            if max(len(v) for v in holds.values()) >= 3:
                break
        victim = max(holds, key=lambda pid: len(holds[pid]))
        held = sum(len(v) for v in holds.values())
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
    # Ids are named where known: a worker writes its live ids once a second.
    named = abandoned[0]["extra"]["abandoned_call_ids"]
    assert named and set(named) <= set(holds[victim])
