"""Where exported records, spans and metrics go: the application's providers, or our own.

A global provider the application set is used and never replaced. Only for a
signal with no such provider and an OTLP endpoint set (``OTEL_EXPORTER_OTLP_ENDPOINT``
or the signal's own variable) does callwatch build its own provider, kept private
(never made global), exporting over OTLP/HTTP in batches on the SDK's threads (for
log records, on callwatch's own sender: see ``log_batches``).
The SDK reads the standard ``OTEL_*`` variables itself (endpoints, headers,
timeouts, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from callwatch._otel.delivery import Delivery, say

__all__ = ["Signals", "build", "endpoint_configured", "own_signals"]

SIGNALS = ("logs", "traces", "metrics")
QUEUE = 4096  # records (or spans) the export thread lets a batch processor hold unsent
BATCH = 512
# The span batch processor holds this much more than QUEUE: call spans ended without waiting
# for room (a call's end, shutdown's still-live calls) never push out a queued span uncounted.
_HEADROOM = 4 * BATCH
SCHEDULE_MS = 500
# The SDK's exporters log each failed batch; callwatch says it once per episode instead.
_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.sdk._shared_internal",
)


@dataclass
class Signals:
    """The logger, tracer and meter callwatch exports through (``None``: that signal is off)."""

    logger: Any = None
    tracer: Any = None
    meter: Any = None
    delivery: Delivery = field(default_factory=Delivery)
    own: list[Any] = field(default_factory=list)  # our providers, shut down on stop
    counted: set[str] = field(default_factory=set)  # units our own batch processors take

    @property
    def enabled(self) -> bool:
        return self.logger is not None or self.tracer is not None or self.meter is not None

    def shutdown(self, timeout: float) -> None:
        """Export what is pending and stop our own providers, within ``timeout`` seconds."""
        if not self.own:
            return
        providers, self.own = self.own, []

        def stop_all() -> None:
            for provider in providers:
                try:
                    provider.shutdown()
                except Exception:
                    self.delivery.internal_error()

        # The SDK's shutdown may wait on a slow collector: it runs on a daemon thread
        # and what is not sent within the timeout is counted as dropped.
        worker = threading.Thread(target=stop_all, name="callwatch-otlp-stop", daemon=True)
        worker.start()
        worker.join(timeout)
        self.delivery.abandon()


def endpoint_configured(environ: Mapping[str, str], signal: str) -> str | None:
    """The OTLP endpoint configured for ``signal`` (``logs``, ``traces``, ``metrics``)."""
    own = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    return own or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or None


def describe(endpoint: str) -> str:
    """An endpoint as it may be said: scheme, host and port, never credentials or a query."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or "?"
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"
    except ValueError:
        return "the configured endpoint"


def build(app_name: str, environ: Mapping[str, str]) -> Signals | None:
    """The signals to export, or ``None`` when the SDK is missing or nothing is configured."""
    endpoints = {signal: endpoint_configured(environ, signal) for signal in SIGNALS}
    try:
        from opentelemetry import _logs, metrics, trace  # noqa: PLC0415 - optional
    except ImportError:
        return None
    app_logs = _application_provider(_logs.get_logger_provider())
    app_traces = _application_provider(trace.get_tracer_provider())
    app_metrics = _application_provider(metrics.get_meter_provider())
    wanted = {
        "logs": app_logs is None and endpoints["logs"] is not None,
        "traces": app_traces is None and endpoints["traces"] is not None,
        "metrics": app_metrics is None and endpoints["metrics"] is not None,
    }
    signals = Signals()
    if any(wanted.values()):
        try:
            exporters = _otlp_exporters(wanted)
        except ImportError:
            say("OTEL_EXPORTER_OTLP_ENDPOINT is set but callwatch[otel] is not installed: "
                 "no OTLP export (pip install 'callwatch[otel]')")
            exporters = {}
        if exporters:
            described = sorted({describe(e) for e in endpoints.values() if e is not None})
            signals = own_signals(
                _resource(app_name),
                exporters.get("logs"),
                exporters.get("traces"),
                exporters.get("metrics"),
                endpoint=", ".join(described),
            )
    if app_logs is not None:
        signals.logger = app_logs.get_logger("callwatch")
    if app_traces is not None:
        signals.tracer = app_traces.get_tracer("callwatch")
    if app_metrics is not None:
        signals.meter = app_metrics.get_meter("callwatch")
    return signals if signals.enabled else None


