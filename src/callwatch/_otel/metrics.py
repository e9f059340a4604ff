"""callwatch's call and latency metrics as OpenTelemetry instruments.

Counts and gauges are observed from this process's totals when the SDK collects
(so a backend sums the workers, each with its own ``process.pid``); durations
are recorded as histograms on the export thread from the call ends and the
timer and turn records, never on a caller's thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from callwatch._logging.stats import STATS

__all__ = ["Instruments"]

_TOTALS_TTL_SEC = 1.0


class Instruments:
    """The instruments of one meter, reading totals through ``read_totals``."""

    def __init__(self, meter: Any, read_totals: Callable[[], Any]) -> None:
        from opentelemetry.metrics import Observation  # noqa: PLC0415 - optional dependency

        self._observation = Observation
        self._read_totals = read_totals
        self._totals: tuple[float, Any] = (0.0, None)
        self.call_duration = meter.create_histogram(
            "callwatch.call.duration", unit="s", description="Duration of ended calls.")
        self.operation_duration = meter.create_histogram(
            "callwatch.operation.duration", unit="ms", description="perf_timer blocks.")
        self.turn_latency = meter.create_histogram(
            "callwatch.turn.latency", unit="ms",
            description="Agent turns: user stopped speaking to first agent audio.")
        meter.create_observable_counter(
            "callwatch.calls", callbacks=[self._calls], unit="{call}",
            description="Calls by outcome: started, succeeded, failed.")
        meter.create_observable_up_down_counter(
            "callwatch.calls.active", callbacks=[self._active], unit="{call}",
            description="Calls in progress.")
        meter.create_observable_gauge(
            "callwatch.response_time", callbacks=[self._response], unit="ms",
            description="Response-time percentiles over the error-rate window.")
        meter.create_observable_counter(
            "callwatch.records.dropped", callbacks=[self._dropped], unit="{record}",
            description="Records lost, by where: files (queue full, disk) or otlp.")

    def _read(self) -> Any:
        now = time.monotonic()
        read_at, totals = self._totals
        if totals is None or now - read_at > _TOTALS_TTL_SEC:
            totals = self._read_totals()
            self._totals = (now, totals)
        return totals

    def _calls(self, options: Any) -> Iterable[Any]:
        totals = self._read()
        make = self._observation
        return [make(totals.started, {"outcome": "started"}),
                make(totals.succeeded, {"outcome": "succeeded"}),
                make(totals.failed, {"outcome": "failed"})]

    def _active(self, options: Any) -> Iterable[Any]:
        return [self._observation(self._read().active)]

    def _response(self, options: Any) -> Iterable[Any]:
        recent = self._read().recent_response
        if not recent.count:
            return []
        return [self._observation(value, {"quantile": name})
                for name, value in recent.percentiles().items()]

    def _dropped(self, options: Any) -> Iterable[Any]:
        return [self._observation(STATS.dropped, {"sink": "files"}),
                self._observation(STATS.otlp_dropped, {"sink": "otlp"})]
