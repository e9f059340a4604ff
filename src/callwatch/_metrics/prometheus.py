"""Totals as Prometheus metric families, and back.

Names and units follow Prometheus conventions: seconds, bytes, ratios 0-1,
``_total`` counters. In one process, a collector renders the live totals at
scrape time. Under a pre-fork server each worker publishes its totals into
prometheus_client's multiprocess files (see ``multiprocess.py``), which this
module also reads back into :class:`Totals`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge
from prometheus_client import Histogram as PromHistogram
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from callwatch._metrics.histogram import (
    CALL_DURATION_EDGES_SEC,
    OPERATION_EDGES_MS,
    RESPONSE_EDGES_MS,
    Histogram,
)
from callwatch._metrics.operations import OperationStats
from callwatch._metrics.snapshot import Totals
from callwatch._metrics.usage import USAGE_KEYS

__all__ = ["INTERNAL_PREFIX", "Publisher", "families", "totals_from_families"]

P = "callwatch_"
_INF = float("inf")
INTERNAL_PREFIX = P + "internal_"  # cross-worker plumbing, never exposed
WINDOW = INTERNAL_PREFIX + "window_calls"
RECENT_RESPONSE = INTERNAL_PREFIX + "recent_response_time"  # bucket counts of the window
_OUTCOMES = (("success", "succeeded"), ("failure", "failed"))
_WINDOW_KINDS = ("started", "succeeded", "failed")

# name -> (help, bounds in our unit, our units per second: 1000 for ms)
_HISTOGRAMS: dict[str, tuple[str, tuple[float, ...], float]] = {
    P + "call_duration_seconds": ("Duration of ended calls.", CALL_DURATION_EDGES_SEC, 1.0),
    P + "response_time_seconds": (
        "Agent turn latency: user stopped speaking to first agent audio.",
        RESPONSE_EDGES_MS, 1000.0,
    ),
    P + "operation_duration_seconds": (
        "Duration of perf_timer blocks by operation.", OPERATION_EDGES_MS, 1000.0,
    ),
}
# system sample key -> (metric name, help, multiprocess mode, factor to base units)
_SYSTEM: dict[str, tuple[str, str, str, float]] = {
    "cpu_percent": (P + "system_cpu_usage_ratio", "Host CPU in use (0-1).",
                    "livemostrecent", 0.01),
    "memory_percent": (P + "system_memory_usage_ratio",
                       "Memory in use against the cgroup limit, else the host's (0-1).",
                       "livemostrecent", 0.01),
    "disk_percent": (P + "system_disk_usage_ratio", "Disk in use where logs are written (0-1).",
                     "livemostrecent", 0.01),
    "memory_available_mb": (P + "system_memory_available_bytes", "Memory still available.",
                            "livemostrecent", 1024.0 * 1024),
    "disk_free_gb": (P + "system_disk_free_bytes", "Free disk where logs are written.",
                     "livemostrecent", 1024.0**3),
    "process_memory_mb": (P + "process_resident_memory_bytes",
                          "Resident memory of the callwatch process(es), summed over workers.",
                          "livesum", 1024.0 * 1024),
    "open_files": (P + "process_open_fds", "Open file descriptors, summed over workers.",
                   "livesum", 1.0),
}

_USAGE_HELP = {
    "llm_prompt_tokens": "LLM prompt (input) tokens.",
    "llm_completion_tokens": "LLM completion (output) tokens.",
    "tts_characters": "Characters synthesised to speech.",
    "stt_audio_seconds": "Seconds of audio transcribed.",
    "cost_usd": "Cost of the usage above, in US dollars.",
}


def _buckets(hist: Histogram, per_second: float) -> list[tuple[str, float]]:
    cumulative, out = 0, []
    for bound, n in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
        cumulative += n
        out.append((floatToGoString(bound / per_second), float(cumulative)))  # type: ignore[no-untyped-call]
    return out


def families(totals: Totals, system: dict[str, Any]) -> list[Metric]:
    """Every callwatch metric for one process's totals (the single-process collector)."""
    started = CounterMetricFamily(P + "calls_started", "Calls started.", value=totals.started)
    ended = CounterMetricFamily(P + "calls_ended", "Calls ended, by outcome.", labels=["outcome"])
    for outcome, attr in _OUTCOMES:
        ended.add_metric([outcome], getattr(totals, attr))
    active = GaugeMetricFamily(P + "active_calls", "Calls in progress.", value=totals.active)
    out: list[Metric] = [started, ended, active]
    hists: dict[str, dict[tuple[str, ...], Histogram]] = {
             P + "call_duration_seconds": {(): totals.duration},
             P + "response_time_seconds": {(): totals.response},
             P + "operation_duration_seconds": {(op,): s for op, s in totals.operations.items()}}
    for name, children in hists.items():
        help_text, _, per_second = _HISTOGRAMS[name]
        labels = ["operation"] if "operation" in name else []
        family = HistogramMetricFamily(name, help_text, labels=labels)
        peak = GaugeMetricFamily(name.replace("_seconds", "_max_seconds"),
                                 "Largest value observed.", labels=labels)
        for values, hist in children.items():
            family.add_metric(list(values), _buckets(hist, per_second), hist.sum / per_second)
            peak.add_metric(list(values), hist.max / per_second)
        out += [family, peak]
    failures = CounterMetricFamily(P + "operation_failures", "perf_timer blocks that raised.",
                                   labels=["operation"])
    for op, stats in totals.operations.items():
        failures.add_metric([op], stats.failures)
    out.append(failures)
    out.append(_labelled_counter(P + "errors", "Errors recorded, by type.", "error_type",
                                 totals.errors_by_type))
    out.append(_labelled_counter(P + "call_anomalies", "Bad call input, by kind.", "kind",
                                 totals.anomalies))
    out.append(CounterMetricFamily(P + "log_records_dropped", "Log records lost.",
                                   value=totals.dropped_records))
    out.append(CounterMetricFamily(P + "otlp_dropped", "Records and spans OTLP export lost.",
                                   value=totals.otlp_dropped))
    for key in USAGE_KEYS:
        out.append(CounterMetricFamily(P + key, _USAGE_HELP[key], value=totals.usage[key]))
    for key, (name, help_text, _, scale) in _SYSTEM.items():
        if key in system:
            out.append(GaugeMetricFamily(name, help_text, value=float(system[key]) * scale))
    return out


