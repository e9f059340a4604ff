"""TurnBudget: a live timer per turn that alerts once it runs out, and never once cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from callwatch._alerts.budget import TITLE, TurnBudget
from callwatch.alerting import alert_manager


@pytest.fixture(autouse=True)
def fresh(log_dir: Path) -> Iterator[None]:
    alert_manager.reset()
    yield
    alert_manager.reset()


def _firing() -> list[dict[str, object]]:
    return [a for a in alert_manager.active_alerts() if a["title"] == TITLE]


async def test_a_budget_that_runs_out_alerts_with_call_and_service() -> None:
    budget = TurnBudget("c-9", 30.0)
    budget.start(3, lambda: "tts")
    await asyncio.sleep(0.1)
    (alert,) = _firing()
    assert alert["labels"]["call_id"] == "c-9" and alert["labels"]["service"] == "tts"  # type: ignore[index]
    assert "turn 3" in str(alert["message"])


async def test_first_audio_in_time_cancels_the_alert() -> None:
    budget = TurnBudget("c-10", 50.0)
    budget.start(1, lambda: "llm")
    await asyncio.sleep(0.01)
    budget.stop()
    budget.start(2, lambda: "llm")  # re-armed for the next turn, then answered in time too
    budget.stop()
    await asyncio.sleep(0.1)
    assert _firing() == []


def test_without_a_running_loop_nothing_is_watched() -> None:
    TurnBudget("c-11", 1.0).start(1, lambda: "stt")
    assert _firing() == []
