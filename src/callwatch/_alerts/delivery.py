"""Background delivery: the caller hands an alert over and returns; a worker does the rest.

The worker is a thread running its own event loop, so ``check_and_alert`` may
be called from any loop, any thread or plain sync code, and a slow receiver
never slows a call. Each handler has its own lane: a bounded queue delivered in
order, so a stalled Slack does not hold back PagerDuty and a resolve never
overtakes its firing. Each attempt has a timeout; network errors, 5xx and 429
are retried with exponential backoff and full jitter (at least ``Retry-After``);
a final failure goes to the errors log, host-only, and is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from callwatch._alerts.http import WORKER_THREAD, DeliveryError, close_client
from callwatch._alerts.model import Alert
from callwatch._logging.redact import redact_text, redact_url
from callwatch.config import Settings
from callwatch.logger import log

__all__ = ["DELIVERIES", "STATS", "Delivery", "DeliveryStats", "Handler", "Registration"]

Handler = Callable[[Alert], Any]

DELIVERIES = Counter(
    "callwatch_alert_deliveries_total",
    "Alert notifications by handler and result (success, retry, failure, dropped).",
    ["handler", "result"],
)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)
_RETRY_AFTER_CAP_SEC = 300.0


class DeliveryStats:
    """Counts per (handler, result), readable from any thread without a lock."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def add(self, handler: str, result: str) -> None:
        with self._lock:
            key = (handler, result)
            self._counts[key] = self._counts.get(key, 0) + 1
        DELIVERIES.labels(handler, result).inc()

    def get(self, handler: str, result: str) -> int:
        return self._counts.get((handler, result), 0)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{handler: {result: count}}``."""
        out: dict[str, dict[str, int]] = {}
        for (handler, result), count in list(self._counts.items()):
            out.setdefault(handler, {})[result] = count
        return out


STATS = DeliveryStats()


@dataclass(eq=False)
class Registration:
    """A handler as the worker sees it: its name for logs and metrics, and its lane."""

    handler: Handler
    name: str
    send_resolved: bool = True
    resend_sec: float | None = None  # receivers that expire alerts unless told again
    pending: deque[Alert] = field(default_factory=deque)
    wake: asyncio.Event | None = None
    busy: bool = False
    overflowing: bool = False
    resent_at: float = 0.0

    @property
    def target(self) -> str | None:
        """Where it delivers, host only, for the errors log."""
        url = getattr(self.handler, "url", None)
        return redact_url(url) if isinstance(url, str) else None

    async def call(self, alert: Alert, pii: bool) -> None:
        """Hand the handler the alert redacted, so no receiver sees what logs would not."""
        alert = alert.redacted(pii)
        handler = self.handler
        if _is_async(handler):
            result = handler(alert)
        else:  # a blocking handler (SMTP, requests) runs beside the loop, not on it
            result = await asyncio.to_thread(handler, alert)
        if inspect.isawaitable(result):
            await result


def _is_async(handler: Handler) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
    )


class Delivery:
    """The worker: started and stopped by the alerting component, restarted in forked children."""

    backoff_base_sec = 0.5
    backoff_cap_sec = 30.0

    def __init__(self, firing: Callable[[], list[Alert]]) -> None:
        self._firing = firing
        self._registrations: tuple[Registration, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closing: asyncio.Event | None = None
        self._lanes: dict[Registration, asyncio.Task[None]] = {}
        self._inherited: list[set[asyncio.Task[Any]]] = []  # a forked parent's tasks
        self._stop_deadline = 0.0
        self._inbox: deque[Alert] = deque()
        self._wake_pending = False
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.timeout_sec = 5.0
        self.max_retries = 5
        self.queue_size = 1000
        self.pii = False

    # --- registrations (any thread) ------------------------------------------------------

    @property
    def registrations(self) -> tuple[Registration, ...]:
        return self._registrations

    def add(self, registration: Registration) -> None:
        with self._lock:
            self._registrations = (*self._registrations, registration)
        self._in_loop(self._open_lane, registration)

    def remove(self, registration: Registration) -> None:
        with self._lock:
            self._registrations = tuple(r for r in self._registrations if r is not registration)
        registration.pending.clear()
        self._in_loop(self._close_lane, registration)

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    def start(self, settings: Settings) -> None:
        """Start the worker thread; in a forked child, forget the parent's queued alerts."""
        self.timeout_sec = settings.alert_timeout_sec
        self.max_retries = settings.alert_max_retries
        self.queue_size = settings.alert_queue_size
        self.pii = settings.redact_pii
        if self._pid != os.getpid():
            self._pid = os.getpid()
            if self._loop is not None:
                # The parent's loop never runs here. Its tasks are kept, not dropped:
                # asyncio reports a task destroyed while pending as an error.
                self._inherited.append(asyncio.all_tasks(self._loop))
            self._thread = self._loop = None
            self._inbox.clear()
            self._wake_pending = False
            for registration in self._registrations:
                registration.pending.clear()
        if self.running:
            return
        ready = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(ready,), name=WORKER_THREAD, daemon=True
        )
        self._thread = thread
        thread.start()
        ready.wait()

    def stop(self, timeout: float) -> None:
        """Deliver what is queued within ``timeout`` seconds, then stop; the rest is dropped."""
        loop, thread, closing = self._loop, self._thread, self._closing
        if loop is None or thread is None or closing is None or not self.running:
            return
        self._stop_deadline = time.monotonic() + timeout
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(closing.set)
        if thread is not threading.current_thread():
            thread.join(timeout + 1.0)

    def submit(self, alert: Alert) -> None:
        """Hand an alert to every handler that wants it; returns at once.

        Alerts wait in an inbox; the worker's loop is woken only when it is not
        already due to look, so a burst costs one wake-up, not one per alert.
        """
        loop = self._loop
        if loop is None:
            return
        self._inbox.append(alert)
        if not self._wake_pending:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # loop closed by a concurrent stop
                loop.call_soon_threadsafe(self._take_inbox)

    async def test_all(self, alert: Alert) -> dict[str, str]:
        """One attempt per handler, concurrently: ``{name: "ok" | "failed: why"}``."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("alert delivery is not running: call callwatch.configure() first")
        future = asyncio.run_coroutine_threadsafe(self._try_each(alert), loop)
        return await asyncio.wrap_future(future)

    # --- the worker thread ----------------------------------------------------------------

    def _in_loop(self, function: Callable[..., object], *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(function, *args)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop, ready))
        finally:
            self._loop = None
            loop.close()

    async def _main(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        self._closing = closing = asyncio.Event()
        self._lanes = {}
        self._loop = loop
        for registration in self._registrations:
            self._open_lane(registration)
        ready.set()
        ticker = asyncio.create_task(self._resend_forever())
        await closing.wait()
        ticker.cancel()
        await self._drain()
        await close_client()

    async def _drain(self) -> None:
        self._take_inbox()
        deadline = self._stop_deadline - 0.05
        while any(r.pending or r.busy for r in self._lanes) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for registration, task in self._lanes.items():
            task.cancel()
            for _ in range(len(registration.pending) + registration.busy):
                STATS.add(registration.name, "dropped")
            if registration.pending or registration.busy:
                log.error(
                    "Alert delivery stopped with alerts still queued",
                    extra={"handler": registration.name, "queued": len(registration.pending)},
                )
            registration.pending.clear()
        await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    def _open_lane(self, registration: Registration) -> None:
        if registration in self._lanes or registration not in self._registrations:
            return
        registration.wake = asyncio.Event()
        if registration.pending:
            registration.wake.set()
        self._lanes[registration] = asyncio.create_task(self._lane(registration))

    def _close_lane(self, registration: Registration) -> None:
        task = self._lanes.pop(registration, None)
        if task is not None:
            task.cancel()

    def _take_inbox(self) -> None:
        self._wake_pending = False  # before taking: an alert added meanwhile wakes us again
        inbox = self._inbox
        while inbox:
            self._dispatch(inbox.popleft())

    def _dispatch(self, alert: Alert) -> None:
        for registration in self._registrations:
            if alert.resolved and not registration.send_resolved:
                continue
            self._enqueue(registration, alert)

    def _enqueue(self, registration: Registration, alert: Alert) -> None:
        pending = registration.pending
        if len(pending) >= self.queue_size:
            pending.popleft()  # the newest state matters most
            STATS.add(registration.name, "dropped")
            if not registration.overflowing:
                registration.overflowing = True
                log.error(
                    "Alert queue full, dropping the oldest alerts",
                    extra={"handler": registration.name, "queue_size": self.queue_size},
                )
        pending.append(alert)
        if registration.wake is not None:
            registration.wake.set()

    async def _lane(self, registration: Registration) -> None:
        wake = registration.wake
        assert wake is not None
        while True:
            if not registration.pending:
                registration.overflowing = False
                wake.clear()
                await wake.wait()
                continue
            alert = registration.pending.popleft()
            registration.busy = True
            try:
                await self._deliver(registration, alert)
            finally:
                registration.busy = False

    async def _deliver(self, registration: Registration, alert: Alert) -> None:
        attempt = 0
        while True:
            try:
                await asyncio.wait_for(registration.call(alert, self.pii), self.timeout_sec)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retryable, retry_after = _classify(exc)
                if retryable and attempt < self.max_retries:
                    STATS.add(registration.name, "retry")
                    await asyncio.sleep(self._backoff(attempt, retry_after))
                    attempt += 1
                    continue
                STATS.add(registration.name, "failure")
                log.error(
                    "Alert delivery failed",
                    extra={
                        "handler": registration.name,
                        "target": registration.target,
                        "alertname": alert.alertname,
                        "fingerprint": alert.fingerprint,
                        "status": alert.status,
                        "attempts": attempt + 1,
                        "error": describe_error(exc),
                    },
                )
                return
            STATS.add(registration.name, "success")
            return

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter (uniform up to the exponential ceiling), but never before Retry-After."""
        ceiling = min(self.backoff_cap_sec, self.backoff_base_sec * (2**attempt))
        delay = random.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, _RETRY_AFTER_CAP_SEC))
        return delay

    async def _resend_forever(self) -> None:
        """Tell receivers that expire alerts (Alertmanager) again while the alerts are firing."""
        while True:
            await asyncio.sleep(0.25)
            due = [
                r
                for r in self._registrations
                if r.resend_sec and time.monotonic() - r.resent_at >= r.resend_sec
            ]
            if not due:
                continue
            firing = self._firing()
            for registration in due:
                registration.resent_at = time.monotonic()
                for alert in firing:
                    self._enqueue(registration, alert)

    async def _try_each(self, alert: Alert) -> dict[str, str]:
        async def one(registration: Registration) -> str:
            try:
                await asyncio.wait_for(registration.call(alert, self.pii), self.timeout_sec)
            except Exception as exc:
                STATS.add(registration.name, "failure")
                return f"failed: {describe_error(exc)}"
            STATS.add(registration.name, "success")
            return "ok"

        registrations = self._registrations
        results = await asyncio.gather(*(one(r) for r in registrations))
        return {r.name: result for r, result in zip(registrations, results, strict=True)}


def _classify(exc: Exception) -> tuple[bool, float | None]:
    """(retry?, Retry-After): network trouble and overload are worth another try."""
    if isinstance(exc, DeliveryError):
        return exc.retryable, exc.retry_after
    import httpx  # noqa: PLC0415  (not loaded before a handler needs it)

    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return status == 429 or status >= 500, None
    return isinstance(exc, TimeoutError | OSError | httpx.TransportError), None


def describe_error(exc: BaseException) -> str:
    """The error for a log line, with any URL cut to its host and secrets removed."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return redact_text(_URL.sub(lambda m: redact_url(m.group(0)), text))