def own_signals(
    resource: Any,
    log_exporter: Any = None,
    span_exporter: Any = None,
    metric_exporter: Any = None,
    *,
    endpoint: str = "the collector",
    metric_interval_ms: float | None = None,
) -> Signals:
    """Private providers over the given SDK exporters (the seam unit tests use)."""
    delivery = Delivery(endpoint)
    signals = Signals(delivery=delivery)
    _quiet_sdk_exporters()
    if log_exporter is not None:
        from callwatch._otel.log_batches import LogBatches  # noqa: PLC0415

        logs = LogBatches(_counting(log_exporter, delivery, "records"), resource, BATCH,
                          SCHEDULE_MS / 1000)
        signals.logger = logs
        signals.own.append(logs)
        signals.counted.add("records")
    if span_exporter is not None:
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

        traces = TracerProvider(resource=resource, shutdown_on_exit=False)
        traces.add_span_processor(BatchSpanProcessor(
            _counting(span_exporter, delivery, "spans"), max_queue_size=QUEUE + _HEADROOM,
            max_export_batch_size=BATCH, schedule_delay_millis=SCHEDULE_MS))
        signals.tracer = traces.get_tracer("callwatch")
        signals.own.append(traces)
        signals.counted.add("spans")
    if metric_exporter is not None:
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
            PeriodicExportingMetricReader,
        )

        reader = PeriodicExportingMetricReader(
            _counting_metric_exporter(metric_exporter, delivery),
            export_interval_millis=metric_interval_ms)
        meters = MeterProvider(resource=resource, metric_readers=[reader],
                               shutdown_on_exit=False)
        signals.meter = meters.get_meter("callwatch")
        signals.own.append(meters)
    return signals


def _application_provider(provider: Any) -> Any:
    """The provider if the application set one, ``None`` for the API's stand-in."""
    return None if type(provider).__name__.lstrip("_").startswith("Proxy") else provider


def _otlp_exporters(wanted: Mapping[str, bool]) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (  # noqa: PLC0415
        OTLPLogExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
        OTLPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    factories: dict[str, Callable[[], Any]] = {
        "logs": OTLPLogExporter, "traces": OTLPSpanExporter, "metrics": OTLPMetricExporter}
    return {signal: factories[signal]() for signal, on in wanted.items() if on}


_resources: dict[str, Any] = {}  # the process tree's resource per APP_NAME, all but the pid


def _resource(app_name: str) -> Any:
    """service.name from APP_NAME, host.name and process.pid; the OTEL_* variables win.

    Built once and inherited by forked workers, which only add their pid: the SDK detects
    resources on a thread pool, and in a child being set up after fork that pool's lock can
    still be held for the fork, which would hang the worker forever.
    """
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource  # noqa: PLC0415

    base = _resources.get(app_name)
    if base is None:
        base = Resource.create({"service.name": app_name, "host.name": socket.gethostname()})
        base = _resources[app_name] = base.merge(OTELResourceDetector().detect())
    return Resource({"process.pid": os.getpid()}).merge(base)


def _counting(inner: Any, delivery: Delivery, unit: str) -> Any:
    """The SDK's processors take any object with the exporter's three methods."""
    return _CountingExporter(inner, delivery, unit)


class _CountingExporter:
    """Wraps an SDK exporter: counts what it could not send, keeps the SDK's logging quiet."""

    def __init__(self, inner: Any, delivery: Delivery, unit: str) -> None:
        self._inner = inner
        self._delivery = delivery
        self._unit = unit

    def export(self, batch: Sequence[Any]) -> Any:
        with _exporting():
            try:
                result = self._inner.export(batch)
            except Exception:  # said once by Delivery, not by the SDK per batch
                self._delivery.failed(len(batch), self._unit)
                return None
        if getattr(result, "name", "") == "SUCCESS":  # LogRecordExportResult, SpanExportResult
            self._delivery.sent(len(batch), self._unit)
        else:
            self._delivery.failed(len(batch), self._unit)
        return result

    def shutdown(self) -> None:
        with _exporting():
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))


def _counting_metric_exporter(inner: Any, delivery: Delivery) -> Any:
    from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
        MetricExporter,
        MetricExportResult,
    )

    class CountingMetricExporter(MetricExporter):
        """Metrics are cumulative: a failed export is resent whole by the next one."""

        def __init__(self) -> None:
            super().__init__(preferred_temporality=inner._preferred_temporality,
                             preferred_aggregation=inner._preferred_aggregation)

        def export(self, metrics_data: Any, timeout_millis: float = 10_000,
                   **kwargs: Any) -> Any:
            with _exporting():
                result = inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            if result == MetricExportResult.SUCCESS:
                delivery.sent(0)
            else:
                delivery.failed(0, "metric points")
            return result

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return bool(inner.force_flush(timeout_millis))

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            with _exporting():
                inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    return CountingMetricExporter()


_local = threading.local()


@contextmanager
def _exporting() -> Iterator[None]:
    _local.active = True
    try:
        yield
    finally:
        _local.active = False


class _QuietWhileExporting(logging.Filter):
    """Drops the SDK's own messages about our exports (Delivery says them once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_local, "active", False)


_QUIET = _QuietWhileExporting()


def _quiet_sdk_exporters() -> None:
    for name in _EXPORTER_LOGGERS:
        sdk_logger = logging.getLogger(name)
        if _QUIET not in sdk_logger.filters:
            sdk_logger.addFilter(_QUIET)
