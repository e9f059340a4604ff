"""Delivery to real HTTP receivers that fail, throttle, stall and recover."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import callwatch
from callwatch._alerts.console import ConsoleHandler
from callwatch.alerting import (
    alert_manager,
    alertmanager_alert_handler,
    check_and_alert,
    email_alert_handler,
    pagerduty_alert_handler,
    send_alert,
    slack_alert_handler,
    webhook_alert_handler,
)
from callwatch.testing import capture_logs
from tests.helpers import read_records
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.integration


async def eventually(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def fast_delivery(tmp_path: Path) -> Iterator[None]:
    callwatch.configure(log_dir=tmp_path / "logs", console=False, environment="production",
                        alert_timeout_sec=0.5, alert_max_retries=5,
                        alert_resolve_sec=0)  # resolved at the first clear check
    alert_manager.unregister_handler("console")
    alert_manager.delivery.backoff_base_sec = 0.02
    alert_manager.reset()
    try:
        yield
    finally:
        for name in list(alert_manager.handlers):
            alert_manager.unregister_handler(name)
        alert_manager.register_handler(ConsoleHandler())
        alert_manager.delivery.backoff_base_sec = 0.5
        alert_manager.reset()
        callwatch.shutdown()


def metrics(cpu: float) -> dict:
    return {"system": {"cpu_percent": cpu}}


async def run_incident() -> None:
    await check_and_alert(metrics(85))
    await check_and_alert(metrics(85))
    await check_and_alert(metrics(97))
    await send_alert("warning", "Queue backing up", "42 calls waiting", "queue_depth", 42, 20)
    await check_and_alert(metrics(30))


async def test_every_alert_arrives_once_in_order_through_failures() -> None:
    with Receiver(script=[500, "429:1", "stall", 503]) as slack, Receiver(script=["stall", 502]) as hook:
        alert_manager.register_handler(await slack_alert_handler(slack.url + "/services/T/B/SECRET"))
        alert_manager.register_handler(await webhook_alert_handler(hook.url + "/alerts"))
        await run_incident()
        await eventually(lambda: len(slack.accepted) == 4 and len(hook.accepted) == 4)
        await asyncio.sleep(0.3)  # nothing more arrives

        assert [m["text"].split(":")[0] for m in slack.accepted] == [
            "[WARNING] High CPU usage",
            "[CRITICAL] High CPU usage",
            "[WARNING] Queue backing up",
            "[RESOLVED] High CPU usage",
        ]
        assert [(m["status"], m["alerts"][0]["labels"]["alertname"], m["alerts"][0]["labels"]["severity"]) for m in hook.accepted] == [
            ("firing", "HighCpuPercent", "warning"),
            ("firing", "HighCpuPercent", "critical"),
            ("firing", "QueueBackingUp", "warning"),
            ("resolved", "HighCpuPercent", "critical"),
        ]
        assert hook.accepted[3]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        # Retry-After was honoured: the retry after the 429 came at least a second later.
        times = [t for t, _, _ in slack.requests]
        answers = [a for _, _, a in slack.requests]
        after_429 = answers.index("429:1") + 1
        assert times[after_429] - times[after_429 - 1] >= 0.9
        assert slack.requests[0][1] == "/services/T/B/SECRET"


async def test_client_errors_are_not_retried_and_are_logged_without_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Receiver(script=[400]) as hook:
        alert_manager.register_handler(await webhook_alert_handler(hook.url + "/hooks/SECRET-TOKEN"))
        with capture_logs() as records:
            await send_alert("critical", "Database Connection Lost", "down", "database_connection", "disconnected", "connected")
            await eventually(lambda: any(r["message"] == "Alert delivery failed" for r in records))
        await asyncio.sleep(0.2)
        assert len(hook.requests) == 1
        failure = next(r for r in records if r["message"] == "Alert delivery failed")
        assert failure["extra"]["handler"] == "webhook"
        assert "HTTP 400" in failure["extra"]["error"]
        assert "SECRET" not in str(failure)
        assert "SECRET" not in caplog.text  # not even in httpx's own request log


async def test_pagerduty_triggers_and_resolves_one_incident() -> None:
    with Receiver(ok_status=202) as pd:
        alert_manager.register_handler(pagerduty_alert_handler("ROUTINGKEY123", url=pd.url + "/v2/enqueue"))
        await check_and_alert(metrics(90))
        await check_and_alert(metrics(99))
        await check_and_alert(metrics(10))
        await eventually(lambda: len(pd.accepted) == 3)
        actions = [(e["event_action"], e.get("payload", {}).get("severity")) for e in pd.accepted]
        assert actions == [("trigger", "warning"), ("trigger", "critical"), ("resolve", None)]
        assert len({e["dedup_key"] for e in pd.accepted}) == 1
        assert all(e["routing_key"] == "ROUTINGKEY123" for e in pd.accepted)


async def test_a_dead_receiver_does_not_delay_the_caller_or_the_other_handlers() -> None:
    with Receiver(script=["stall"] * 20) as dead, Receiver() as alive:
        alert_manager.register_handler(await webhook_alert_handler(dead.url))
        alert_manager.register_handler(await slack_alert_handler(alive.url))
        for n in range(5):
            await send_alert("warning", f"Alert {n}", "m", f"m{n}", n, 0)
        await eventually(lambda: len(alive.accepted) == 5)
        assert [m["text"].split(":")[0] for m in alive.accepted] == [f"[WARNING] Alert {n}" for n in range(5)]


CARD = "4111 1111 1111 1111"
TOKEN = "sk-proj-" + "a1B2c3D4" * 5
HOSTILE = f"charge failed for card {CARD} with token={TOKEN}, caller +1 415 555 1234 jane@example.com"
SECRETS = (CARD, CARD.replace(" ", ""), TOKEN, "415 555 1234", "jane@example.com")


async def test_no_receiver_and_no_handler_sees_card_numbers_tokens_or_pii(tmp_path: Path) -> None:
    from tests._alerts.test_email import SMTPServer

    callwatch.configure(log_dir=tmp_path / "logs", console=False, environment="production",
                        alert_timeout_sec=2.0, redact_pii=True)
    seen: list[object] = []

    async def custom(alert: object) -> None:
        seen.append(alert)

    smtp = SMTPServer()
    threading.Thread(target=smtp.serve_forever, daemon=True).start()
    try:
        with Receiver() as slack, Receiver() as hook, Receiver(ok_status=202) as pd, Receiver() as am:
            alert_manager.register_handler(await slack_alert_handler(slack.url + "/services/T/B/X"))
            alert_manager.register_handler(await webhook_alert_handler(hook.url + "/hook"))
            alert_manager.register_handler(pagerduty_alert_handler("ROUTINGKEY123", url=pd.url))
            alert_manager.register_handler(alertmanager_alert_handler(am.url))
            alert_manager.register_handler(email_alert_handler(
                "127.0.0.1", smtp.server_address[1], sender="a@example.com", to="ops@example.com"))
            alert_manager.register_handler(custom, name="custom")
            await send_alert("critical", f"Payment error {CARD}", HOSTILE, "payments", HOSTILE, 1,
                             labels={"caller": "jane@example.com", TOKEN: CARD})
            receivers = (slack, hook, pd, am)
            await eventually(lambda: all(r.accepted for r in receivers) and smtp.messages and seen)
            bodies = [json.dumps(r.accepted) for r in receivers]
            bodies += [data.decode() for _, _, data in smtp.messages]
            bodies.append(repr(seen))
    finally:
        smtp.shutdown()
        smtp.server_close()
    assert len(bodies) == 6
    for body in bodies:
        assert "[CARD]" in body, body[:300]
        for secret in SECRETS:
            assert secret not in body, (secret, body[:300])


async def test_at_debug_the_http_stack_logs_nothing_of_alert_delivery(tmp_path: Path) -> None:
    logs = tmp_path / "debug-logs"
    callwatch.configure(log_dir=logs, console=False, environment="production", log_level="DEBUG")
    with Receiver() as hook:
        alert_manager.register_handler(await webhook_alert_handler(hook.url + "/hooks/T0/SECRET-PATH"))
        await send_alert("warning", "Queue backing up", "42 calls waiting", "queue_depth", 42, 20)
        await eventually(lambda: len(hook.accepted) == 1)
    callwatch.shutdown()
    records = read_records(logs, "app")
    assert records, "DEBUG logging wrote nothing"
    http = [r for r in records if r["logger"].split(".")[0] in ("httpx", "httpcore", "h11")]
    assert http == []
    assert not any("SECRET-PATH" in path.read_text() for path in logs.rglob("*.log"))
