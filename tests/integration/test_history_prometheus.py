"""With CALLWATCH_PROMETHEUS_URL set, /monitoring/history is computed by a real Prometheus."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import callwatch
from callwatch.routes import router
from tests.integration._servers import free_port, start_app, start_prometheus, stop, wait_http

pytestmark = pytest.mark.integration


def _up(api: str) -> bool:
    answer = httpx.get(f"{api}/api/v1/query", params={"query": "up"}, timeout=5).json()
    return any(r["value"][1] == "1" for r in answer["data"]["result"])


async def _history(minutes: int) -> dict[str, Any]:
    app = FastAPI()
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/monitoring/history", params={"minutes": minutes})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_history_comes_from_prometheus_when_configured(tmp_path: Path) -> None:
    app_port = free_port()
    prometheus, api = start_prometheus(tmp_path, app_port)
    app = start_app(app_port, {"LOG_DIR": str(tmp_path / "app-logs")})
    callwatch.configure(log_dir=tmp_path / "logs", console=False, prometheus_url=api)
    try:
        base = f"http://127.0.0.1:{app_port}"
        wait_http(f"{base}/metrics.json")
        wait_http(f"{api}/-/ready", timeout=60)
        deadline = time.monotonic() + 60
        while not _up(api) and time.monotonic() < deadline:  # counters seen from zero
            time.sleep(0.5)
        time.sleep(2)
        for i in range(6):
            httpx.post(f"{base}/call/ok-{i}", timeout=5).raise_for_status()
        for i in range(2):
            httpx.post(f"{base}/call/bad-{i}", params={"success": "false"}, timeout=5)
        latest: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = await _history(5)
            latest = body["points"][-1] if body["points"] else {}
            if latest.get("failed") and latest.get("p95_ms"):
                break
            time.sleep(1)
    finally:
        callwatch.shutdown()
        stop(prometheus)
        stop(app)
    assert body["source"] == "prometheus"
    assert 0 < latest["failed"] < latest["calls"]
    assert 0 < latest["error_rate"] < 100
    assert 600.0 <= latest["p95_ms"] <= 700.0  # every turn took 640 ms: its bucket
    assert latest["active_calls"] == 0
    assert list(latest["instances"]) == [f"127.0.0.1:{app_port}"]
    assert [p["t"] for p in body["points"]] == sorted(p["t"] for p in body["points"])


async def test_an_unreachable_prometheus_is_a_502_without_its_address(tmp_path: Path) -> None:
    url = f"http://user:pa55@127.0.0.1:{free_port()}"
    callwatch.configure(log_dir=tmp_path / "logs", console=False, prometheus_url=url)
    app = FastAPI()
    app.include_router(router)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            response = await client.get("/monitoring/history")
    finally:
        callwatch.shutdown()
    assert response.status_code == 502
    assert "pa55" not in response.text and "127.0.0.1" not in response.text
