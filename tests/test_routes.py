"""The monitoring routes as users' load balancers, probes, scrapers and browsers meet them."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

import callwatch
from callwatch import _runtime, alerting, monitoring, routes
from callwatch._alerts.lifecycle import make_spec
from callwatch._history import HistoryRecorder
from callwatch.cli import trace
from callwatch.logger import audit_log, clear_context, log, perf_timer, set_call_id
from tests.helpers import read_records

TOKEN = "s3cr3t-monitoring-token"
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROTECTED = [
    "/monitoring/health/detailed",
    "/monitoring/metrics",
    "/monitoring/metrics/calls",
    "/monitoring/metrics/system",
    "/monitoring/status",
    "/monitoring/prometheus",
    "/monitoring/alerts",
    "/monitoring/history",
]
OPEN = ["/monitoring/health", "/monitoring/livez", "/monitoring/readyz", "/monitoring/dashboard"]


def make_app() -> FastAPI:
    app = FastAPI()
    app.include_router(routes.router)
    return app


@pytest.fixture
def with_token(tmp_path: Path) -> Iterator[None]:
    callwatch.configure(
        log_dir=tmp_path / "logs",
        console=False,
        environment="production",
        monitoring_token=TOKEN,
        slack_webhook_url=SLACK,
    )
    yield
    callwatch.shutdown()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def fake_health(monkeypatch: pytest.MonkeyPatch, report: dict[str, Any]) -> None:
    async def get_health() -> dict[str, Any]:
        return report

    monkeypatch.setattr(monitoring, "get_health", get_health)


def report(status: str, **checks: dict[str, Any]) -> dict[str, Any]:
    return {
        "healthy": status != "unhealthy",
        "status": status,
        "checks": checks,
        "timestamp": "2024-01-04T10:30:45.123Z",
    }


# --- /health ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize(("status", "code", "body"), [
    ("healthy", 200, "OK"), ("degraded", 200, "OK"), ("unhealthy", 503, "UNAVAILABLE"),
])
async def test_health_is_plain_ok_unless_unhealthy(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, status: str, code: int, body: str
) -> None:
    fake_health(monkeypatch, report(status))
    response = await client.get("/monitoring/health")
    assert (response.status_code, response.text) == (code, body)
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.usefixtures("log_dir")
async def test_health_answers_head_for_uptime_monitors(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_health(monkeypatch, report("healthy"))
    assert (await client.head("/monitoring/health")).status_code == 200


@pytest.mark.usefixtures("log_dir")
async def test_health_failing_to_run_is_503_without_details(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> dict[str, Any]:
        raise RuntimeError(f"cannot reach {SLACK}")

    monkeypatch.setattr(monitoring, "get_health", broken)
    response = await client.get("/monitoring/health")
    assert (response.status_code, response.text) == (503, "UNAVAILABLE")


async def test_real_health_agrees_with_the_detailed_checks(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    # The machine's own load decides the verdict; both routes must tell the same one
    # (a long cache keeps them on one evaluation).
    callwatch.configure(log_dir=tmp_path / "logs", console=False, health_cache_ttl_sec=60.0)
    try:
        detailed = (await client.get("/monitoring/health/detailed")).json()
        response = await client.get("/monitoring/health")
    finally:
        callwatch.shutdown()
    if detailed["status"] == "unhealthy":
        assert (response.status_code, response.text) == (503, "UNAVAILABLE")
    else:
        assert (response.status_code, response.text) == (200, "OK")


@pytest.mark.usefixtures("log_dir")
async def test_a_burst_of_probes_runs_the_checks_once(client: httpx.AsyncClient) -> None:
    runs = 0

    async def counting_check() -> dict[str, Any]:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        return {"healthy": True, "status": "ok"}

    checker = monitoring.production_monitor.health_checker
    checker.register_check("counting", counting_check)
    try:
        answers = await asyncio.gather(*(client.get("/monitoring/health") for _ in range(50)))
    finally:
        checker.unregister_check("counting")
    assert len({a.status_code for a in answers}) == 1  # one evaluation, one verdict
    assert runs == 1


@pytest.mark.usefixtures("log_dir")
async def test_a_slow_check_does_not_hold_up_other_routes(client: httpx.AsyncClient) -> None:
    release = asyncio.Event()

    async def stuck_check() -> dict[str, Any]:
        await release.wait()
        return {"healthy": True, "status": "ok"}

    checker = monitoring.production_monitor.health_checker
    checker.register_check("stuck", stuck_check, timeout=30.0)
    try:
        pending = asyncio.ensure_future(client.get("/monitoring/health/detailed"))
        await asyncio.sleep(0.01)
        metrics = await client.get("/monitoring/metrics")
        assert metrics.status_code == 200
        assert not pending.done()
        release.set()
        assert (await pending).status_code in (200, 503)
    finally:
        release.set()
        checker.unregister_check("stuck")


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize(("ready", "code"), [(True, 200), (False, 503)])
async def test_readyz_follows_readiness(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, ready: bool, code: int
) -> None:
    async def get_readiness() -> dict[str, Any]:
        return {"ready": ready, "status": "healthy" if ready else "unhealthy", "failing_checks": []}

    monkeypatch.setattr(monitoring, "get_readiness", get_readiness)
    response = await client.get("/monitoring/readyz")
    assert response.status_code == code
    assert response.json()["ready"] is ready


@pytest.mark.usefixtures("log_dir")
async def test_livez_and_readyz_answer_on_a_real_idle_service(client: httpx.AsyncClient) -> None:
    live = await client.get("/monitoring/livez")
    assert live.status_code == 200
    assert live.json()["healthy"] is True
    ready = await client.get("/monitoring/readyz")
    assert ready.status_code == (200 if ready.json()["ready"] else 503)
    assert (await client.head("/monitoring/livez")).status_code == 200


# --- /health/detailed ------------------------------------------------------------------------


@pytest.mark.usefixtures("log_dir")
async def test_detailed_health_is_the_guide_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/monitoring/health/detailed")
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert {"healthy", "status", "checks", "timestamp"} <= set(body)
    assert body["status"] in ("healthy", "degraded", "unhealthy")
    assert response.status_code == (503 if body["status"] == "unhealthy" else 200)


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize(("status", "ietf", "code"), [
    ("healthy", "pass", 200), ("degraded", "warn", 200), ("unhealthy", "fail", 503),
])
async def test_detailed_health_speaks_health_json_when_asked(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, status: str, ietf: str, code: int
) -> None:
    fake_health(monkeypatch, report(
        status,
        system={"healthy": True, "service": "system", "status": "ok", "latency_ms": 2.5},
        capacity={"healthy": status != "unhealthy", "status": "ok" if status != "unhealthy" else "error",
                  "active_calls": 120, "max_calls": 100, "error": "at capacity"},
    ))
    response = await client.get(
        "/monitoring/health/detailed", headers={"Accept": "application/health+json, */*;q=0.1"}
    )
    assert response.status_code == code
    assert response.headers["content-type"] == "application/health+json"
    body = response.json()
    assert body["status"] == ietf
    system = body["checks"]["system:responseTime"][0]
    assert (system["status"], system["observedValue"], system["observedUnit"]) == ("pass", 2.5, "ms")
    capacity = body["checks"]["capacity:utilization"][0]
    assert capacity["observedValue"] == 120
    assert capacity["status"] == ("fail" if status == "unhealthy" else "pass")
    assert ("output" in capacity) == (status == "unhealthy")


@pytest.mark.usefixtures("with_token")
async def test_secrets_quoted_by_a_check_are_redacted(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_health(monkeypatch, report(
        "unhealthy",
        db={"healthy": False, "status": "error", "error": f"auth failed: Bearer {TOKEN} rejected"},
        hook={"healthy": False, "status": "error", "error": f"token {TOKEN} leaked"},
    ))
    for accept in ("application/json", "application/health+json"):
        response = await client.get(
            "/monitoring/health/detailed", headers={**AUTH, "Accept": accept}
        )
        assert response.status_code == 503
        assert TOKEN not in response.text
        assert "[REDACTED]" in response.text


@pytest.mark.usefixtures("with_token")
async def test_the_token_quoted_in_a_recorded_error_never_leaves(client: httpx.AsyncClient) -> None:
    monitoring.record_error("AUTH_ERROR", f"upstream refused token {TOKEN}", {"call_id": "c-1"})
    for path in ("/monitoring/metrics", "/monitoring/status"):
        response = await client.get(path, headers=AUTH)
        assert response.status_code == 200
        assert "AUTH_ERROR" in response.text
        assert TOKEN not in response.text


# --- metrics, status, prometheus, alerts -----------------------------------------------------


@pytest.mark.usefixtures("log_dir")
async def test_metrics_carry_a_recorded_call(client: httpx.AsyncClient) -> None:
    before = (await client.get("/monitoring/metrics/calls")).json()
    monitoring.record_call_start("route-test-call")
    monitoring.record_response_time(420.0, call_id="route-test-call")
    monitoring.record_call_end("route-test-call", 12.5, success=True)
    calls = (await client.get("/monitoring/metrics/calls")).json()
    assert calls["total_calls"] == before["total_calls"] + 1
    assert calls["successful_calls"] == before["successful_calls"] + 1
    everything = (await client.get("/monitoring/metrics")).json()
    assert {"calls", "system", "errors", "performance", "logging", "timestamp"} <= set(everything)
    assert everything["calls"]["total_calls"] == calls["total_calls"]


@pytest.mark.usefixtures("log_dir")
async def test_metric_subsets_are_slices_of_the_whole(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = {
        "calls": {"total_calls": 7, "active_calls": 1, "calls_per_minute": 2.5},
        "system": {"cpu_percent": 12.5, "memory_percent": 40.0},
        "errors": {"errors_by_type": {}, "total_errors": 0, "recent_errors": []},
        "performance": {}, "logging": {"dropped_records": 0}, "timestamp": "t",
    }
    monkeypatch.setattr(monitoring, "get_metrics", lambda: snapshot)
    assert (await client.get("/monitoring/metrics")).json() == snapshot
    assert (await client.get("/monitoring/metrics/calls")).json() == snapshot["calls"]
    assert (await client.get("/monitoring/metrics/system")).json() == snapshot["system"]


@pytest.mark.usefixtures("log_dir")
async def test_status_combines_health_and_metrics(client: httpx.AsyncClient) -> None:
    body = (await client.get("/monitoring/status")).json()
    assert body["health"]["status"] in ("healthy", "degraded", "unhealthy")
    assert "total_calls" in body["metrics"]["calls"]


@pytest.mark.usefixtures("log_dir")
async def test_prometheus_is_text_exposition(client: httpx.AsyncClient) -> None:
    monitoring.record_call_start("prom-call")
    monitoring.record_call_end("prom-call", 3.0, success=True)
    response = await client.get("/monitoring/prometheus")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert re.search(r"^# TYPE \w+ (counter|gauge|histogram|summary)$", response.text, re.M)


@pytest.mark.usefixtures("log_dir")
async def test_alerts_list_active_history_and_thresholds(client: httpx.AsyncClient) -> None:
    body = (await client.get("/monitoring/alerts", params={"limit": 5})).json()
    assert isinstance(body["active"], list)
    assert isinstance(body["history"], list)
    assert len(body["history"]) <= 5
    assert body["thresholds"]["active_calls"]["critical"] > 0


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1e9", "100000"])
async def test_bad_query_parameters_are_422(client: httpx.AsyncClient, limit: str) -> None:
    response = await client.get("/monitoring/alerts", params={"limit": limit})
    assert response.status_code == 422


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_wrong_methods_are_405(client: httpx.AsyncClient, method: str) -> None:
    for path in [*PROTECTED, *OPEN]:
        assert (await client.request(method, path)).status_code == 405, path


# --- failures never leak ---------------------------------------------------------------------


@pytest.mark.usefixtures("with_token")
async def test_an_internal_failure_is_a_bare_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError(f"posting to {SLACK} with {TOKEN} failed")

    monkeypatch.setattr(monitoring, "get_metrics", broken)
    for path in ("/monitoring/metrics", "/monitoring/metrics/calls", "/monitoring/status"):
        response = await client.get(path, headers=AUTH)
        assert response.status_code == 500
        assert response.json() == {"error": "internal error"}


# --- access ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("with_token")
@pytest.mark.parametrize("path", PROTECTED)
@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
    "Bearer \u00e9\u00e9".encode(),
])
async def test_data_routes_need_the_token(
    client: httpx.AsyncClient, path: str, authorization: str | bytes | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "unauthorized"}


@pytest.mark.usefixtures("with_token")
@pytest.mark.parametrize("path", PROTECTED)
async def test_the_right_token_opens_data_routes(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=AUTH)
    assert response.status_code in (200, 503)
    assert TOKEN not in response.text
    assert SLACK not in response.text
    assert "hooks.slack.com" not in response.text


@pytest.mark.usefixtures("with_token")
@pytest.mark.parametrize("path", [*OPEN, "/monitoring/dashboard/dashboard.js"])
async def test_probes_and_the_data_free_page_need_no_token(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code in (200, 503)
    assert TOKEN not in response.text


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize("path", PROTECTED)
async def test_without_a_configured_token_routes_are_open(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path)).status_code in (200, 503)


# --- dashboard -------------------------------------------------------------------------------


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize("path", ["/monitoring/dashboard", "/monitoring/dashboard/call?id=c-1"])
async def test_the_pages_are_self_contained(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    texts = [page.text]
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        asset = await client.get(page.url.join(src))
        assert asset.status_code == 200, src
        texts.append(asset.text)
    external = [u for t in texts for u in re.findall(r"https?://[^\s\"')]+", t)]
    assert external == ["http://www.w3.org/2000/svg"]  # an XML namespace, never fetched


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize("asset", ["index.htm", "..%2Froutes.py", "%2e%2e", "routes.py", "dashboard.JS"])
async def test_only_the_shipped_assets_are_served(client: httpx.AsyncClient, asset: str) -> None:
    assert (await client.get(f"/monitoring/dashboard/{asset}")).status_code == 404


# --- hostile requests ------------------------------------------------------------------------


@pytest.mark.usefixtures("with_token")
async def test_every_answer_says_nosniff(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [await client.get(path, headers=AUTH) for path in [*PROTECTED, *OPEN]]
    answers += [
        await client.get("/monitoring/metrics"),  # 401
        await client.get("/monitoring/alerts", params={"limit": "abc"}, headers=AUTH),  # 422
        await client.post("/monitoring/metrics", headers=AUTH),  # 405
        await client.get("/monitoring/dashboard/routes.py"),  # 404
        await client.get("/monitoring/metrics/", headers=AUTH),  # 307
        await client.post("/monitoring/metrics/", headers=AUTH),  # 405 from a slash route
        await client.get("/monitoring/dashboard/dashboard.css"),
    ]
    monkeypatch.setattr(monitoring, "get_metrics", lambda: 1 / 0)
    answers.append(await client.get("/monitoring/metrics", headers=AUTH))  # 500
    assert {a.status_code for a in answers} >= {200, 307, 401, 404, 405, 422, 500}
    assert [a.request.url.path for a in answers if a.headers.get("x-content-type-options") != "nosniff"] == []


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize(("path", "location"), [
    ("/monitoring/metrics/", "/monitoring/metrics"),
    ("/monitoring/metrics//", "/monitoring/metrics"),
    ("/monitoring/alerts/?limit=5", "/monitoring/alerts?limit=5"),
    ("/monitoring/dashboard/", "/monitoring/dashboard"),
    ("/monitoring/dashboard/dashboard.js/", "/monitoring/dashboard/dashboard.js"),
])
async def test_a_trailing_slash_redirects_by_path_never_to_the_requests_host(
    client: httpx.AsyncClient, path: str, location: str
) -> None:
    response = await client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 307
    assert response.headers["location"] == location
    assert (await client.get(location)).status_code == 200


@pytest.mark.usefixtures("log_dir")
@pytest.mark.parametrize("path", ["/monitoring/metrics/nothing", "/monitoring/nothing", "/monitoring/nothing/"])
async def test_unknown_paths_are_not_redirected(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "evil.example" not in response.headers.get("location", "")


@pytest.mark.usefixtures("log_dir")
async def test_thousands_of_firing_alerts_are_counted_not_listed(client: httpx.AsyncClient) -> None:
    lifecycle = alerting.alert_manager.lifecycle
    for n in range(20_000):
        spec = make_spec("Flood", f"flood {n}", "flood", {"n": str(n)}, managed=False)
        lifecycle.fire(spec, "warning", n, 1, message=f"flood alert {n}")
    try:
        response = await client.get("/monitoring/alerts", params={"limit": 20})
    finally:
        alerting.alert_manager.reset()
    body = response.json()
    assert len(body["active"]) == 20
    assert body["active_count"] == 20_000
    assert len(body["history"]) == 20
    assert len(response.content) < 50_000


async def test_alerts_answer_masks_pii_in_pii_mode(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    callwatch.configure(log_dir=tmp_path / "logs", console=False, redact_pii=True)
    lifecycle = alerting.alert_manager.lifecycle
    spec = make_spec("Caller", "caller ops@example.com", "caller", {}, managed=False)
    lifecycle.fire(spec, "warning", 1, 1, message="call back +1 415 555 0100 or ops@example.com")
    try:
        text = (await client.get("/monitoring/alerts")).text
    finally:
        alerting.alert_manager.reset()
        callwatch.shutdown()
    assert "call back" in text
    assert "555 0100" not in text and "ops@example.com" not in text


@pytest.mark.parametrize(("environment", "token", "warned"), [
    ("production", None, True), ("production", TOKEN, False), ("development", None, False),
])
async def test_production_without_a_token_warns_at_start_up(
    tmp_path: Path, environment: str, token: str | None, warned: bool
) -> None:
    logs = tmp_path / "logs"
    callwatch.configure(
        log_dir=logs, console=False, environment=environment, monitoring_token=token
    )
    app = make_app()
    async with app.router.lifespan_context(app):  # what uvicorn runs as the app starts
        pass
    callwatch.shutdown()
    warnings = [r for r in read_records(logs, "app") if "MONITORING_TOKEN" in r["message"]]
    assert [r["level"] for r in warnings] == (["WARNING"] if warned else [])


# --- history ---------------------------------------------------------------------------------


async def test_history_serves_the_points_on_disk_newest_last(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    callwatch.configure(log_dir=logs, console=False, monitoring_token=TOKEN)
    try:
        writer = HistoryRecorder(is_writer=lambda: True)
        writer.directory = logs / "history"
        start = (time.time() // 60 - 3) * 60
        for minute in range(3):
            writer.sample(start + 60 * minute)
            for n in range(minute + 1):
                monitoring.record_call_start(f"h-{minute}-{n}")
                monitoring.record_call_end(f"h-{minute}-{n}", 5.0)
        writer.sample(start + 180)
        assert (await client.get("/monitoring/history")).status_code == 401
        body = (await client.get("/monitoring/history", params={"minutes": 10}, headers=AUTH)).json()
        recent = (await client.get("/monitoring/history", params={"minutes": 2}, headers=AUTH)).json()
        merged = (await client.get(
            "/monitoring/history", params={"minutes": 10, "step": 60}, headers=AUTH)).json()
    finally:
        callwatch.shutdown()
    assert body["source"] == "disk"
    points = body["points"]
    assert [p["calls"] for p in points] == [1, 2, 3]
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert {"t", "calls", "failed", "error_rate", "p50_ms", "p95_ms", "p99_ms", "active_calls"} <= set(points[0])
    assert [p["calls"] for p in recent["points"]] == [2, 3]
    assert sum(p["calls"] for p in merged["points"]) == 6


# --- a call's story --------------------------------------------------------------------------


def log_a_call(call_id: str) -> None:
    """One call as a voice agent logs it: turns, stages, an error, an audit event."""
    set_call_id(call_id)
    try:
        log.info("Call started", extra={"caller": "+15550100"})
        with perf_timer("stt_transcription"):
            pass
        log.info("turn", extra={"turn": 1, "turn_id": f"{call_id}-t1", "latency_ms": 640.0,
                                "interrupted": False,
                                "stages": {"stt": {"ttfb_ms": 120.0}, "llm": {"ttfb_ms": 380.0},
                                           "tts": {"ttfb_ms": 140.0}}})
        try:
            raise TimeoutError("speech recognition timed out")
        except TimeoutError:
            log.exception("STT failed")
        audit_log("Call completed", call_id=call_id, duration_sec=12.0)
    finally:
        clear_context()


async def test_a_calls_story_is_what_trace_json_prints(
    client: httpx.AsyncClient, with_token: None, tmp_path: Path
) -> None:
    log_a_call("story-1")
    log_a_call("story-10")  # a longer id sharing the prefix is another call
    _runtime.flush()
    assert (await client.get("/monitoring/calls/story-1")).status_code == 401
    response = await client.get("/monitoring/calls/story-1", headers=AUTH)
    assert response.status_code == 200
    story = response.json()
    expected = orjson.loads(orjson.dumps(trace.as_json(trace.collect(tmp_path / "logs", "story-1"))))
    scanned = ("bytes_scanned", "files_scanned", "read_from")  # the log files grow meanwhile
    assert {k: v for k, v in story.items() if k not in scanned} == {
        k: v for k, v in expected.items() if k not in scanned
    }
    assert story["read_from"] == "LOG_DIR" and str(tmp_path) not in response.text
    messages = [r["message"] for r in story["records"]]
    assert {"Call started", "turn", "STT failed", "Call completed"} <= set(messages)
    assert {r.get("call_id") for r in story["records"]} == {"story-1"}
    assert "stt_transcription" in story["stages"]
    failure = next(r for r in story["records"] if r["message"] == "STT failed")
    assert "TimeoutError" in orjson.dumps(failure).decode()


@pytest.mark.usefixtures("with_token")
async def test_an_unknown_call_is_404_with_the_same_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/monitoring/calls/never-called", headers=AUTH)
    assert response.status_code == 404
    assert (response.json()["found"], response.json()["records"]) == (False, [])
    too_long = await client.get("/monitoring/calls/" + "x" * 300, headers=AUTH)
    assert too_long.status_code == 422


async def test_a_huge_call_answers_its_start_and_end(
    client: httpx.AsyncClient, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "_MAX_RECORDS", 10)
    set_call_id("chatty")
    for n in range(30):
        log.info("tick", extra={"n": n})
    clear_context()
    _runtime.flush()
    story = (await client.get("/monitoring/calls/chatty")).json()
    assert [r["extra"]["n"] for r in story["records"]] == [0, 1, 2, 3, 4, 25, 26, 27, 28, 29]
    assert story["records_left_out"] == 20


async def test_call_pages_are_read_a_few_at_a_time(
    client: httpx.AsyncClient, log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = routes._story

    def slow_story(directory: Path, call_id: str) -> dict[str, Any]:
        release.wait(10)
        return real(directory, call_id)

    monkeypatch.setattr(routes, "_story", slow_story)
    pending = [asyncio.ensure_future(client.get(f"/monitoring/calls/c-{n}")) for n in range(2)]
    await asyncio.sleep(0.2)
    refused = await client.get("/monitoring/calls/c-3")
    release.set()
    assert refused.status_code == 503
    assert [(await p).status_code for p in pending] == [404, 404]
    assert (await client.get("/monitoring/calls/c-3")).status_code == 404


@pytest.mark.usefixtures("log_dir")
async def test_a_call_page_stops_reading_at_its_deadline_and_says_so(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_a_call("slow-1")
    _runtime.flush()
    monkeypatch.setattr(routes, "_TRACE_TIMEOUT_SEC", 0.0)  # the deadline is already past
    answer = await client.get("/monitoring/calls/slow-1")
    assert answer.status_code == 503
    assert answer.json()["read_cut"].startswith("out of time after 0 of ")
