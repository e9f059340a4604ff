"""The dashboard and the call page in headless Chromium against a real uvicorn server.

The dashboard must show the very numbers ``/monitoring/metrics`` and
``/monitoring/history`` answer, keep showing the history after a restart, link
call ids to their pages, work with ``MONITORING_TOKEN`` set (token passed in the
URL fragment), and ask for the token instead of showing anything when it has
none. A call page must show the turns of ``/monitoring/calls/{id}``. Screenshots
are kept in ``artifacts/`` (dashboard light and dark, a call page).
"""

from __future__ import annotations

import os
import re
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

# The service under test: callwatch, some finished calls (none in flight) with their turns
# logged, one uvicorn worker. With "seed", six hours of history are recorded first: calls
# measured minute by minute by the real recorder (at past minutes), one alert fired and
# resolved in between. Without it, the service is a restart over the same log directory.
SERVER = r'''
import asyncio, math, socket, sys, time
from datetime import datetime, timezone
import uvicorn
from fastapi import FastAPI
import callwatch
from callwatch import _history, _runtime, alerting, monitoring
from callwatch._alerts.model import Alert
from callwatch._metrics import operations
from callwatch.logger import audit_log, clear_context, log, perf_timer, set_call_id
from callwatch.routes import router

log_dir = sys.argv[1]
callwatch.configure(log_dir=log_dir, console=False, environment="production")


def seed_history(minutes):
    _history.recorder.stop(1.0)  # the running recorder must not count the seeded calls
    start = (time.time() // 60 - minutes - 2) * 60
    at = lambda minute: datetime.fromtimestamp(start + 60 * minute + 5, timezone.utc)
    alerts = [
        Alert("critical", "Turn latency p95 over budget", "p95 1180 ms", "response_time_p95_ms",
              1180.0, 800.0, at(300), status="firing"),
        Alert("critical", "Turn latency p95 over budget", "back under", "response_time_p95_ms",
              640.0, 800.0, at(321), status="resolved"),
    ]
    recorder = _history.HistoryRecorder(is_writer=lambda: True, alerts=lambda: alerts)
    recorder.directory = _history.recorder.directory
    monitoring.production_monitor.add_call_listener(recorder.ended.on_start, recorder.ended.on_end)
    recorder.sample(start)
    for minute in range(minutes):
        wave = math.sin(minute / 23.0)
        slow = 300 <= minute <= 320
        for n in range(2 + minute % 5):  # calls that last a few minutes: the active ones
            monitoring.record_call_start(f"a{minute:03d}-{n}")
        for n in range(2 + (minute - 3) % 5 if minute >= 3 else 0):
            monitoring.record_call_end(f"a{minute - 3:03d}-{n}", 185.0 + 7 * n)
        for n in range(6 + (minute * 7) % 9):
            call_id = f"h{minute:03d}-{n}"
            monitoring.record_call_start(call_id)
            for turn in range(3):
                latency = 430 + 120 * wave + 37 * ((n + turn) % 5) + (520 if slow else 0)
                monitoring.record_response_time(latency, call_id=call_id)
                operations.observe("stt_transcription", 90 + 10 * turn + 15 * wave)
                operations.observe("llm_generation", 260 + 60 * wave + (420 if slow else 0))
                operations.observe("tts_synthesis", 110 + 8 * n)
            failed = (slow and n % 3 == 0) or (minute % 17 == 0 and n == 0)
            monitoring.record_call_end(call_id, 40.0 + (minute * 37 + n * 53) % 997 / 3.7,
                                       success=not failed)
        recorder.sample(start + 60 * (minute + 1))
    monitoring.production_monitor.remove_call_listener(recorder.ended.on_start, recorder.ended.on_end)
    monitoring.production_monitor.reset()  # the live figures are the calls below
    _history.recorder.start(_runtime.settings())


def one_call(n):
    call_id = f"call-{n:04d}"
    set_call_id(call_id)
    monitoring.record_call_start(call_id)
    log.info("Call started", extra={"direction": "inbound"})
    for turn in range(1, 4):
        for stage, seconds in (("stt_transcription", 0.003), ("llm_generation", 0.008),
                               ("tts_synthesis", 0.002)):
            with perf_timer(stage):
                time.sleep(seconds * (1 + n % 4))
        latency = 300.0 + 25 * (n % 30) + 40 * turn
        log.info("turn", extra={
            "turn": turn, "turn_id": f"{call_id}-{turn}", "latency_ms": latency,
            "interrupted": turn == 2 and n % 3 == 0,
            "stages": {"stt": {"ttfb_ms": 0.25 * latency},
                       "llm": {"ttfb_ms": 0.5 * latency, "prompt_tokens": 180 + turn,
                               "completion_tokens": 40 + n},
                       "tts": {"ttfb_ms": 0.2 * latency, "characters": 120 + n}}})
    with perf_timer("db.lookup"):  # an operation name with a dot in it
        time.sleep(0.001)
    monitoring.record_response_time(300.0 + 25 * (n % 30), call_id=call_id)
    if n % 8 == 0:
        monitoring.record_error("STT_TIMEOUT", f"speech recognition timed out <b>{n}</b>",
                                {"call_id": call_id})
        try:
            raise TimeoutError("no transcript within 5 s")
        except TimeoutError:
            log.exception("STT failed")
    if n % 13 == 0:
        monitoring.record_error("LLM_ERROR", "model overloaded", {"call_id": call_id})
    monitoring.record_call_end(call_id, 20.0 + n, success=n % 8 != 0)
    audit_log("Call completed", call_id=call_id, duration_sec=20.0 + n, cost_usd=round(0.0125 * (1 + n % 3), 4))
    clear_context()


if sys.argv[2:] == ["seed"]:
    seed_history(6 * 60)
    for n in range(40):
        one_call(n)
    # One firing alert (error rate over its critical threshold), kept off the console.
    alerting.alert_manager.unregister_handler("console")
    asyncio.run(alerting.check_and_alert(monitoring.get_metrics()))
_runtime.flush()

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
    problems = ("Uncaught", "Content Security Policy", "callwatch dashboard:", "callwatch call page:")
    assert not [line for line in console if any(p in line for p in problems)], console
    return done.stdout


class Services:
    """Starts the service under test over one log directory; stops whatever it started."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.running: dict[str, subprocess.Popen[str]] = {}

    def start(self, token: str | None, *, seed: bool = True) -> str:
        script = self.tmp_path / "service.py"
        script.write_text(SERVER)
        env = {k: v for k, v in os.environ.items() if k != "MONITORING_TOKEN"}
        if token:
            env["MONITORING_TOKEN"] = token
        proc = subprocess.Popen(
            [sys.executable, str(script), str(self.tmp_path / "logs"), *(["seed"] if seed else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=self.tmp_path,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip():
            proc.kill()
            raise AssertionError(f"service did not start: {proc.communicate(timeout=10)[1][-3000:]}")
        base = f"http://127.0.0.1:{int(line)}"
        self.running[base] = proc
        return base

    def stop(self, base: str) -> None:
        proc = self.running.pop(base)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    started = Services(tmp_path)
    yield started
    for base in list(started.running):
        started.stop(base)


@pytest.fixture
def server_factory(services: Services) -> Any:
    return services.start


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


def get(base: str, path: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base}/monitoring/{path}", headers=headers, timeout=10)
    assert response.status_code in (200, 404), response.text
    return response.json()


def range_summary(points: list[dict[str, Any]]) -> dict[str, float | None]:
    """What the dashboard's range line must show for these history points."""
    ended, failed = sum(p["ended"] for p in points), sum(p["failed"] for p in points)
    p95s = [p["p95_ms"] for p in points if p["p95_ms"] is not None]
    return {
        "range.calls": sum(p["calls"] for p in points),
        "range.failed": failed,
        "range.error_rate": 100 * failed / ended if ended else 0,
        "range.worst_p95_ms": max(p95s) if p95s else None,
        "range.peak_active": max(p["active_calls"] for p in points) if points else None,
        "range.alerts_fired": sum(p.get("alerts_fired", 0) for p in points),
    }


def assert_history_shown(page: _Metrics, dom: str, *answers: dict[str, Any]) -> None:
    """The range line and the latency chart show one of the history answers (read before
    and after the page: a minute may have closed in between)."""
    shown_values = {name: page.found[name][0][0] for name in range_summary([])}
    plotted = re.search(r'id="latency-chart"[^>]*data-points="(\d+)"', dom)
    assert plotted is not None, "the latency chart was not drawn"
    matches = []
    for answer in answers:
        expected = range_summary(answer["points"])
        same = all(
            (value is None) if expected[name] is None
            else value is not None and float(value) == pytest.approx(expected[name])
            for name, value in shown_values.items()
        )
        matches.append(same and int(plotted.group(1)) == len(answer["points"]))
    assert any(matches), (shown_values, [range_summary(a["points"]) for a in answers])


def screenshot(url: str, profile: Path, name: str, *extra: str) -> Path:
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / name
    shot.unlink(missing_ok=True)
    chromium(url, profile, f"--screenshot={shot}", *extra)
    assert shot.stat().st_size > 20_000
    return shot


def test_dashboard_shows_the_metrics_route_numbers(server_factory: Any, tmp_path: Path) -> None:
    base = server_factory(None)
    before = metrics(base)
    history_before = get(base, "history?minutes=60&step=1")
    dom = chromium(f"{base}/monitoring/dashboard", tmp_path / "profile", "--dump-dom")
    after = metrics(base)
    history_after = get(base, "history?minutes=60&step=1")
    page = shown(dom)
    assert 'data-ready="true"' in dom
    assert_matches(page, before, after)
    assert_history_shown(page, dom, history_before, history_after)
    assert len(history_after["points"]) >= 55, "six hours were seeded"
    alerts = httpx.get(f"{base}/monitoring/alerts", timeout=10).json()
    assert alerts["active"], "the service should have a firing alert"
    assert page.found["alerts.active_count"][0][0] == str(alerts["active_count"])
    assert all(alert["title"] in dom for alert in alerts["active"])
    latest = after["errors"]["recent_errors"][0]
    assert f'href="/monitoring/dashboard/call?id={latest["call_id"]}"' in dom
    failed = [c for p in history_after["points"] for c in p["failed_calls"]]
    assert failed and f'href="/monitoring/dashboard/call?id={failed[-1]}"' in dom
    assert "<b>" not in dom.split('id="recent-errors"')[1].split("</tbody>")[0]  # text, not markup

    url = f"{base}/monitoring/dashboard?range=360"
    screenshot(url, tmp_path / "profile2", "dashboard.png", "--window-size=1400,1900")
    screenshot(url, tmp_path / "profile3", "dashboard-dark.png", "--window-size=1400,1900",
               "--blink-settings=preferredColorScheme=0")  # prefers-color-scheme: dark


def test_a_restart_keeps_the_history_visible(services: Services, tmp_path: Path) -> None:
    first = services.start(TOKEN)
    seeded = get(first, "history?minutes=360", TOKEN)["points"]
    services.stop(first)
    base = services.start(TOKEN, seed=False)  # the same log directory, nothing in memory
    before = get(base, "history?minutes=360", TOKEN)
    url = f"{base}/monitoring/dashboard?range=360#token={TOKEN}"
    dom = chromium(url, tmp_path / "profile", "--dump-dom")
    after = get(base, "history?minutes=360", TOKEN)
    assert len(seeded) >= 355
    assert before["points"][: len(seeded)] == seeded
    page = shown(dom)
    assert_history_shown(page, dom, before, after)
    assert page.found["range.calls"][0][0] is not None and float(page.found["range.calls"][0][0]) > 1000
    assert page.found["calls.total_calls"][0][0] == "0"  # the live figures did restart


def test_a_call_page_shows_the_calls_turns(server_factory: Any, tmp_path: Path) -> None:
    base = server_factory(TOKEN)
    story = get(base, "calls/call-0003", TOKEN)
    turns = [r for r in story["records"] if r["message"] == "turn"]
    assert len(turns) == 3
    url = f"{base}/monitoring/dashboard/call?id=call-0003#token={TOKEN}"
    dom = chromium(url, tmp_path / "profile", "--dump-dom")
    assert 'data-ready="true"' in dom
    assert TOKEN not in dom
    page = shown(dom)
    rows = re.findall(r'<tr data-turn="(\d+)"[^>]*>.*?data-value="([\d.]+)"', dom)
    assert [(int(n), float(ms)) for n, ms in rows] == [
        (r["extra"]["turn"], r["extra"]["latency_ms"]) for r in turns
    ]
    stages = re.findall(r'data-stage="(\w+)" data-value="([\d.]+)"', dom)
    assert [(name, float(ms)) for name, ms in stages] == [
        (name, r["extra"]["stages"][name]["ttfb_ms"]) for r in turns for name in ("stt", "llm", "tts")
    ]
    expected = {
        "call.turns": 3,
        "call.interruptions": sum(1 for r in turns if r["extra"]["interrupted"]),
        "call.records": len(story["records"]),
        "call.errors": sum(1 for r in story["records"] if r["level"] in ("ERROR", "CRITICAL")),
        "call.audit": sum(1 for r in story["records"] if "chain" in r),
        "call.total_ms": story["total_ms"],
        "call.cost_usd": sum(r["extra"].get("cost_usd", 0) for r in story["records"]),
        "call.worst_ms": max(r["extra"]["latency_ms"] for r in turns),
    }
    assert expected["call.interruptions"] == 1 and expected["call.audit"] == 1
    for name, value in expected.items():
        assert page.found[name][0][0] is not None, name
        assert float(page.found[name][0][0]) == pytest.approx(value), name
    assert "db.lookup" in dom.split('id="stage-table"')[1]
    screenshot(url, tmp_path / "profile2", "call.png", "--window-size=1400,1400")


def test_a_call_page_without_the_token_asks_for_it(server_factory: Any, tmp_path: Path) -> None:
    base = server_factory(TOKEN)
    dom = chromium(f"{base}/monitoring/dashboard/call?id=call-0003", tmp_path / "profile", "--dump-dom")
    assert "auth" not in shown(dom).hidden
    assert 'data-status="locked"' in dom
    assert "no transcript" not in dom


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
