"""Real pre-fork servers started with no settings, and a client counting what they acknowledged."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REQUIRE_INTEGRATION
from tests.integration._servers import HERE, free_port, stop, wait_http

WORKERS = 3
CALLS = 150
FAIL_EVERY = 10  # every 10th call fails: a 10 % error rate


def need_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        message = f"{name} is not installed (pip install -e '.[dev]')"
        if REQUIRE_INTEGRATION:
            pytest.fail(message)
        pytest.skip(message)


def command(server: str, port: int) -> list[str]:
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


def start_server(server: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    need_module(server.split("-", maxsplit=1)[0])
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")}
    env["LOG_DIR"] = str(tmp_path / "logs")
    process = subprocess.Popen(command(server, port), cwd=HERE, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/metrics.json", timeout=60)
    except TimeoutError:
        stop(process)
        raise
    return process, base


def fresh(method: str, url: str, **kwargs: Any) -> httpx.Response:
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
                answer = fresh("GET", f"{self.base}/metrics.json").json()
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


def send_calls(
    base: str, reads: Reads, calls: int, acked_at: list[float] | None = None
) -> tuple[int, int, Counter[int]]:
    """(acknowledged, of which failed, calls per worker pid); a read every 25 calls."""
    acked = failed = 0
    served: Counter[int] = Counter()
    for i in range(calls):
        success = i % FAIL_EVERY != 0
        try:
            answer = fresh("POST", f"{base}/call/c-{i}",
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
