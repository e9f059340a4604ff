"""The latency budget of a live turn: alert while the caller is still waiting, not after.

A timer starts when the user stops speaking and is cancelled when the bot's
first audio plays. If it runs out first, a warning goes out at once, labelled
with the call and with the service the turn is still waiting on, so the alert
manager deduplicates it per call and per service like every other alert.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["TITLE", "TurnBudget"]

TITLE = "Turn over latency budget"
METRIC = "turn_wait_ms"


class TurnBudget:
    """One call's budget timer; ``start`` at user stopped speaking, ``stop`` at first bot audio."""

    def __init__(self, call_id: str, budget_ms: float) -> None:
        self.call_id = call_id
        self.budget_ms = budget_ms
        self._task: asyncio.Task[None] | None = None

    def start(self, turn: int, waiting_on: Callable[[], str]) -> None:
        """(Re)arm the timer for ``turn``; ``waiting_on()`` names the service still owing output."""
        self.stop()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop, no live call to watch
            return
        self._task = loop.create_task(self._expire(turn, waiting_on),
                                      name=f"callwatch-turn-budget-{self.call_id}")

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def _expire(self, turn: int, waiting_on: Callable[[], str]) -> None:
        await asyncio.sleep(self.budget_ms / 1000.0)
        from callwatch.alerting import send_alert  # noqa: PLC0415  (alerting sits above _alerts)

        service = waiting_on()
        with contextlib.suppress(Exception):  # an alert problem never touches the call
            await send_alert(
                "warning",
                TITLE,
                f"Call {self.call_id} turn {turn} has waited more than {self.budget_ms:g} ms "
                f"for the bot's first audio (waiting on {service}).",
                METRIC,
                value=self.budget_ms,
                threshold=self.budget_ms,
                labels={"call_id": self.call_id, "service": service},
            )
