"""Health checks: concurrency, timeouts, errors, caching, status rules."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from callwatch._health import HealthChecker, capacity_check, system_check

LIMITS = {"cpu_percent": {"warning": 80, "critical": 95},
          "memory_percent": {"warning": 85, "critical": 95},
          "disk_percent": {"warning": 85, "critical": 95},
          "active_calls": {"warning": 80, "critical": 100}}


def _checker(ttl: float = 0.0, timeout: float = 0.2) -> HealthChecker:
    return HealthChecker(lambda: timeout, lambda: ttl)


async def test_guide_custom_check_sample_runs() -> None:
    checker = _checker()

    async def check_database() -> dict[str, Any]:
        try:
            await asyncio.sleep(0)
            return {"healthy": True, "status": "ok"}
        except Exception as e:
            return {"healthy": False, "status": "error", "error": str(e)}

    checker.register_check("database", check_database)
    health = await checker.check_all()
    assert health["healthy"] is True and health["status"] == "healthy"
    db = health["checks"]["database"]
    assert db["service"] == "database" and db["status"] == "ok" and db["latency_ms"] >= 0


async def test_hanging_checks_time_out_without_delaying_the_answer() -> None:
    checker = _checker(timeout=0.2)
    release = threading.Event()

    async def hangs_async() -> None:
        await asyncio.sleep(60)

    async def ignores_cancellation() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)

    checker.register_check("async", hangs_async)
    checker.register_check("stubborn", ignores_cancellation)
    checker.register_check("sync", lambda: release.wait(60))
    checker.register_check("fast", lambda: True, timeout=5)
    started = time.monotonic()
    health = await checker.check_all()
    elapsed = time.monotonic() - started
    release.set()
    assert elapsed < 5  # the hanging checks would take 60 s; the timeout is 0.2 s
    assert {n: c["status"] for n, c in health["checks"].items()} == {
        "async": "timeout", "stubborn": "timeout", "sync": "timeout", "fast": "ok"}
    assert health["status"] == "unhealthy" and health["healthy"] is False


async def test_raising_check_is_an_error_with_a_redacted_message() -> None:
    checker = _checker()

    def broken() -> None:
        raise ConnectionError("auth failed with Bearer eyJhbGciOiJIUzI1NiJ9secretpayload")

    checker.register_check("db", broken)
    result = (await checker.check_all())["checks"]["db"]
    assert result["status"] == "error" and result["healthy"] is False
    assert "eyJhbGciOiJIUzI1NiJ9secretpayload" not in result["error"] and "ConnectionError" in result["error"]


async def test_check_results_are_redacted() -> None:
    checker = _checker()
    checker.register_check("svc", lambda: {"healthy": False, "status": "error",
                                           "error": "Bearer eyJhbGciOiJIUzI1NiJ9secretpayload", "token": "s3cret"})
    result = (await checker.check_all())["checks"]["svc"]
    assert "eyJhbGciOiJIUzI1NiJ9secretpayload" not in str(result) and "s3cret" not in str(result)


async def test_a_sync_check_still_hanging_is_not_started_again() -> None:
    checker = _checker(timeout=0.05)
    release = threading.Event()
    runs = []

    def hangs() -> None:
        runs.append(1)
        release.wait(10)

    checker.register_check("hangs", hangs)
    await checker.check_all()
    await checker.check_all()
    release.set()
    assert len(runs) == 1


async def test_a_burst_of_probes_runs_the_checks_once() -> None:
    checker = _checker(ttl=5.0)
    runs = []

    async def counted() -> bool:
        runs.append(1)
        await asyncio.sleep(0.05)
        return True

    checker.register_check("counted", counted)
    results = await asyncio.gather(*(checker.check_all() for _ in range(20)))
    await checker.check_all()
    assert len(runs) == 1
    assert all(r["status"] == "healthy" for r in results)


async def test_warning_status_degrades_but_stays_healthy() -> None:
    checker = _checker()
    checker.register_check("slow_llm", lambda: {"healthy": True, "status": "warning"})
    health = await checker.check_all()
    assert (health["status"], health["healthy"]) == ("degraded", True)


@pytest.mark.parametrize(
    ("sample", "status", "healthy"),
    [
        ({"cpu_percent": 10, "memory_percent": 10, "disk_percent": 10}, "ok", True),
        ({"cpu_percent": 99, "memory_percent": 10, "disk_percent": 10}, "warning", True),
        ({"cpu_percent": 10, "memory_percent": 90, "disk_percent": 10}, "warning", True),
        ({"cpu_percent": 10, "memory_percent": 10, "disk_percent": 96}, "critical", False),
    ],
)
def test_system_check_levels(sample: dict[str, float], status: str, healthy: bool) -> None:
    result = system_check(lambda: sample, lambda: LIMITS)()
    assert (result["status"], result["healthy"]) == (status, healthy)


@pytest.mark.parametrize(("active", "status", "healthy"),
                         [(5, "ok", True), (80, "warning", True), (100, "full", False)])
def test_capacity_check_levels(active: int, status: str, healthy: bool) -> None:
    result = capacity_check(lambda: active, lambda: LIMITS)()
    assert (result["status"], result["healthy"], result["max_calls"]) == (status, healthy, 100)


async def test_unwritable_log_files_degrade_health_without_taking_the_instance_out(
    tmp_path: Path,
) -> None:
    import callwatch
    from callwatch.logger import log
    from callwatch.monitoring import get_health

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    callwatch.configure(log_dir=blocker / "logs", console=False, health_cache_ttl_sec=0.001)
    try:
        log.info("lost")
        await asyncio.sleep(0.01)
        health = await get_health()
        assert health["checks"]["logging"]["status"] == "warning"
        assert health["checks"]["logging"]["files_writable"] is False
        assert health["status"] == "degraded"
        assert health["healthy"] is True
    finally:
        callwatch.shutdown()
    callwatch.configure(log_dir=tmp_path / "logs", console=False, health_cache_ttl_sec=0.001)
    try:
        await asyncio.sleep(0.01)
        health = await get_health()
        logging_check = health["checks"]["logging"]
        assert (logging_check["status"], logging_check["files_writable"]) == ("ok", True)
    finally:
        callwatch.shutdown()


async def test_the_logging_check_counts_records_that_could_not_be_built(tmp_path: Path) -> None:
    """A record a processor breaks is written as a marker; health says how many."""
    import callwatch
    from callwatch._logging import pipeline
    from callwatch.logger import add_processor, log
    from callwatch.monitoring import get_health

    def broken(logger: object, method: str, record: dict[str, object]) -> dict[str, object]:
        raise RuntimeError("a user's processor fails")

    callwatch.configure(log_dir=tmp_path / "logs", console=False, health_cache_ttl_sec=0.001)
    add_processor(broken)
    try:
        before = (await get_health())["checks"]["logging"]["internal_errors"]
        log.info("cannot be built")
        await asyncio.sleep(0.01)
        after = (await get_health())["checks"]["logging"]["internal_errors"]
        assert after == before + 1
    finally:
        pipeline.processors.remove(broken)
        callwatch.shutdown()
