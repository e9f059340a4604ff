"""Health checks: concurrent, each under a timeout, cached briefly with one evaluation in flight.

A check is any callable, sync or async, returning a dict (the guide's
``{"healthy": ..., "status": ...}``), a bool or None. Async checks run on the
caller's loop; sync ones on a daemon thread, so a hanging check never blocks
the loop or the interpreter's exit, and a check still hanging from an earlier
evaluation is not started again. ``get_health()`` never raises and never waits
longer than the largest check timeout.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from callwatch._logging.redact import redact_text, redact_value

__all__ = ["HealthChecker", "capacity_check", "system_check"]

Check = Callable[[], Any]
DEGRADED_STATUSES = frozenset({"warning", "degraded"})


class _Timeout(Exception):
    pass


@dataclass
class _Registered:
    name: str
    check: Check
    timeout: float | None
    inline: bool = False  # cheap, non-blocking built-in: called directly on the loop
    running: bool = False  # a sync run is still going on its thread


class HealthChecker:
    """The registry of checks behind ``get_health()``."""

    def __init__(
        self, default_timeout: Callable[[], float], cache_ttl: Callable[[], float]
    ) -> None:
        self._default_timeout = default_timeout
        self._cache_ttl = cache_ttl
        self._checks: dict[str, _Registered] = {}
        self._cache: tuple[float, dict[str, Any]] | None = None
        self._inflight: tuple[asyncio.AbstractEventLoop, asyncio.Task[dict[str, Any]]] | None
        self._inflight = None

    def register_check(self, name: str, check: Check, timeout: float | None = None) -> None:
        """Add or replace a check; ``timeout`` (s) defaults to ``health_check_timeout_sec``."""
        self._checks[name] = _Registered(name, check, timeout)
        self._cache = None

    def register_builtin(self, name: str, check: Check) -> None:
        self._checks[name] = _Registered(name, check, None, inline=True)
        self._cache = None

    def unregister_check(self, name: str) -> None:
        self._checks.pop(name, None)
        self._cache = None

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def check_all(self) -> dict[str, Any]:
        """Every check's result and the overall status, cached for ``health_cache_ttl_sec``."""
        cached = self._cache
        if cached is not None and time.monotonic() - cached[0] < self._cache_ttl():
            return _copy(cached[1])
        loop = asyncio.get_running_loop()
        inflight = self._inflight
        if inflight is None or inflight[0] is not loop or inflight[1].done():
            task = loop.create_task(self._evaluate())
            task.add_done_callback(self._finished)
            inflight = self._inflight = (loop, task)
        # Shielded: one impatient caller must not cancel the evaluation the others await.
        return _copy(await asyncio.shield(inflight[1]))

    def _finished(self, task: asyncio.Task[dict[str, Any]]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._cache = (time.monotonic(), task.result())
        if self._inflight is not None and self._inflight[1] is task:
            self._inflight = None

    async def _evaluate(self) -> dict[str, Any]:
        checks = list(self._checks.values())
        results = await asyncio.gather(*(self._run(c) for c in checks))
        by_name = {c.name: r for c, r in zip(checks, results, strict=True)}
        if any(not r["healthy"] for r in results):
            status = "unhealthy"
        elif any(r["status"] in DEGRADED_STATUSES for r in results):
            status = "degraded"
        else:
            status = "healthy"
        return {
            "healthy": status != "unhealthy",
            "status": status,
            "checks": by_name,
            "timestamp": _now(),
        }

    async def _run(self, registered: _Registered) -> dict[str, Any]:
        timeout = registered.timeout or self._default_timeout()
        started = time.perf_counter()
        try:
            raw = await self._call(registered, timeout)
            if inspect.isawaitable(raw):
                remaining = max(timeout - (time.perf_counter() - started), 0.0)
                raw = await _bounded(asyncio.ensure_future(raw), remaining)
            result = _normalise(raw)
        except _Timeout:
            result = {"healthy": False, "status": "timeout",
                      "error": f"check did not finish within {timeout:g} s"}
        except Exception as exc:
            result = {"healthy": False, "status": "error",
                      "error": redact_text(f"{type(exc).__name__}: {exc}")[:500]}
        result["service"] = registered.name
        result["latency_ms"] = round((time.perf_counter() - started) * 1000.0, 2)
        return result

    async def _call(self, registered: _Registered, timeout: float) -> Any:
        check = registered.check
        if registered.inline:
            return check()
        if inspect.iscoroutinefunction(check) or inspect.iscoroutinefunction(
            getattr(check, "__call__", None)  # noqa: B004  (an object with an async __call__)
        ):
            return await _bounded(asyncio.ensure_future(check()), timeout)
        if registered.running:
            raise _Timeout
        return await _bounded(_on_thread(registered), timeout)


async def _bounded(future: asyncio.Future[Any], timeout: float) -> Any:
    """The future's result, or _Timeout after ``timeout`` without waiting for its cancellation."""
    done, _ = await asyncio.wait({future}, timeout=timeout)
    if not done:
        future.cancel()
        raise _Timeout
    return future.result()


def _on_thread(registered: _Registered) -> asyncio.Future[Any]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def run() -> None:
        try:
            value, ok = registered.check(), True
        except Exception as exc:
            value, ok = exc, False
        finally:
            registered.running = False
        if not loop.is_closed():
            loop.call_soon_threadsafe(deliver, ok, value)

    registered.running = True
    threading.Thread(target=run, name=f"callwatch-health-{registered.name}", daemon=True).start()
    return future


def _normalise(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        result = {str(k): redact_value(str(k), v) for k, v in raw.items()}
        if "healthy" not in result:
            result["healthy"] = result.get("status", "ok") in ("ok", *DEGRADED_STATUSES)
        result["healthy"] = bool(result["healthy"])
        result.setdefault("status", "ok" if result["healthy"] else "error")
        return result
    healthy = raw is None or bool(raw)
    return {"healthy": healthy, "status": "ok" if healthy else "unhealthy"}


def _copy(result: dict[str, Any]) -> dict[str, Any]:
    copied = dict(result)
    copied["checks"] = {name: dict(check) for name, check in result["checks"].items()}
    return copied


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def system_check(
    sample: Callable[[], dict[str, Any]], thresholds: Callable[[], dict[str, dict[str, float]]]
) -> Check:
    """CPU, memory and disk against the alert thresholds.

    Memory or disk at the critical level is unhealthy (the instance will fail
    soon); CPU at any level only degrades, since taking a busy instance out of
    rotation pushes its load onto the others.
    """

    def check() -> dict[str, Any]:
        system = sample()
        limits = thresholds()
        status, problems = "ok", []
        for key in ("cpu_percent", "memory_percent", "disk_percent"):
            value, level = float(system.get(key, 0.0)), limits.get(key, {})
            if value >= level.get("critical", float("inf")):
                problems.append(f"{key} {value:g} >= {level['critical']:g}")
                status = "critical" if key != "cpu_percent" else _worse(status, "warning")
            elif value >= level.get("warning", float("inf")):
                problems.append(f"{key} {value:g} >= {level['warning']:g}")
                status = _worse(status, "warning")
        result: dict[str, Any] = {
            "healthy": status != "critical",
            "status": status,
            "cpu_percent": system.get("cpu_percent"),
            "memory_percent": system.get("memory_percent"),
            "disk_percent": system.get("disk_percent"),
        }
        if problems:
            result["problems"] = problems
        return result

    return check


def _worse(current: str, new: str) -> str:
    return current if current == "critical" else new


def capacity_check(
    active_calls: Callable[[], int], thresholds: Callable[[], dict[str, dict[str, float]]]
) -> Check:
    """Active calls against the active-calls thresholds: full at critical, so not ready."""

    def check() -> dict[str, Any]:
        active = active_calls()
        level = thresholds().get("active_calls", {})
        max_calls = level.get("critical", float("inf"))
        if active >= max_calls:
            status = "full"
        elif active >= level.get("warning", float("inf")):
            status = "warning"
        else:
            status = "ok"
        return {
            "healthy": status != "full",
            "status": status,
            "active_calls": active,
            "max_calls": int(max_calls) if max_calls != float("inf") else None,
        }

    return check


def logging_check(
    files_writable: Callable[[], bool],
    dropped: Callable[[], int],
    internal_errors: Callable[[], int],
) -> Check:
    """The log pipeline itself: degraded while log files cannot be written.

    Still healthy for load balancers: calls are served, only their records are lost
    (and counted) until the disk or directory is fixed. ``internal_errors`` counts
    records written as a marker because they could not be built.
    """

    def check() -> dict[str, Any]:
        writable = files_writable()
        return {
            "healthy": True,
            "status": "ok" if writable else "warning",
            "files_writable": writable,
            "dropped_records": dropped(),
            "internal_errors": internal_errors(),
        }

    return check
