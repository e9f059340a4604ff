"""The one description of callwatch's metrics, and everything derived from it.

:data:`METRICS` lists each metric once. From it come the Prometheus exposition
(:func:`families`), the keys of the values each worker keeps in its shared
memory-mapped file (:func:`key`) and the reading of those values back into
:class:`Totals` (:class:`Reader`). Names and units follow Prometheus
conventions: seconds, bytes, ratios 0-1, ``_total`` counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import orjson
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
from callwatch._metrics.snapshot import Totals

__all__ = ["BY_NAME", "METRICS", "PREFIX", "MetricSpec", "Reader", "entries", "families", "key"]

PREFIX = "callwatch_"
Kind = Literal["counter", "gauge", "histogram"]
# Where a value comes from: "totals" (counted, kept in the shared files), "active" (live
# calls), "system" (the host sample of the answering worker), "process" (a per-process
# sample, kept in the shared files while the worker lives, summed over live workers).
Source = Literal["totals", "active", "system", "process"]
_MB = 1024.0 * 1024


@dataclass(frozen=True)
class MetricSpec:
    name: str  # without the prefix and the ``_total`` suffix
    kind: Kind
    help: str
    label: str | None = None
    fixed_labels: tuple[str, ...] = ()  # label values always exposed, even at zero
    bounds: tuple[float, ...] = ()  # histogram bounds, in our unit
    per_base_unit: float = 1.0  # our units per Prometheus base unit (1000: ms -> s)
    source: Source = "totals"
    sample_key: str = ""  # system/process sample key
    sample_scale: float = 1.0  # sample unit -> base unit

    @property
    def prom_name(self) -> str:
        return PREFIX + self.name


def _usage(name: str, help_text: str) -> MetricSpec:
    return MetricSpec(name, "counter", help_text)


def _system(name: str, help_text: str, sample_key: str, scale: float) -> MetricSpec:
    return MetricSpec(name, "gauge", help_text, source="system", sample_key=sample_key,
                      sample_scale=scale)


def _process(name: str, help_text: str, sample_key: str, scale: float) -> MetricSpec:
    return MetricSpec(name, "gauge", help_text, source="process", sample_key=sample_key,
                      sample_scale=scale)


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("calls_started", "counter", "Calls started."),
    MetricSpec("calls_ended", "counter", "Calls ended, by outcome.", label="outcome",
               fixed_labels=("success", "failure")),
    MetricSpec("abandoned_calls", "counter",
               "Calls in progress when their worker died; also counted as failed."),
    MetricSpec("active_calls", "gauge", "Calls in progress.", source="active"),
    MetricSpec("call_duration_seconds", "histogram", "Duration of ended calls.",
               bounds=CALL_DURATION_EDGES_SEC),
    MetricSpec("response_time_seconds", "histogram",
               "Agent turn latency: user stopped speaking to first agent audio.",
               bounds=RESPONSE_EDGES_MS, per_base_unit=1000.0),
    MetricSpec("operation_duration_seconds", "histogram",
               "Duration of perf_timer blocks by operation.", label="operation",
               bounds=OPERATION_EDGES_MS, per_base_unit=1000.0),
    MetricSpec("operation_failures", "counter", "perf_timer blocks that raised.",
               label="operation"),
    MetricSpec("errors", "counter", "Errors recorded, by type.", label="error_type"),
    MetricSpec("call_anomalies", "counter", "Bad call input, by kind.", label="kind"),
    MetricSpec("log_records_dropped", "counter", "Log records lost."),
    MetricSpec("log_internal_errors", "counter",
               "Failures inside the logging pipeline, each reported once to stderr."),
    MetricSpec("otlp_dropped", "counter", "Records and spans the OTLP export could not send."),
    _usage("llm_prompt_tokens", "LLM prompt (input) tokens."),
    _usage("llm_completion_tokens", "LLM completion (output) tokens."),
    _usage("tts_characters", "Characters synthesised to speech."),
    _usage("stt_audio_seconds", "Seconds of audio transcribed."),
    _usage("cost_usd", "Cost of the usage above, in US dollars."),
    _system("system_cpu_usage_ratio", "Host CPU in use (0-1).", "cpu_percent", 0.01),
    _system("system_memory_usage_ratio",
            "Memory in use against the cgroup limit, else the host's (0-1).",
            "memory_percent", 0.01),
    _system("system_disk_usage_ratio", "Disk in use where logs are written (0-1).",
            "disk_percent", 0.01),
    _system("system_memory_available_bytes", "Memory still available.",
            "memory_available_mb", _MB),
    _system("system_disk_free_bytes", "Free disk where logs are written.",
            "disk_free_gb", 1024.0 * _MB),
    _process("process_resident_memory_bytes",
             "Resident memory of the callwatch process(es), summed over workers.",
             "process_memory_mb", _MB),
    _process("process_open_fds", "Open file descriptors, summed over workers.",
             "open_files", 1.0),
)
BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}
Part = str  # "" for a counter or gauge; "b<i>", "sum" or "max" for a histogram


@lru_cache(maxsize=8192)
def key(name: str, label: str = "", part: Part = "") -> str:
    """The key of one value in a worker's shared file."""
    return orjson.dumps([name, label, part]).decode()


