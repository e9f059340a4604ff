"""The delivery worker: retries, timeouts, isolation, order, bounded queues and draining."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest

from callwatch._alerts.delivery import STATS, Delivery, Registration, _classify, describe_error
from callwatch._alerts.http import DeliveryError
from callwatch._alerts.model import Alert
from callwatch.config import load_settings
from callwatch.testing import capture_logs


def make_alert(n: int = 0, status: str = "firing") -> Alert:
    now = datetime.now(timezone.utc)
    return Alert(
        severity="warning", title=f"alert {n}", message="m", metric="cpu_percent", value=n,
        threshold=80, timestamp=now, fingerprint=f"fp{n}", status=status,  # type: ignore[arg-type]
        alertname=f"A{n}", starts_at=now, ends_at=now if status == "resolved" else None,
    )


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


@pytest.fixture
def delivery() -> Iterator[Delivery]:
    worker = Delivery(firing=list)
    worker.backoff_base_sec = 0.001
    worker.backoff_cap_sec = 0.01
    worker.start(load_settings({}, alert_timeout_sec=0.2, alert_max_retries=3, alert_queue_size=5))
    try:
        yield worker
    finally:
        worker.stop(2.0)


def register(delivery: Delivery, handler, name: str, **kw) -> Registration:
    registration = Registration(handler=handler, name=name, **kw)
    delivery.add(registration)
    return registration


def test_retryable_failures_are_retried_until_delivered(delivery: Delivery) -> None:
    calls: list[int] = []

    async def flaky(alert: Alert) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise DeliveryError("503", retryable=True)

    before = STATS.get("flaky", "retry")
    register(delivery, flaky, "flaky")
    delivery.submit(make_alert())
    wait_until(lambda: STATS.get("flaky", "success") == 1)
    assert len(calls) == 3
    assert STATS.get("flaky", "retry") - before == 2


def test_client_errors_are_not_retried_and_the_failure_is_logged_without_the_url(delivery: Delivery) -> None:
    calls: list[int] = []

    class Handler:
        url = "https://hooks.example.com/services/T000/B000/SECRETSECRET"

        async def __call__(self, alert: Alert) -> None:
            calls.append(1)
            raise DeliveryError("answered HTTP 404", retryable=False)

    with capture_logs() as records:
        register(delivery, Handler(), "strict")
        delivery.submit(make_alert())
        wait_until(lambda: STATS.get("strict", "failure") == 1)
        wait_until(lambda: any(r["message"] == "Alert delivery failed" for r in records))
    assert calls == [1]
    record = next(r for r in records if r["message"] == "Alert delivery failed")
    assert record["level"] == "ERROR"
    assert record["extra"]["handler"] == "strict"
    assert record["extra"]["target"].startswith("https://hooks.example.com")
    assert "SECRET" not in str(record)


def test_a_stalled_attempt_times_out_and_is_retried(delivery: Delivery) -> None:
    attempts: list[float] = []

    async def slow_then_fast(alert: Alert) -> None:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            await asyncio.sleep(10)

    register(delivery, slow_then_fast, "slow")
    delivery.submit(make_alert())
    wait_until(lambda: STATS.get("slow", "success") == 1)
    assert len(attempts) == 2


def test_a_stuck_handler_does_not_hold_back_the_others(delivery: Delivery) -> None:
    release = threading.Event()
    fast: list[str] = []

    def stuck(alert: Alert) -> None:  # a blocking handler: runs beside the loop
        release.wait(5)

    async def quick(alert: Alert) -> None:
        fast.append(alert.title)

    register(delivery, stuck, "stuck")
    register(delivery, quick, "quick")
    for n in range(3):
        delivery.submit(make_alert(n))
    wait_until(lambda: len(fast) == 3)
    release.set()
    assert fast == ["alert 0", "alert 1", "alert 2"]


def test_each_handler_receives_alerts_in_order_even_with_retries(delivery: Delivery) -> None:
    seen: list[str] = []
    failed_once: set[str] = set()

    async def picky(alert: Alert) -> None:
        key = f"{alert.title}/{alert.status}"
        if key not in failed_once:
            failed_once.add(key)
            raise OSError("connection reset")
        seen.append(key)

    register(delivery, picky, "picky")
    delivery.submit(make_alert(1))
    delivery.submit(make_alert(2))
    delivery.submit(make_alert(1, "resolved"))
    wait_until(lambda: len(seen) == 3)
    assert seen == ["alert 1/firing", "alert 2/firing", "alert 1/resolved"]


def test_handlers_that_do_not_want_resolved_alerts_do_not_get_them(delivery: Delivery) -> None:
    seen: list[str] = []
    register(delivery, lambda alert: seen.append(alert.status), "firing-only", send_resolved=False)
    delivery.submit(make_alert(1, "resolved"))
    delivery.submit(make_alert(1))
    wait_until(lambda: seen == ["firing"])
    time.sleep(0.05)
    assert seen == ["firing"]


def test_a_full_queue_drops_the_oldest_and_counts_it(delivery: Delivery) -> None:
    release = threading.Event()
    seen: list[int] = []

    def blocked(alert: Alert) -> None:
        release.wait(5)
        seen.append(alert.value)  # type: ignore[arg-type]

    before = STATS.get("blocked", "dropped")
    register(delivery, blocked, "blocked")
    delivery.submit(make_alert(0))
    wait_until(lambda: delivery.registrations[-1].busy)
    for n in range(1, 9):  # 8 more into a queue of 5
        delivery.submit(make_alert(n))
    wait_until(lambda: len(delivery.registrations[-1].pending) == 5)
    release.set()
    wait_until(lambda: len(seen) == 6)
    assert seen == [0, 4, 5, 6, 7, 8]
    assert STATS.get("blocked", "dropped") - before == 3


def test_stop_delivers_what_is_queued_before_returning() -> None:
    worker = Delivery(firing=list)
    worker.start(load_settings({}, alert_timeout_sec=1.0))
    seen: list[int] = []

    async def slowish(alert: Alert) -> None:
        await asyncio.sleep(0.02)
        seen.append(alert.value)  # type: ignore[arg-type]

    worker.add(Registration(handler=slowish, name="drain"))
    for n in range(10):
        worker.submit(make_alert(n))
    worker.stop(5.0)
    assert seen == list(range(10))
    assert not worker.running


def test_stop_gives_up_at_its_deadline_and_counts_what_is_left() -> None:
    worker = Delivery(firing=list)
    worker.start(load_settings({}, alert_timeout_sec=5.0))

    async def never(alert: Alert) -> None:
        await asyncio.sleep(30)

    before = STATS.get("never", "dropped")
    worker.add(Registration(handler=never, name="never"))
    for n in range(3):
        worker.submit(make_alert(n))
    started = time.monotonic()
    worker.stop(0.3)
    assert time.monotonic() - started < 3
    assert STATS.get("never", "dropped") - before == 3


def test_firing_alerts_are_resent_to_receivers_that_expire_them() -> None:
    worker = Delivery(firing=lambda: [make_alert(7)])
    worker.start(load_settings({}))
    seen: list[int] = []
    worker.add(Registration(handler=lambda a: seen.append(a.value), name="expiring", resend_sec=0.3))
    try:
        wait_until(lambda: len(seen) >= 2)
    finally:
        worker.stop(1.0)
    assert set(seen) == {7}


def test_backoff_is_full_jitter_and_never_earlier_than_retry_after() -> None:
    worker = Delivery(firing=list)
    delays = [worker._backoff(3, None) for _ in range(200)]
    assert all(0 <= d <= worker.backoff_base_sec * 8 for d in delays)
    assert len(set(delays)) > 100
    assert all(worker._backoff(0, 7.0) >= 7.0 for _ in range(50))
    assert worker._backoff(0, 10_000) <= 300


def test_what_is_worth_retrying() -> None:
    request = httpx.Request("POST", "https://x.example")
    assert _classify(DeliveryError("x", retryable=True, retry_after=3))[0] is True
    assert _classify(DeliveryError("x", retryable=True, retry_after=3))[1] == 3
    assert _classify(httpx.HTTPStatusError("x", request=request, response=httpx.Response(503)))[0] is True
    assert _classify(httpx.HTTPStatusError("x", request=request, response=httpx.Response(429)))[0] is True
    assert _classify(httpx.HTTPStatusError("x", request=request, response=httpx.Response(404)))[0] is False
    assert _classify(ConnectionRefusedError())[0] is True
    assert _classify(TimeoutError())[0] is True
    assert _classify(ValueError("bad"))[0] is False


def test_error_descriptions_keep_only_the_host_of_urls() -> None:
    text = describe_error(RuntimeError("POST https://hooks.slack.com/services/T1/B2/XYZ failed"))
    assert "hooks.slack.com" in text and "XYZ" not in text and "T1" not in text
    assert describe_error(TimeoutError()) == "timed out"


def test_a_forked_child_restarts_delivery_without_destroying_the_parents_tasks(
    delivery: Delivery,
) -> None:
    """The parent's loop never runs in the child: its waiting lanes must not be reported."""
    received: list[Alert] = []

    async def record(alert: Alert) -> None:
        received.append(alert)

    register(delivery, record, "forked")
    delivery.submit(make_alert())
    wait_until(lambda: len(received) == 1)  # the parent's lane is running
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        reported: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: reported.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("asyncio").addHandler(handler)
        try:
            delivery.start(load_settings({}))
            delivery.submit(make_alert())
            wait_until(lambda: len(received) == 2)
            gc.collect()
            os.write(writer, "\n".join(reported).encode() or b"-")
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as answer:
        reported = answer.read().decode()
    os.waitpid(child, 0)
    assert reported == "-"