def _labelled_counter(name: str, help_text: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, help_text, labels=[label])
    for value, count in sorted(values.items()):
        family.add_metric([value], count)
    return family


def totals_from_families(metrics: Iterable[Metric]) -> Totals:
    """Totals from merged multiprocess files (``merge(..., accumulate=False)``)."""
    totals = Totals()
    for metric in metrics:
        for sample in metric.samples:
            _read_sample(totals, sample.name, sample.labels, sample.value)
    totals.total_errors = sum(totals.errors_by_type.values())
    totals.recent_response.max = totals.response.max  # the window's bound, as in one process
    return totals


def _read_sample(totals: Totals, name: str, labels: dict[str, str], value: float) -> None:
    count = int(value)
    if name == P + "calls_started_total":
        totals.started += count
    elif name == P + "calls_ended_total":
        if labels.get("outcome") == "success":
            totals.succeeded += count
        else:
            totals.failed += count
    elif name == P + "active_calls":
        totals.active += count
    elif name == P + "errors_total":
        _count(totals.errors_by_type, labels.get("error_type", ""), count)
    elif name == P + "call_anomalies_total":
        _count(totals.anomalies, labels.get("kind", ""), count)
    elif name.endswith("_total") and name[len(P):-len("_total")] in totals.usage:
        totals.usage[name[len(P):-len("_total")]] += value
    elif name == P + "log_records_dropped_total":
        totals.dropped_records += count
    elif name == P + "otlp_dropped_total":
        totals.otlp_dropped += count
    elif name == P + "operation_failures_total":
        _op(totals, labels).failures += count
    elif name == RECENT_RESPONSE:
        bucket = labels.get("bucket", "")
        if bucket == "sum":
            totals.recent_response.sum += value
        elif bucket.isdigit() and int(bucket) < len(totals.recent_response.counts):
            totals.recent_response.counts[int(bucket)] += count
            totals.recent_response.count += count
    elif name == WINDOW:
        window = totals.minute if labels.get("window") == "minute" else totals.recent
        kind = labels.get("kind", "")
        if kind in _WINDOW_KINDS:
            setattr(window, kind, getattr(window, kind) + count)
    else:
        _read_histogram_sample(totals, name, labels, value)


def _count(into: dict[str, int], key: str, value: int) -> None:
    into[key] = into.get(key, 0) + value


def _op(totals: Totals, labels: dict[str, str]) -> OperationStats:
    name = labels.get("operation", "")
    stats = totals.operations.get(name)
    if stats is None:
        stats = totals.operations[name] = OperationStats()
    return stats


def _read_histogram_sample(
    totals: Totals, name: str, labels: dict[str, str], value: float
) -> None:
    for base, (_, bounds, per_second) in _HISTOGRAMS.items():
        if not name.startswith(base[: -len("_seconds")]):
            continue
        hist: Histogram
        if base == P + "call_duration_seconds":
            hist = totals.duration
        elif base == P + "response_time_seconds":
            hist = totals.response
        else:
            hist = _op(totals, labels)
        if name == base + "_sum":
            hist.sum += value * per_second
        elif name == base + "_bucket":
            le = float(labels["le"])
            # le was written from our own bounds; 0.999 absorbs float noise of the unit change.
            index = len(bounds) if le == _INF else bisect_left(bounds, le * per_second * 0.999)
            hist.counts[index] += int(value)
            hist.count += int(value)
        elif name == base.replace("_seconds", "_max_seconds"):
            hist.max = max(hist.max, value * per_second)
        return


