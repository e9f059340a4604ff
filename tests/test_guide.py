"""The guide's code samples, run as written with only their imports changed.

Names the samples leave to the reader (``stt``, ``db``, ``send_email``, …) are
stand-ins defined here; webhook URLs point at local receivers, never outside.
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import read_records
from tests.integration.receivers import Receiver


class _Stt:
    async def transcribe(self, audio: bytes) -> str:
        await asyncio.sleep(0)
        return "I'd like to book a table"


class _Llm:
    async def generate(self, prompt: str) -> str:
        await asyncio.sleep(0)
        return "For how many people?"


class _Db:
    def __init__(self, up: bool = True) -> None:
        self.up = up

    async def ping(self) -> None:
        if not self.up:
            raise ConnectionError("connection refused by 127.0.0.1:5432")

    async def query(self) -> list[int]:
        return [1]


stt, llm, db, audio, prompt = _Stt(), _Llm(), _Db(), b"\x00" * 320, "hi"


async def process_audio() -> str:
    return "ok"


async def test_quick_start_basic_usage(log_dir: Path) -> None:
    from callwatch.logger import log, perf_timer, set_call_id
    from callwatch.monitoring import record_call_end, record_call_start

    async def handle_call(call_id: str):
        # Set call ID for tracking
        set_call_id(call_id)

        # Record call start
        record_call_start(call_id)

        # Your code with performance tracking
        with perf_timer("process_audio"):
            result = await process_audio()  # noqa: F841 - as the guide writes it

        log.info("Call processed successfully")

        # Record call end
        record_call_end(call_id, duration_sec=10.5, success=True)

    await handle_call("quick-1")
    messages = [(r["message"], r["call_id"]) for r in read_records(log_dir, "app")]
    assert ("Call processed successfully", "quick-1") in messages
    assert read_records(log_dir, "performance")[0]["extra"]["operation"] == "process_audio"


async def test_logging_samples(log_dir: Path) -> None:
    from callwatch.logger import audit_log, clear_context, log, perf_timer, set_call_id

    call_id, caller_number, duration, cost = "ast-1", "+1234567890", 12.5, 0.04

    # At call start
    set_call_id(call_id)

    # All logs will now include call_id automatically
    log.info("Processing call")  # Will include call_id

    # At call end
    clear_context()

    # Context manager
    with perf_timer("stt_transcription"):
        text = await stt.transcribe(audio)

    # Manual timing
    timer = perf_timer("llm_generation")
    with timer:
        response = await llm.generate(prompt)

    audit_log("Call completed", call_id=call_id, caller=caller_number, duration_sec=duration, cost_usd=cost)

    user_id = "u-7"
    # Good - structured
    log.info("User authenticated", extra={"user_id": user_id, "method": "oauth", "provider": "google"})

    assert text and response
    app = read_records(log_dir, "app")
    assert app[0]["call_id"] == "ast-1"
    assert [r["extra"]["operation"] for r in read_records(log_dir, "performance")] == [
        "stt_transcription",
        "llm_generation",
    ]
    (audit,) = read_records(log_dir, "audit")
    assert audit["extra"]["cost_usd"] == 0.04
    assert audit["call_id"] == "ast-1"  # a search on the call id finds the audit record
    assert app[-1]["extra"] == {"user_id": "u-7", "method": "oauth", "provider": "google"}


def test_monitoring_samples(log_dir: Path) -> None:
    from callwatch.monitoring import get_metrics, record_call_end, record_call_start, record_error

    call_id = "mon-1"
    before = get_metrics()
    # Start of call
    record_call_start(call_id)

    # End of call
    record_call_end(call_id=call_id, duration_sec=15.5, success=True)

    # Record error
    record_error(
        error_type="STT_TIMEOUT",
        error_message="Speech recognition timed out",
        context={"call_id": call_id, "duration": 30},
    )

    metrics = get_metrics()
    print(metrics)

    assert set(metrics) >= {"calls", "system", "errors"}
    assert {
        "total_calls",
        "active_calls",
        "successful_calls",
        "failed_calls",
        "average_duration_sec",
        "average_response_time_ms",
        "calls_per_minute",
    } <= set(metrics["calls"])
    assert {"cpu_percent", "memory_percent", "disk_percent"} <= set(metrics["system"])
    stt_before = before["errors"]["errors_by_type"].get("STT_TIMEOUT", 0)
    assert metrics["errors"]["errors_by_type"]["STT_TIMEOUT"] == stt_before + 1
    assert metrics["calls"]["total_calls"] == before["calls"]["total_calls"] + 1
    assert metrics["calls"]["successful_calls"] == before["calls"]["successful_calls"] + 1


async def test_health_samples(log_dir: Path) -> None:
    from callwatch.monitoring import get_health, production_monitor

    health = await get_health()
    print(health)
    assert {"healthy", "status", "checks", "timestamp"} <= set(health)
    assert {"system", "capacity"} <= set(health["checks"])

    db.up = False

    async def check_database():
        """Check database connectivity"""
        try:
            await db.ping()
            return {"healthy": True, "status": "ok"}
        except Exception as e:
            return {"healthy": False, "status": "error", "error": str(e)}

    # Register the check
    production_monitor.health_checker.register_check("database", check_database)
    try:
        await asyncio.sleep(1.1)  # past the short health cache
        health = await get_health()
        assert health["checks"]["database"]["healthy"] is False
        assert health["healthy"] is False
    finally:
        db.up = True
        production_monitor.health_checker.unregister_check("database")


async def test_alerting_samples(log_dir: Path) -> None:
    from callwatch.alerting import (
        Alert,
        alert_manager,
        check_and_alert,
        send_alert,
        slack_alert_handler,
        webhook_alert_handler,
    )
    from callwatch.monitoring import get_metrics

    sent_mail: list[dict[str, Any]] = []

    async def send_email(**message: Any) -> None:
        sent_mail.append(message)

    with Receiver() as slack, Receiver() as webhook:
        # Register Slack webhook
        slack_webhook = slack.url + "/services/YOUR/WEBHOOK/URL"
        alert_manager.register_handler(await slack_alert_handler(slack_webhook))

        # Register custom webhook
        webhook_url = webhook.url + "/alerts"
        alert_manager.register_handler(await webhook_alert_handler(webhook_url))

        async def email_alert_handler(alert: Alert):
            """Send alert via email"""
            await send_email(
                to="ops@example.com",
                subject=f"[{alert.severity.upper()}] {alert.title}",
                body=alert.message,
            )

        alert_manager.register_handler(email_alert_handler)

        try:
            # Update thresholds
            alert_manager.thresholds["cpu_percent"] = {"warning": 70, "critical": 90}
            alert_manager.thresholds["active_calls"] = {"warning": 50, "critical": 75}

            # Get current metrics
            metrics = get_metrics()

            # Check and send alerts if needed
            await check_and_alert(metrics)

            await send_alert(
                severity="critical",  # critical, warning, info
                title="Database Connection Lost",
                message="Unable to connect to PostgreSQL database",
                metric="database_connection",
                value="disconnected",
                threshold="connected",
            )
            for _ in range(100):  # delivery runs in the background: wait, bounded
                titles = [m["subject"] for m in sent_mail]
                delivered = [str(r.accepted) for r in (slack, webhook)]
                if "[CRITICAL] Database Connection Lost" in titles and all(
                    "Database Connection Lost" in body for body in delivered
                ):
                    break
                await asyncio.sleep(0.05)
        finally:
            for name in list(alert_manager.handlers):
                if name != "console":
                    alert_manager.unregister_handler(name)
            alert_manager.thresholds["cpu_percent"] = {"warning": 80, "critical": 95}
            alert_manager.thresholds["active_calls"] = {"warning": 80, "critical": 100}
            alert_manager.reset()

    assert "[CRITICAL] Database Connection Lost" in [m["subject"] for m in sent_mail]
    assert any("Database Connection Lost" in str(body) for body in slack.accepted)
    assert any("Database Connection Lost" in str(body) for body in webhook.accepted)


def test_api_endpoints_sample(log_dir: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from callwatch.routes import router as monitoring_router

    app = FastAPI()
    app.include_router(monitoring_router)

    client = TestClient(app)
    health = client.get("/monitoring/health")
    assert health.status_code == 200 and health.text == "OK"
    for path in ("/health/detailed", "/metrics", "/metrics/calls", "/metrics/system", "/status"):
        assert client.get(f"/monitoring{path}").status_code == 200


async def test_best_practices_samples(log_dir: Path) -> None:
    from callwatch.logger import clear_context, perf_timer, set_call_id
    from callwatch.monitoring import get_metrics, record_call_end, record_call_start, record_error

    call_id, duration = "bp-1", 3.0
    before = get_metrics()

    async def risky_operation() -> None:
        raise TimeoutError("LLM took too long")

    async def handle_call() -> None:
        await risky_operation()

    # At the start of every call
    set_call_id(call_id)

    # Wrap expensive operations
    with perf_timer("database_query"):
        result = await db.query()

    try:
        result = await risky_operation()
    except Exception as e:
        record_error(
            error_type=type(e).__name__,
            error_message=str(e),
            context={"operation": "risky_operation"},
        )

    # Record metrics for important operations
    record_call_start(call_id)
    with pytest.raises(TimeoutError):
        try:
            await handle_call()
            record_call_end(call_id, duration, success=True)
        except Exception:
            record_call_end(call_id, duration, success=False)
            raise

    # At the end
    clear_context()
    assert result == [1]
    after = get_metrics()
    errors_before = before["errors"]["errors_by_type"].get("TimeoutError", 0)
    assert after["errors"]["errors_by_type"]["TimeoutError"] == errors_before + 1
    assert after["calls"]["failed_calls"] == before["calls"]["failed_calls"] + 1
    assert after["calls"]["active_calls"] == before["calls"]["active_calls"]
    (timer,) = read_records(log_dir, "performance")
    assert (timer["extra"]["operation"], timer["call_id"]) == ("database_query", "bp-1")


def test_every_public_name_is_importable_from_callwatch() -> None:
    import callwatch

    for module_name in ("logger", "monitoring", "alerting", "routes"):
        module = __import__(f"callwatch.{module_name}", fromlist=["__all__"])
        for name in module.__all__:
            if name == "logger":
                continue  # the package attribute is the callwatch.logger module itself
            assert getattr(callwatch, name) is getattr(module, name), f"{module_name}.{name}"
    assert isinstance(callwatch.logger, types.ModuleType)
    assert callwatch.logger.logger.add  # the guide's ``logger.add`` lives in callwatch.logger
