"""The guide's monitoring face: record calls, errors, latencies and usage; read metrics and health.

Writes are cheap in-process updates (no I/O, one short lock). Reads build the
totals of this process and, under a pre-fork server with
``PROMETHEUS_MULTIPROC_DIR`` set, of every worker. A background component
samples the system once a second, reaps calls older than ``max_call_age_sec``
and publishes this worker's totals for the others.

Observers (an exporter, a tracer) follow calls without wrapping the functions::

    production_monitor.add_call_listener(on_start, on_end)
    # on_start(call_id); on_end(call_id, duration_sec or None, success)

Listeners run in the recording thread, after the call is counted; an exception
in one is logged (at most once every few seconds) and never reaches the caller.
With no listener registered they cost one truth test per write.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Hashable
from datetime import datetime, timezone
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from callwatch import _runtime
from callwatch._alerts.thresholds import thresholds
from callwatch._health import HealthChecker, capacity_check, logging_check, system_check
from callwatch._logging.pipeline import files_writable
from callwatch._logging.stats import STATS
from callwatch._metrics import operations
from callwatch._metrics.calls import Anomaly, CallStats, EndListener, StartListener
from callwatch._metrics.errors import ErrorStats
from callwatch._metrics.multiprocess import MultiProcess
from callwatch._metrics.prometheus import families
from callwatch._metrics.snapshot import Totals, to_metrics
from callwatch._metrics.system import SystemSampler
from callwatch._metrics.usage import UsageStats
from callwatch.config import Settings
from callwatch.context import get_call_id
from callwatch.logger import log

__all__ = [
    "ProductionMonitor",
    "get_health",
    "get_liveness",
    "get_metrics",
    "get_readiness",
    "production_monitor",
    "prometheus_exposition",
    "record_call_end",
    "record_call_start",
    "record_error",
    "record_response_time",
    "record_usage",
]

TICK_SEC = 1.0
MINUTE_SEC = 60.0
WARN_EVERY_SEC = 10.0
MAX_REAPED_LOGGED = 20


class ProductionMonitor:
    """Call, error, operation and system metrics of this process, and its health checks."""

    def __init__(self) -> None:
        self.calls = CallStats()
        self.errors = ErrorStats()
        self.usage = UsageStats()
        self.system = SystemSampler()
        self.started_at = time.time()
        self.health_checker = HealthChecker(
            lambda: self._settings().health_check_timeout_sec,
            lambda: self._settings().health_cache_ttl_sec,
        )
        self.health_checker.register_builtin("system", system_check(self.system.latest, _limits))
        self.health_checker.register_builtin(
            "capacity", capacity_check(lambda: self.totals().active, _limits))
        self.health_checker.register_builtin(
            "logging", logging_check(files_writable, _dropped_records))
        # The hot paths are bound straight to CallStats: no extra call layer per write.
        self.calls.on_anomaly = self._warn
        self.calls.on_listener_error = self._listener_failed
        self.record_call_start = self.calls.start
        self.record_call_end = self.calls.end
        self.record_response_time = self.calls.response_time
        self.multiprocess: MultiProcess | None = None
        self._pid = os.getpid()
        self._warned: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(self))

    # -- writes -----------------------------------------------------------------------------

    def record_error(
        self, error_type: str, error_message: str, context: dict[str, Any] | None = None
    ) -> None:
        """Count an error by type and keep it (redacted) among the recent errors."""
        call_id = (context or {}).get("call_id") or get_call_id()
        self.errors.record(error_type, error_message, context,
                           None if call_id is None else str(call_id))

    def record_usage(
        self,
        *,
        call_id: Hashable | None = None,
        llm_prompt_tokens: float = 0,
        llm_completion_tokens: float = 0,
        tts_characters: float = 0,
        stt_audio_seconds: float = 0.0,
        cost_usd: float = 0.0,
    ) -> None:
        """Add usage to the fleet's counters (and to ``call_id``'s, when given).

        Never raises: a negative, non-finite or non-numeric amount is ignored.
        """
        try:
            self.usage.add(call_id, {
                "llm_prompt_tokens": llm_prompt_tokens,
                "llm_completion_tokens": llm_completion_tokens,
                "tts_characters": tts_characters,
                "stt_audio_seconds": stt_audio_seconds,
                "cost_usd": cost_usd,
            })
        except Exception:  # recording must never break the call being served
            log.exception("Usage could not be recorded")

    def call_usage(self, call_id: Hashable) -> dict[str, float] | None:
        """The usage recorded for a recent call (e.g. for its call-end record), or None."""
        return self.usage.of_call(call_id)

    def add_call_listener(self, on_start: StartListener, on_end: EndListener) -> None:
        """Call ``on_start(call_id)`` at each call start and ``on_end(call_id, duration, ok)``."""
        self.calls.listeners = (*self.calls.listeners, (on_start, on_end))

    def remove_call_listener(self, on_start: StartListener, on_end: EndListener) -> bool:
        """Remove a listener pair added before; False when it was not registered."""
        pairs = self.calls.listeners
        kept = tuple(p for p in pairs if p != (on_start, on_end))
        self.calls.listeners = kept
        return len(kept) != len(pairs)

    def _listener_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned.get("listener", -WARN_EVERY_SEC) >= WARN_EVERY_SEC:
            self._warned["listener"] = now
            log.error("Call listener failed", extra={"listener_error": repr(exc)[:200]})

    def _warn(self, kind: str, call_id: object) -> None:
        """Log bad input at most once per kind every WARN_EVERY_SEC, so a bug cannot flood logs."""
        now = time.monotonic()
        if now - self._warned.get(kind, -WARN_EVERY_SEC) < WARN_EVERY_SEC:
            return
        self._warned[kind] = now
        log.warning(_ANOMALY_MESSAGES[kind], extra={
            "anomaly": kind, "anomaly_call_id": str(call_id)[:200],
            "anomaly_count": self.calls.anomalies.get(kind, 0)})

    # -- reads ------------------------------------------------------------------------------

    def own_totals(self) -> Totals:
        """This process's totals."""
        started, succeeded, failed, active, anomalies = self.calls.counters()
        duration, response = self.calls.copy_histograms()
        by_type, total_errors, recent = self.errors.read()
        window_sec = self._settings().error_rate_window_sec
        return Totals(
            started=started, succeeded=succeeded, failed=failed, active=active,
            duration=duration, response=response,
            recent_response=self.calls.recent_response(window_sec),
            minute=self.calls.window(MINUTE_SEC),
            recent=self.calls.window(window_sec),
            anomalies=anomalies, operations=operations.snapshot(),
            errors_by_type=by_type, total_errors=total_errors, recent_errors=recent,
            dropped_records=_dropped_records(), usage=dict(self.usage.totals),
            otlp_dropped=STATS.otlp_dropped,
        )

    def totals(self) -> Totals:
        """The totals of every worker (just this process without a multiprocess directory)."""
        totals = self.own_totals()
        multi = self.multiprocess
        if multi is not None:
            totals.add(multi.others())
        return totals

    def get_metrics(self) -> dict[str, Any]:
        """The guide's metrics dict: calls, system, errors, performance, logging, timestamp."""
        return to_metrics(self.totals(), self.system.latest(), _now())

    async def get_health(self) -> dict[str, Any]:
        """The guide's health dict; never raises, bounded by the check timeouts, cached briefly."""
        return await self.health_checker.check_all()

    def get_liveness(self) -> dict[str, Any]:
        """Process-only liveness for /livez: answering at all is the signal."""
        return {"healthy": True, "status": "alive", "pid": os.getpid(),
                "uptime_sec": round(time.time() - self.started_at, 1), "timestamp": _now()}

    async def get_readiness(self) -> dict[str, Any]:
        """For /readyz: ready unless the health status is ``unhealthy``."""
        health = await self.get_health()
        failing = sorted(n for n, c in health["checks"].items() if not c["healthy"])
        return {"ready": health["status"] != "unhealthy", "status": health["status"],
                "failing_checks": failing, "timestamp": health["timestamp"]}

    def evaluates_alerts(self) -> bool:
        """True in one worker of a pre-fork server (the oldest alive), and in a lone process."""
        multi = self.multiprocess
        return multi is None or multi.is_leader()

    def prometheus_exposition(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text exposition, summed over workers."""
        multi = self.multiprocess
        if multi is not None:
            multi.publish(self.own_totals(), self.system.latest(), self.errors.version)
            return multi.exposition(), CONTENT_TYPE_LATEST
        # callwatch's metrics plus whatever else the process registered (its own metrics,
        # prometheus_client's process and platform collectors).
        return generate_latest(self._registry) + generate_latest(REGISTRY), CONTENT_TYPE_LATEST

    def reset(self) -> None:
        """Forget every recorded value of this process (tests; a forked worker starting afresh)."""
        self.calls.reset()
        self.errors.reset()
        self.usage.reset()
        operations.reset()
        self._warned.clear()

    # -- background component ---------------------------------------------------------------

    def start(self, settings: Settings) -> None:
        """Start sampling, reaping and publishing (component start; re-run in forked workers)."""
        if os.getpid() != self._pid:  # forked: the parent's numbers are the parent's
            self._pid = os.getpid()
            self.reset()
        self.calls.history_sec = max(MINUTE_SEC, settings.error_rate_window_sec)
        self.system.disk_path = settings.log_dir
        directory = settings.prometheus_multiproc_dir
        if directory is None:
            self.multiprocess = None
        elif self.multiprocess is None or self.multiprocess.pid != self._pid:
            self.multiprocess = MultiProcess(directory)
            self.multiprocess.join()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-monitoring",
                                        args=(self._stop, settings), daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop the sampler; publish this worker's final totals."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        if self.multiprocess is not None:
            self._publish()

    def _run(self, stop: threading.Event, settings: Settings) -> None:
        while not stop.wait(TICK_SEC):
            try:
                self.tick(settings)
            except Exception:  # the sampler must outlive any one failure
                log.exception("Monitoring sampler tick failed")

    def tick(self, settings: Settings) -> None:
        """One sampler round: system sample, window history, reaping, publishing."""
        self.system.refresh()
        self.calls.tick()
        reaped = self.calls.reap(settings.max_call_age_sec)
        for call_id, age in reaped[:MAX_REAPED_LOGGED]:
            log.warning("Call reaped: no end recorded within max_call_age_sec; counted as failed",
                        extra={"reaped_call_id": str(call_id)[:200], "age_sec": round(age, 1),
                               "max_call_age_sec": settings.max_call_age_sec})
        if len(reaped) > MAX_REAPED_LOGGED:
            log.warning("More calls reaped", extra={"count": len(reaped) - MAX_REAPED_LOGGED})
        if self.multiprocess is not None:
            self.multiprocess.sweep_dead()
            self._publish()

    def _publish(self) -> None:
        multi = self.multiprocess
        if multi is not None:
            multi.publish(self.own_totals(), self.system.latest(), self.errors.version)

    @staticmethod
    def _settings() -> Settings:
        return _runtime.settings()


class _Collector:
    """Renders this process's totals at scrape time (single-process mode)."""

    def __init__(self, monitor: ProductionMonitor) -> None:
        self._monitor = monitor

    def collect(self) -> list[Metric]:
        return families(self._monitor.own_totals(), self._monitor.system.latest())


_ANOMALY_MESSAGES = {
    Anomaly.DOUBLE_START: "Call started twice; the first start is kept",
    Anomaly.DOUBLE_END: "Call ended twice; the second end is ignored",
    Anomaly.END_WITHOUT_START: "Call ended without a recorded start; counted as a call",
    Anomaly.INVALID_DURATION: "Call duration is negative or not finite; measured or left out",
    Anomaly.INVALID_RESPONSE_TIME: "Response time is negative or not finite; ignored",
}


def _limits() -> dict[str, dict[str, float]]:
    return thresholds


def _dropped_records() -> int:
    return STATS.dropped


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


production_monitor = ProductionMonitor()
record_call_start = production_monitor.record_call_start
record_call_end = production_monitor.record_call_end
record_error = production_monitor.record_error
record_response_time = production_monitor.record_response_time
record_usage = production_monitor.record_usage
get_metrics = production_monitor.get_metrics
get_health = production_monitor.get_health
get_liveness = production_monitor.get_liveness
get_readiness = production_monitor.get_readiness
prometheus_exposition = production_monitor.prometheus_exposition

_runtime.register(_runtime.Component("monitoring", production_monitor.start,
                                     production_monitor.stop, priority=30))
