"""The live dashboard in headless Chromium against a real uvicorn server.

The page must show the very numbers ``/monitoring/metrics`` answers, work with
``MONITORING_TOKEN`` set (token passed in the URL fragment), and ask for the
token instead of showing anything when it has none. A screenshot is kept in
``artifacts/dashboard.png``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import need

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dash-token-7d1f-a9c3"

# The service under test: callwatch, some finished calls (none in flight), one uvicorn worker.
SERVER = r'''
import asyncio, socket, sys, time
import uvicorn
from fastapi import FastAPI
import callwatch
from callwatch import alerting, monitoring
from callwatch.logger import perf_timer
from callwatch.routes import router

callwatch.configure(log_dir=sys.argv[1], console=False, environment="production")
for n in range(40):
    call_id = f"call-{n:04d}"
    monitoring.record_call_start(call_id)
    for stage, seconds in (("stt_transcription", 0.003), ("llm_generation", 0.008),
                           ("tts_synthesis", 0.002)):
        with perf_timer(stage):
            time.sleep(seconds * (1 + n % 4))
    with perf_timer("db.lookup"):  # an operation name with a dot in it
        time.sleep(0.001)
    monitoring.record_response_time(300.0 + 25 * (n % 30), call_id=call_id)
    if n % 8 == 0:
        monitoring.record_error("STT_TIMEOUT", f"speech recognition timed out <b>{n}</b>",
                                {"call_id": call_id})
    if n % 13 == 0:
        monitoring.record_error("LLM_ERROR", "model overloaded", {"call_id": call_id})
    monitoring.record_call_end(call_id, 20.0 + n, success=n % 8 != 0)

# One firing alert (error rate over its critical threshold), kept off the console.
alerting.alert_manager.unregister_handler("console")
asyncio.run(alerting.check_and_alert(monitoring.get_metrics()))

app = FastAPI()
app.include_router(router)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
'''

# Metrics that do not move while no call is in flight.
STABLE = [
    "calls.total_calls", "calls.active_calls", "calls.successful_calls", "calls.failed_calls",
    "calls.average_duration_sec", "calls.average_response_time_ms", "calls.error_rate",
    "calls.window_calls", "calls.response_time_ms.p50", "calls.response_time_ms.p95",
    "calls.response_time_ms.p99", "calls.duration_sec.p95", "errors.total_errors",
    "errors.errors_by_type.STT_TIMEOUT", "errors.errors_by_type.LLM_ERROR",
    "performance.stt_transcription.p50_ms", "performance.llm_generation.p95_ms",
    "performance.tts_synthesis.p99_ms", "logging.dropped_records",
]
SYSTEM = ["system.cpu_percent", "system.memory_percent", "system.disk_percent"]


class _Metrics(HTMLParser):
    """Collects ``data-metric`` elements: name -> [(data-value or None, text)]."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[tuple[str | None, str]]] = {}
        self.hidden: set[str] = set()
        self._open: list[tuple[str, str, str | None]] = []
        self._text: dict[int, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "hidden" in a and a.get("id"):
            self.hidden.add(str(a["id"]))
        if tag in ("br", "img", "input", "meta", "link"):
            return
        self._open.append((tag, a.get("data-metric") or "", a.get("data-value")))
        self._text[len(self._open)] = []

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            return
        depth = len(self._open)
        _, metric, value = self._open.pop()
        text = "".join(self._text.pop(depth, []))
        if self._open:
            self._text[depth - 1].append(text)
        if metric:
            self.found.setdefault(metric, []).append((value, text.strip()))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text[len(self._open)].append(data)


def dig(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data[key]
    return data


def chromium(url: str, profile: Path, *extra: str) -> str:
    command = [
        need("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=6000", "--window-size=1400,1000", *extra, url,
    ]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    problems = ("Uncaught", "Content Security Policy", "callwatch dashboard:")
    assert not [line for line in console if any(p in line for p in problems)], console
    return done.stdout


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(token: str | None) -> str:
        script = tmp_path / "service.py"
        script.write_text(SERVER)
        env = {k: v for k, v in os.environ.items() if k != "MONITORING_TOKEN"}
        if token:
            env["MONITORING_TOKEN"] = token
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "logs")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            proc.kill()
            raise AssertionError(f"service did not start: {proc.communicate(timeout=10)[1][-3000:]}")
        return f"http://127.0.0.1:{int(line)}"

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def metrics(base: str, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base}/monitoring/metrics", headers=headers, timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def shown(dom: str) -> _Metrics:
    parser = _Metrics()
    parser.feed(dom)
    return parser


def assert_matches(page: _Metrics, before: dict[str, Any], after: dict[str, Any]) -> None:
    for name in STABLE:
        assert name in page.found, f"{name} is not on the dashboard"
        expected = dig(after, name)
        assert dig(before, name) == expected, f"{name} moved during the test"
        for value, text in page.found[name]:
            assert value is not None and float(value) == pytest.approx(expected), (name, value, text)
            assert text and text != "—", name
    rate = page.found["calls.calls_per_minute"][0][0]
    low, high = sorted((before["calls"]["calls_per_minute"], after["calls"]["calls_per_minute"]))
    assert rate is not None and low - 1e-9 <= float(rate) <= high + 1e-9
    for name in SYSTEM:
        value = page.found[name][0][0]
        assert value is not None and 0 <= float(value) <= 100, name
    calls = after["calls"]
    success = page.found["derived.success_rate"][0][0]
    expected_rate = 100 * calls["successful_calls"] / (calls["successful_calls"] + calls["failed_calls"])
    assert success is not None and float(success) == pytest.approx(expected_rate)
    assert page.found["calls.total_calls"][0][1] == f"{calls['total_calls']:,}"
    assert page.found["thresholds.active_calls.critical"][0][0] is not None
    dotted = page.found["performance.db.lookup.p95_ms"][0][0]
    assert dotted is not None and float(dotted) == pytest.approx(after["performance"]["db.lookup"]["p95_ms"])


def test_dashboard_shows_the_metrics_route_numbers(server_factory: Any, tmp_path: Path) -> None:
    base = server_factory(None)
    before = metrics(base)
    dom = chromium(f"{base}/monitoring/dashboard", tmp_path / "profile", "--dump-dom")
    after = metrics(base)
    page = shown(dom)
    assert 'data-ready="true"' in dom
    assert_matches(page, before, after)
    alerts = httpx.get(f"{base}/monitoring/alerts", timeout=10).json()
    assert alerts["active"], "the service should have one firing alert"
    assert page.found["alerts.active_count"][0][0] == str(len(alerts["active"]))
    assert all(alert["title"] in dom for alert in alerts["active"])
    latest = after["errors"]["recent_errors"][0]
    assert latest["call_id"] in dom
    assert "<b>" not in dom.split('id="recent-errors"')[1].split("</tbody>")[0]  # text, not markup

    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "dashboard.png"
    shot.unlink(missing_ok=True)
    chromium(f"{base}/monitoring/dashboard", tmp_path / "profile2", f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000


def test_dashboard_works_with_the_token_in_the_fragment(server_factory: Any, tmp_path: Path) -> None:
    base = server_factory(TOKEN)
    assert httpx.get(f"{base}/monitoring/metrics", timeout=10).status_code == 401
    before = metrics(base, TOKEN)
    dom = chromium(f"{base}/monitoring/dashboard#token={TOKEN}", tmp_path / "profile", "--dump-dom")
    after = metrics(base, TOKEN)
    page = shown(dom)
    assert "auth" in page.hidden
    assert_matches(page, before, after)
    assert TOKEN not in dom


def test_dashboard_without_the_token_asks_for_it(server_factory: Any, tmp_path: Path) -> None:
    base = server_factory(TOKEN)
    dom = chromium(f"{base}/monitoring/dashboard", tmp_path / "profile", "--dump-dom")
    page = shown(dom)
    assert "auth" not in page.hidden
    assert 'data-status="locked"' in dom
    assert all(value is None for values in page.found.values() for value, _ in values)
