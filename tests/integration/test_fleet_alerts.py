"""An error rate hovering at its threshold: one firing and one resolved notification, not a storm.

Real calls are recorded, the guide's automatic alerting loop judges
``get_metrics()`` after every call, and a webhook receiver on 127.0.0.1 counts
what arrives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import callwatch
from callwatch._alerts.console import ConsoleHandler
from callwatch._alerts.thresholds import DEFAULT_THRESHOLDS
from callwatch.alerting import alert_manager, check_and_alert, webhook_alert_handler
from callwatch.monitoring import get_metrics, production_monitor, record_call_end, record_call_start
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.integration


RESOLVE_SEC = 3.0  # ALERT_RESOLVE_SEC, 60 s by default, shortened to keep the test short


@pytest.fixture(autouse=True)
def fresh(log_dir: Path) -> Iterator[None]:
    callwatch.configure(log_dir=log_dir, console=False, alert_resolve_sec=RESOLVE_SEC)
    production_monitor.reset()
    alert_manager.reset()
    alert_manager.unregister_handler("console")
    # The guide's error-rate thresholds alone: a busy host's CPU must not join in.
    alert_manager.thresholds = {"error_rate": DEFAULT_THRESHOLDS["error_rate"]}
    try:
        yield
    finally:
        for name in list(alert_manager.handlers):
            alert_manager.unregister_handler(name)
        alert_manager.register_handler(ConsoleHandler())
        alert_manager.thresholds = DEFAULT_THRESHOLDS
        alert_manager.reset()
        production_monitor.reset()


async def _call(n: int, success: bool) -> None:
    record_call_start(f"c-{n}")
    record_call_end(f"c-{n}", 30.0, success=success)
    await check_and_alert(get_metrics())


async def test_an_error_rate_hovering_at_five_percent_is_one_firing_and_one_resolved() -> None:
    with Receiver() as hook:
        alert_manager.register_handler(await webhook_alert_handler(hook.url + "/alerts"))
        n = 0
        crossings = 0
        above = False
        for _ in range(600):  # every 20th call fails: the rate swings across 5 % all along
            await _call(n, success=n % 20 != 19)
            n += 1
            now_above = get_metrics()["calls"]["error_rate"] >= 5.0
            crossings += now_above != above
            above = now_above
        deadline = time.monotonic() + 30
        while len(hook.accepted) < 2 and time.monotonic() < deadline:  # then it is really back
            await _call(n, success=True)
            n += 1
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # nothing more arrives
    statuses = [body["status"] for body in hook.accepted]
    print(f"fleet figures: flapping: {crossings} threshold crossings over {n} calls, "
          f"{len(statuses)} notifications: {statuses}")
    assert crossings >= 20
    assert statuses == ["firing", "resolved"]