def entries(totals: Totals) -> Iterator[tuple[str, float]]:
    """Every counted value of ``totals`` as shared-file ``(key, value)`` pairs."""
    for name, by_label in totals.counters.items():
        if name in BY_NAME:
            for label, value in by_label.items():
                yield key(name, label), value
    for name, hists in totals.hists.items():
        for label, hist in hists.items():
            for index, count in enumerate(hist.counts):
                if count:
                    yield key(name, label, f"b{index}"), count
            yield key(name, label, "sum"), hist.sum
            yield key(name, label, "max"), hist.max


class Reader:
    """Reads the values of shared files back into :class:`Totals`, caching parsed keys."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[MetricSpec, str, Part] | None] = {}

    def add(self, totals: Totals, entries: Iterable[tuple[str, float]], *, live: bool) -> None:
        """Add a file's ``(key, value)`` entries; per-process gauges only from live workers."""
        parsed = self._parsed
        for raw, value in entries:
            found = parsed[raw] if raw in parsed else self._parse(raw)
            if found is None:
                continue
            spec, label, part = found
            if spec.kind == "histogram":
                _add_to_histogram(totals.hist(spec.name, spec.bounds, label), part, value)
            elif spec.source == "process":
                if live:
                    totals.process[spec.name] = totals.process.get(spec.name, 0.0) + value
            else:
                totals.add_count(spec.name, label, value)

    def _parse(self, raw: str) -> tuple[MetricSpec, str, Part] | None:
        if len(self._parsed) > 65536:
            self._parsed.clear()
        try:
            name, label, part = orjson.loads(raw)
            spec = BY_NAME.get(name)
            found = None if spec is None else (spec, str(label), str(part))
        except (orjson.JSONDecodeError, TypeError, ValueError):
            found = None
        self._parsed[raw] = found
        return found


def _add_to_histogram(hist: Histogram, part: Part, value: float) -> None:
    if part == "sum":
        hist.sum += value
    elif part == "max":
        hist.max = max(hist.max, value)
    elif part[1:].isdigit() and int(part[1:]) < len(hist.counts):
        hist.counts[int(part[1:])] += int(value)
        hist.count += int(value)


def families(totals: Totals, system: dict[str, Any]) -> list[Metric]:
    """Every callwatch metric family for ``totals`` (one worker's or the fleet's)."""
    out: list[Metric] = []
    for spec in METRICS:
        labels = [spec.label] if spec.label else []
        if spec.kind == "histogram":
            out += _histogram_families(spec, labels, totals.hists.get(spec.name, {}))
        elif spec.kind == "counter":
            family = CounterMetricFamily(spec.prom_name, spec.help, labels=labels)
            values = dict.fromkeys(spec.fixed_labels, 0.0)
            values.update(totals.counters.get(spec.name, {}))
            if not labels:
                values = {"": values.get("", 0.0)}
            for label, value in sorted(values.items()):
                family.add_metric([label] if labels else [], value)
            out.append(family)
        elif spec.source == "active":
            out.append(GaugeMetricFamily(spec.prom_name, spec.help, value=totals.active))
        elif spec.source == "process":
            if spec.name in totals.process:
                out.append(GaugeMetricFamily(spec.prom_name, spec.help,
                                             value=totals.process[spec.name]))
        elif spec.sample_key in system:
            out.append(GaugeMetricFamily(spec.prom_name, spec.help,
                                         value=float(system[spec.sample_key]) * spec.sample_scale))
    return out


def _histogram_families(
    spec: MetricSpec, labels: list[str], children: dict[str, Histogram]
) -> list[Metric]:
    family = HistogramMetricFamily(spec.prom_name, spec.help, labels=labels)
    peak = GaugeMetricFamily(spec.prom_name.replace("_seconds", "_max_seconds"),
                             "Largest value observed.", labels=labels)
    if not labels and "" not in children:
        children = {"": Histogram(spec.bounds)}
    scale = spec.per_base_unit
    for label, hist in sorted(children.items()):
        values = [label] if labels else []
        cumulative, buckets = 0, []
        for bound, n in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
            cumulative += n
            buckets.append((floatToGoString(bound / scale), float(cumulative)))  # type: ignore[no-untyped-call]
        family.add_metric(values, buckets, hist.sum / scale)
        peak.add_metric(values, hist.max / scale)
    return [family, peak]
