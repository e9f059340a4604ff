"""A real Prometheus scrapes a real uvicorn app exposing callwatch; promtool accepts the text."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import need
from tests.integration._servers import free_port, start_app, start_prometheus, stop, wait_http

pytestmark = pytest.mark.integration


def _query(prometheus: str, expression: str) -> float | None:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=5)
    result = answer.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_recorded_values(tmp_path: Path) -> None:
    app_port = free_port()
    prometheus, api = start_prometheus(tmp_path, app_port)
    app = start_app(app_port, {"LOG_DIR": str(tmp_path / "logs")})
    try:
        base = f"http://127.0.0.1:{app_port}"
        wait_http(f"{base}/metrics.json")
        for i in range(5):
            httpx.post(f"{base}/call/ok-{i}", timeout=5).raise_for_status()
        for i in range(2):
            httpx.post(f"{base}/call/bad-{i}", params={"success": "false"}, timeout=5)
        wait_http(f"{api}/-/ready", timeout=60)
        expected = {
            "callwatch_calls_started_total": 7.0,
            'callwatch_calls_ended_total{outcome="failure"}': 2.0,
            'callwatch_errors_total{error_type="LLM_ERROR"}': 2.0,
            "callwatch_response_time_seconds_count": 7.0,
            'callwatch_response_time_seconds_bucket{le="0.7"}': 7.0,
            "callwatch_call_duration_seconds_sum": 210.0,
        }
        deadline = time.monotonic() + 60
        seen: dict[str, float | None] = {}
        while time.monotonic() < deadline:
            seen = {q: _query(api, q) for q in expected}
            if seen == expected:
                break
            time.sleep(0.5)
        assert seen == expected
        p95 = _query(api, "histogram_quantile(0.95, callwatch_response_time_seconds_bucket)")
        assert p95 is not None and 0.6 <= p95 <= 0.7
    finally:
        stop(prometheus)
        stop(app)


def test_promtool_accepts_the_exposition(tmp_path: Path) -> None:
    promtool = need("promtool")
    port = free_port()
    app = start_app(port, {"LOG_DIR": str(tmp_path / "logs")})
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/metrics.json")
        httpx.post(f"{base}/call/a", params={"success": "false"}, timeout=5)
        body = httpx.get(f"{base}/prometheus", timeout=5).content
    finally:
        stop(app)
    check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=30, check=False)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_prometheus_scraping_a_recycling_fleet_agrees_and_sees_no_counter_reset(
    tmp_path: Path,
) -> None:
    """uvicorn --workers 3 --limit-max-requests, no settings: any worker answers a scrape."""
    from tests.integration._fleet import Reads, send_calls, start_server

    prometheus_bin = need("prometheus")
    app, base = start_server("uvicorn", tmp_path)
    prom_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: fleet\n    metrics_path: /prometheus\n"
        f"    static_configs:\n      - targets: ['{base.removeprefix('http://')}']\n"
    )
    prometheus = subprocess.Popen(
        [prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{api}/-/ready", timeout=60)
        reads = Reads(base)
        acked, failed, served = send_calls(base, reads, 150)
        counted = reads.until(lambda c: c["total_calls"] >= acked)["calls"]["total_calls"]
        deadline = time.monotonic() + 30
        scraped = None
        while time.monotonic() < deadline:
            scraped = _query(api, "callwatch_calls_started_total")
            if scraped == counted:
                break
            time.sleep(0.5)
        resets = _query(api, "resets(callwatch_calls_started_total[10m])")
        failures = _query(api, 'callwatch_calls_ended_total{outcome="failure"}')
        print(f"fleet figures: prometheus: acknowledged {acked}, counted {counted}, scraped "
              f"{scraped}, failures {failures}, counter resets {resets}, "
              f"{len(served)} worker pids served")
        assert len(served) > 3  # the workers were recycled while Prometheus scraped them
        assert scraped == counted >= acked
        assert failures is not None and failures >= failed
        assert resets == 0.0
    finally:
        stop(prometheus)
        stop(app)
