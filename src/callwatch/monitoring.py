"""The guide's monitoring face: record calls, errors, latencies and usage; read metrics and health.

Writes are cheap in-process updates. Under a pre-fork server (gunicorn,
``uvicorn --workers``, hypercorn, granian; or wherever ``PROMETHEUS_MULTIPROC_DIR``
is set) each write is also copied into this worker's memory-mapped file before
the function returns, and every read (``get_metrics()``, health, the
exposition, alert evaluation) answers for the whole fleet: live workers,
recycled ones and crashed ones, whose calls in progress become
``abandoned_calls``. See docs/monitoring.md for the fleet model. A background
component samples the system once a second, reaps calls older than
``max_call_age_sec``, keeps the per-second history the windows are measured
against and folds exited workers into the fleet's archive.

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
from callwatch._metrics.calls import Anomaly, EndListener, StartListener, process_calls
from callwatch._metrics.errors import ErrorStats
from callwatch._metrics.fleet import Fleet
from callwatch._metrics.history import History
from callwatch._metrics.placement import place
from callwatch._metrics.snapshot import Totals, to_metrics
from callwatch._metrics.specs import METRICS, entries, families
from callwatch._metrics.store import Durable
from callwatch._metrics.system import SystemSampler
from callwatch._metrics.usage import UsageStats
from callwatch._turns import record_turn
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
    "record_turn",
    "record_usage",
]

TICK_SEC = 1.0
MINUTE_SEC = 60.0
WARN_EVERY_SEC = 10.0
MAX_REAPED_LOGGED = 20


class ProductionMonitor:
    """Call, error, operation and system metrics of this process, and its health checks."""

    def __init__(self) -> None:
        self.calls = process_calls
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
            "logging", logging_check(files_writable, _dropped_records, _internal_errors))
        # The hot paths are bound straight to CallStats: no extra call layer per write.
        self.calls.on_anomaly = self._warn
        self.calls.on_listener_error = self._listener_failed
        self.record_call_start = self.calls.start
        self.record_call_end = self.calls.end
        self.record_response_time = self.calls.response_time
        self.fleet: Fleet | None = None
        self.history = History(MINUTE_SEC, time.time())  # this process's, outside a fleet
        self._window_sec = MINUTE_SEC
        self._pid = os.getpid()
        self._undetected_warned = False
        self._warned: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(self))

    # -- writes -----------------------------------------------------------------------------

    def record_error(
        self, error_type: str, error_message: str, context: dict[str, Any] | None = None
    ) -> None:
        """Count an error by type and keep it (redacted) among the recent errors; never raises."""
        try:
            call_id = context.get("call_id") if isinstance(context, dict) else None
            self.errors.record(error_type, error_message, context,
                               call_id if call_id is not None else get_call_id(),
                               pii=self._settings().redact_pii)
        except Exception:  # recording must never break the code reporting the error
            log.exception("Error could not be recorded")

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
        self.calls.add_listener(on_start, on_end)

    def remove_call_listener(self, on_start: StartListener, on_end: EndListener) -> bool:
        """Remove a listener pair added before; False when it was not registered."""
        return self.calls.remove_listener(on_start, on_end)

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
        """This process's counters and histograms (no windows)."""
        started, succeeded, failed, active, anomalies = self.calls.counters()
        duration, response = self.calls.copy_histograms()
        by_type, _, recent = self.errors.read()
        ops = operations.snapshot()
        totals = Totals(active=active, recent_errors=recent)
        totals.counters = {
            "calls_started": {"": started},
            "calls_ended": {"success": succeeded, "failure": failed},
            "call_anomalies": dict(anomalies),
            "errors": dict(by_type),
            "operation_failures": {name: stats.failures for name, stats in ops.items()},
            **{name: {"": value} for name, value in self._process_counters().items()},
            **{name: {"": amount} for name, amount in self.usage.totals.items()},
        }
        totals.hists = {"call_duration_seconds": {"": duration},
                        "response_time_seconds": {"": response},
                        "operation_duration_seconds": dict(ops)}
        totals.process = self._process_gauges()
        return totals

    def totals(self) -> Totals:
        """The fleet's totals and windows (this process's, outside a fleet)."""
        now = time.time()
        fleet = self.fleet
        if fleet is not None:
            fleet.write_process(self._process_counters())
            return fleet.read(now, self.errors.read()[2])
        totals = self.own_totals()
        self.history.windows(now, totals, (MINUTE_SEC, self._window_sec))
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
        fleet = self.fleet
        return fleet is None or fleet.is_leader()

    def prometheus_exposition(self) -> tuple[bytes, str]:
        """(body, content type) of the Prometheus text exposition, for the whole fleet."""
        fleet = self.fleet
        if fleet is not None:
            return fleet.exposition(self.totals(), self.system.latest()), CONTENT_TYPE_LATEST
        # callwatch's metrics plus whatever else the process registered (its own metrics,
        # prometheus_client's process and platform collectors).
        return generate_latest(self._registry) + generate_latest(REGISTRY), CONTENT_TYPE_LATEST

    def reset(self) -> None:
        """Forget every recorded value of this process (tests; a forked worker starting afresh)."""
        self.calls.reset()
        self.errors.reset()
        self.usage.reset()
        operations.reset()
        self.history = History(max(MINUTE_SEC, self._window_sec), time.time())
        self._warned.clear()

    # -- background component ---------------------------------------------------------------

    def start(self, settings: Settings) -> None:
        """Start sampling and reaping, join the fleet (component start; re-run after fork)."""
        forked = os.getpid() != self._pid
        if forked:  # the parent's numbers are the parent's
            self._pid = os.getpid()
            self._leave_fleet(close=False)  # its locks may have been held by a thread at fork
            self.reset()
        if settings.error_rate_window_sec != self._window_sec:
            self._window_sec = settings.error_rate_window_sec
            self.history = History(max(MINUTE_SEC, self._window_sec), self.started_at)
        self.system.disk_path = settings.log_dir
        self.system.prime()
        self._place(settings, forked)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callwatch-monitoring",
                                        args=(self._stop, settings), daemon=True)
        self._thread.start()

    def _place(self, settings: Settings, forked: bool) -> None:
        """Join the fleet this worker belongs to, or stay a lone process (warning if unsure)."""
        placement, undetected = place(settings.prometheus_multiproc_dir, settings.log_dir,
                                      forked)
        if placement is None:
            self._leave_fleet()
            if undetected and not self._undetected_warned:
                self._undetected_warned = True
                log.warning(
                    "Sibling worker processes found but no pre-fork server recognised: metrics, "
                    "health and alerts cover this worker only. Set PROMETHEUS_MULTIPROC_DIR to "
                    "a directory shared by the workers (and emptied before each start)")
            return
        current = self.fleet
        if current is not None and current.placement == placement:
            return
        self._leave_fleet()
        fleet = Fleet(placement, max(MINUTE_SEC, self._window_sec), self._fleet_report)
        try:
            fleet.join()
        except OSError as exc:  # e.g. LOG_DIR not writable: still serve, as a lone process
            log.warning("The fleet's metrics directory cannot be used; this worker reports "
                        "only itself. Set PROMETHEUS_MULTIPROC_DIR to a writable directory",
                        extra={"metrics_dir": str(placement.directory), "os_error": str(exc)})
            return
        durable = fleet.durable
        if durable is not None:
            with durable.lock:  # anything counted before joining is the fleet's too
                for raw, value in entries(self.own_totals()):
                    durable.write(raw, value)
        self._attach(durable)
        self.fleet = fleet

    def _attach(self, durable: Durable | None) -> None:
        self.calls.durable = durable
        self.errors.durable = durable
        self.usage.durable = durable
        operations.set_durable(durable)

    def _leave_fleet(self, close: bool = True) -> None:
        self._attach(None)
        if self.fleet is not None and close:
            self.fleet.leave()
        self.fleet = None

    def _fleet_report(self, level: str, message: str, extra: dict[str, Any]) -> None:
        (log.error if level == "error" else log.warning)(message, extra=extra)

    def stop(self, timeout: float) -> None:
        """Stop the sampler; leave this worker's last per-process values in its file."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        fleet = self.fleet
        if fleet is not None:
            self._fleet_tick(fleet, time.time())

    def _run(self, stop: threading.Event, settings: Settings) -> None:
        while not stop.wait(TICK_SEC):
            try:
                self.tick(settings)
            except Exception:  # the sampler must outlive any one failure
                log.exception("Monitoring sampler tick failed")

    def tick(self, settings: Settings) -> None:
        """One sampler round: system sample, reaping, the history row, the fleet's upkeep."""
        self.system.refresh()
        reaped = self.calls.reap(settings.max_call_age_sec)
        for call_id, age in reaped[:MAX_REAPED_LOGGED]:
            log.warning("Call reaped: no end recorded within max_call_age_sec; counted as failed",
                        extra={"reaped_call_id": str(call_id)[:200], "age_sec": round(age, 1),
                               "max_call_age_sec": settings.max_call_age_sec})
        if len(reaped) > MAX_REAPED_LOGGED:
            log.warning("More calls reaped", extra={"count": len(reaped) - MAX_REAPED_LOGGED})
        now = time.time()
        fleet = self.fleet
        if fleet is None:
            self.history.record(int(now), self.own_totals())
        else:
            self._fleet_tick(fleet, now)

    def _fleet_tick(self, fleet: Fleet, now: float) -> None:
        version = self.errors.version
        fleet.tick(now, (version, self.errors.read()[2]), self.calls.active_ids(),
                   {**self._process_counters(), **self._process_gauges()})

    def _process_counters(self) -> dict[str, float]:
        """This process's logging statistics, counted fleet-wide."""
        return {"log_records_dropped": float(STATS.dropped),
                "log_internal_errors": float(STATS.internal_errors),
                "otlp_dropped": float(STATS.otlp_dropped)}

    def _process_gauges(self) -> dict[str, float]:
        sample = self.system.latest()
        return {spec.name: float(sample[spec.sample_key]) * spec.sample_scale
                for spec in _PROCESS_SPECS if spec.sample_key in sample}

    @staticmethod
    def _settings() -> Settings:
        return _runtime.settings()


class _Collector:
    """Renders this process's totals at scrape time (outside a fleet)."""

    def __init__(self, monitor: ProductionMonitor) -> None:
        self._monitor = monitor

    def collect(self) -> list[Metric]:
        return families(self._monitor.totals(), self._monitor.system.latest())


_PROCESS_SPECS = [spec for spec in METRICS if spec.source == "process"]


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


def _internal_errors() -> int:
    return STATS.internal_errors


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
