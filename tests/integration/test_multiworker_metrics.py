"""Under `uvicorn --workers 3`, whichever worker answers reports the totals of all workers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration._servers import free_port, start_app, stop, wait_http

pytestmark = pytest.mark.integration

WORKERS = 3
MAX_REQUESTS = 600


def _fresh(url: str, **kwargs: Any) -> httpx.Response:
    """A request on a new connection, so the kernel may hand it to any worker."""
    with httpx.Client(headers={"Connection": "close"}, timeout=10) as client:
        return client.request(url=url, **kwargs)


def test_every_worker_reports_the_totals_of_all(tmp_path: Path) -> None:
    directory = tmp_path / "multiproc"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale from an earlier run")
    port = free_port()
    app = start_app(port, {"LOG_DIR": str(tmp_path / "logs"),
                           "PROMETHEUS_MULTIPROC_DIR": str(directory)}, workers=WORKERS)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/metrics.json")
        served: dict[int, int] = {}
        sent = failed = 0
        while sent < MAX_REQUESTS and (sent < 60 or len(served) < WORKERS):
            success = sent % 5 != 0
            pid = _fresh(f"{base}/call/c-{sent}", method="POST",
                         params={"success": str(success).lower()}).json()["pid"]
            served[pid] = served.get(pid, 0) + 1
            sent += 1
            failed += not success
        assert len(served) == WORKERS, f"only {len(served)} workers served {sent} requests"

        # Workers publish about once a second; poll until every answering worker agrees.
        deadline = time.monotonic() + 20
        answers: dict[int, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            answer = _fresh(f"{base}/metrics.json", method="GET").json()
            calls = answer["metrics"]["calls"]
            if (calls["total_calls"], calls["failed_calls"]) == (sent, failed):
                answers[answer["pid"]] = answer["metrics"]
            if len(answers) == WORKERS:
                break
            time.sleep(0.1)
        assert len(answers) == WORKERS, f"workers agreeing on the totals: {sorted(answers)}"
        for metrics in answers.values():
            assert metrics["calls"]["successful_calls"] == sent - failed
            assert metrics["calls"]["active_calls"] == 0
            assert metrics["errors"]["errors_by_type"] == {"LLM_ERROR": failed}
            assert metrics["calls"]["response_time_ms"]["p50"] > 600

        text = _fresh(f"{base}/prometheus", method="GET").text
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples[("callwatch_calls_started_total", ())] == sent
        assert samples[("callwatch_calls_ended_total", (("outcome", "failure"),))] == failed
        assert samples[("callwatch_response_time_seconds_count", ())] == sent
        assert not any(name.startswith("callwatch_internal") for name, _ in samples)
    finally:
        stop(app)
    assert not (directory / "counter_999999.db").exists()  # the stale file was cleaned at start
