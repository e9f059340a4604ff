"""The callers: calls arriving at a steady random (Poisson) rate, from one place.

The generator runs in the demo's parent process and places each call as an
HTTP request, so with several workers the kernel spreads calls over them as
it would spread a telephony provider's webhooks; the rate is the same for one
worker or many.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

__all__ = ["CallGenerator", "Tally"]

_DRAIN_SEC = 35.0  # a little longer than the server's own graceful shutdown


@dataclass
class Tally:
    """What the callers saw: placed, completed, failed, and the first call that completed."""

    placed: int = 0
    completed: int = 0
    failed: int = 0
    first_completed: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def active(self) -> int:
        return self.placed - self.completed - self.failed


@dataclass
class CallGenerator:
    """Places calls at ``rate`` per minute until ``deadline`` (monotonic) or :meth:`stop`."""

    base_url: str
    rate: float
    deadline: float | None
    on_first_call: Callable[[str], None]
    tally: Tally = field(default_factory=Tally)
    _stop: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Blocking: place calls, then wait (bounded) for the calls in flight to end."""
        asyncio.run(self._place_calls())

    async def _place_calls(self) -> None:
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
        timeout = httpx.Timeout(120.0, connect=5.0)
        client = httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=timeout)
        async with client:
            calls: set[asyncio.Task[None]] = set()
            epoch = int(time.time())
            next_at = time.monotonic()
            while not self._finished():
                next_at += random.expovariate(self.rate / 60.0)
                while time.monotonic() < next_at and not self._finished():
                    await asyncio.sleep(min(0.05, max(0.0, next_at - time.monotonic())))
                if self._finished():
                    break
                self.tally.placed += 1
                call_id = f"ast-{epoch}-{self.tally.placed:05d}"
                task = asyncio.create_task(self._call(client, call_id))
                calls.add(task)
                task.add_done_callback(calls.discard)
            if calls:
                await asyncio.wait(calls, timeout=_DRAIN_SEC)

    def _finished(self) -> bool:
        if self._stop.is_set():
            return True
        return self.deadline is not None and time.monotonic() >= self.deadline

    async def _call(self, client: httpx.AsyncClient, call_id: str) -> None:
        caller = f"+1555{random.randint(0, 9_999_999):07d}"
        try:
            answer = await client.post("/calls", json={"call_id": call_id, "caller": caller})
            answer.raise_for_status()
            ok = bool(answer.json().get("success"))
        except (httpx.HTTPError, ValueError):
            ok = False
        with self.tally.lock:
            if ok:
                self.tally.completed += 1
            else:
                self.tally.failed += 1
            first = ok and self.tally.first_completed is None
            if first:
                self.tally.first_completed = call_id
        if first:
            self.on_first_call(call_id)