class Publisher:
    """Writes one worker's totals into prometheus_client's multiprocess files, as deltas.

    Counters and histograms only ever grow by what changed since the last
    publication; gauges are set. Histogram buckets are added to directly,
    because ``observe`` cannot add a count to a bucket without also adding a
    made-up value to the sum.
    """

    def __init__(self) -> None:
        self._last = Totals()
        self._started = Counter(P + "calls_started", "Calls started.", registry=None)
        self._ended = Counter(P + "calls_ended", "Calls ended, by outcome.", ["outcome"],
                              registry=None)
        self._active = Gauge(P + "active_calls", "Calls in progress.", registry=None,
                             multiprocess_mode="livesum")
        self._hists = {
            name: PromHistogram(name, help_text, ["operation"] if "operation" in name else [],
                                buckets=[b / per_second for b in bounds], registry=None)
            for name, (help_text, bounds, per_second) in _HISTOGRAMS.items()
        }
        self._peaks = {
            name: Gauge(name.replace("_seconds", "_max_seconds"), "Largest value observed.",
                        ["operation"] if "operation" in name else [], registry=None,
                        multiprocess_mode="max")
            for name in _HISTOGRAMS
        }
        self._op_failures = Counter(P + "operation_failures", "perf_timer blocks that raised.",
                                    ["operation"], registry=None)
        self._errors = Counter(P + "errors", "Errors recorded, by type.", ["error_type"],
                               registry=None)
        self._anomalies = Counter(P + "call_anomalies", "Bad call input, by kind.", ["kind"],
                                  registry=None)
        self._dropped = Counter(P + "log_records_dropped", "Log records lost.", registry=None)
        self._otlp_dropped = Counter(P + "otlp_dropped", "Records and spans OTLP export lost.",
                                     registry=None)
        self._usage = {key: Counter(P + key, _USAGE_HELP[key], registry=None)
                       for key in USAGE_KEYS}
        self._window = Gauge(WINDOW, "Calls in the recent windows (internal).",
                             ["window", "kind"], registry=None, multiprocess_mode="livesum")
        self._recent_response = Gauge(
            RECENT_RESPONSE, "Response times of the recent window (internal).", ["bucket"],
            registry=None, multiprocess_mode="livesum",
        )
        self._system = {
            key: Gauge(name, help_text, registry=None, multiprocess_mode=mode)  # type: ignore[arg-type]
            for key, (name, help_text, mode, _) in _SYSTEM.items()
        }

    def publish(self, totals: Totals, system: dict[str, Any]) -> None:
        last = self._last
        _inc(self._started, totals.started - last.started)
        for outcome, attr in _OUTCOMES:
            _inc(self._ended.labels(outcome), getattr(totals, attr) - getattr(last, attr))
        self._active.set(totals.active)
        duration, response = (P + "call_duration_seconds", P + "response_time_seconds")
        self._publish_histogram(duration, (), totals.duration, last.duration)
        self._publish_histogram(response, (), totals.response, last.response)
        operation = P + "operation_duration_seconds"
        for op, stats in totals.operations.items():
            before = last.operations.get(op) or OperationStats()
            self._publish_histogram(operation, (op,), stats, before)
            _inc(self._op_failures.labels(op), stats.failures - before.failures)
        for error_type, n in totals.errors_by_type.items():
            _inc(self._errors.labels(error_type), n - last.errors_by_type.get(error_type, 0))
        for kind, n in totals.anomalies.items():
            _inc(self._anomalies.labels(kind), n - last.anomalies.get(kind, 0))
        _inc(self._dropped, totals.dropped_records - last.dropped_records)
        _inc(self._otlp_dropped, totals.otlp_dropped - last.otlp_dropped)
        for key, counter in self._usage.items():
            _inc(counter, totals.usage[key] - last.usage[key])
        for window_name, window in (("minute", totals.minute), ("recent", totals.recent)):
            for kind in _WINDOW_KINDS:
                self._window.labels(window_name, kind).set(getattr(window, kind))
        recent = totals.recent_response
        for index, n in enumerate(recent.counts):
            self._recent_response.labels(str(index)).set(n)
        self._recent_response.labels("sum").set(recent.sum)
        for key, gauge in self._system.items():
            if key in system:
                gauge.set(float(system[key]) * _SYSTEM[key][3])
        self._last = totals

    def _publish_histogram(
        self, name: str, labels: tuple[str, ...], now: Histogram, before: Histogram
    ) -> None:
        per_second = _HISTOGRAMS[name][2]
        if now.count != before.count or now.sum != before.sum:
            child = self._hists[name].labels(*labels) if labels else self._hists[name]
            for bucket, n, m in zip(child._buckets, now.counts, before.counts, strict=True):
                if n != m:
                    bucket.inc(n - m)
            child._sum.inc((now.sum - before.sum) / per_second)
        if now.max > before.max or (now.count and not before.count):
            peak = self._peaks[name]
            (peak.labels(*labels) if labels else peak).set(now.max / per_second)


def _inc(counter: Any, amount: float) -> None:
    if amount > 0:
        counter.inc(amount)
