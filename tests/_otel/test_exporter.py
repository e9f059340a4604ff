"""Records, calls and timers leave as OTLP log records and spans (in-memory exporters)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._otel.support import need_module

need_module("opentelemetry.sdk")

from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402

import callwatch  # noqa: E402
from callwatch import _otel  # noqa: E402
from callwatch._logging.stats import STATS  # noqa: E402
from callwatch._otel import providers  # noqa: E402
from callwatch.logger import bind_call, log, perf_timer  # noqa: E402
from callwatch.monitoring import (  # noqa: E402
    get_metrics,
    prometheus_exposition,
    record_call_end,
    record_call_start,
)


class Memory:
    def __init__(self) -> None:
        self.logs = InMemoryLogRecordExporter()
        self.spans = InMemorySpanExporter()

    def records(self) -> list[Any]:
        return [item.log_record for item in self.logs.get_finished_logs()]

    def span(self, name: str) -> Any:
        (found,) = [s for s in self.spans.get_finished_spans() if s.name == name]
        return found


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Memory]:
    exporters = Memory()

    def build(app_name: str, environ: Any) -> providers.Signals:
        return providers.own_signals(
            Resource.create({"service.name": app_name}), exporters.logs, exporters.spans)

    monkeypatch.setattr(providers, "build", build)
    callwatch.configure(log_dir=tmp_path / "logs", console=False, environment="production",
                        redact_pii=True)
    try:
        yield exporters
    finally:
        callwatch.shutdown()


def test_every_record_is_exported_redacted_with_its_fields_as_attributes(memory: Memory) -> None:
    log.info("Card 4111 1111 1111 1111 on file", extra={"caller": "+15551234567", "turn": 2})
    callwatch.shutdown()
    (record,) = [r for r in memory.records() if str(r.body).startswith("Card")]
    assert "4111 1111 1111 1111" not in str(record.body)
    assert record.severity_text == "INFO"
    assert record.severity_number.value == 9
    assert record.attributes["turn"] == 2
    assert "+15551234567" not in str(dict(record.attributes))
    assert record.attributes["logger"] == __name__


def test_a_call_is_one_trace_with_its_timers_logs_and_errors(memory: Memory) -> None:
    record_call_start("otel-call-1")
    with bind_call("otel-call-1"):
        log.info("Caller connected")
        with perf_timer("llm_completion"):
            pass
        with pytest.raises(RuntimeError), perf_timer("tts_synthesis"):
            raise RuntimeError("voice down")
        log.error("TTS failed")
    record_call_end("otel-call-1", 2.0, success=False)
    callwatch.shutdown()

    call = memory.span("call")
    assert call.attributes["call_id"] == "otel-call-1"
    assert call.status.status_code is StatusCode.ERROR
    assert [event.name for event in call.events] == ["error"]
    llm, tts = memory.span("llm_completion"), memory.span("tts_synthesis")
    for child in (llm, tts):
        assert child.parent.span_id == call.context.span_id
        assert child.context.trace_id == call.context.trace_id
        assert child.attributes["call_id"] == "otel-call-1"
    assert tts.status.status_code is StatusCode.ERROR
    logged = [r for r in memory.records() if r.attributes.get("call_id") == "otel-call-1"]
    assert len(logged) == 4
    assert {r.trace_id for r in logged} == {call.context.trace_id}


def test_a_card_number_used_as_call_id_leaves_masked_and_the_call_stays_one_trace(
    memory: Memory,
) -> None:
    card = "4111111111111111"
    record_call_start(card)
    with bind_call(card), perf_timer("llm_completion"):
        log.info("Caller connected")
    record_call_end(card, 1.0)
    callwatch.shutdown()

    call, llm = memory.span("call"), memory.span("llm_completion")
    shown = call.attributes["call_id"]
    assert card not in shown and "[CARD]" in shown
    assert llm.parent.span_id == call.context.span_id and llm.attributes["call_id"] == shown
    (connected,) = [r for r in memory.records() if r.body == "Caller connected"]
    assert connected.attributes["call_id"] == shown
    assert connected.trace_id == call.context.trace_id


def test_a_span_active_at_the_call_start_is_the_call_spans_parent(memory: Memory) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    framework = TracerProvider().get_tracer("framework")
    with framework.start_as_current_span("conversation") as conversation:
        record_call_start("otel-call-2")
        log.info("inside the framework's span")
    record_call_end("otel-call-2", success=True)
    callwatch.shutdown()
    call = memory.span("call")
    assert call.parent.span_id == conversation.get_span_context().span_id
    assert call.context.trace_id == conversation.get_span_context().trace_id
    assert call.status.status_code is StatusCode.OK
    (inside,) = [r for r in memory.records() if r.body == "inside the framework's span"]
    assert inside.span_id == conversation.get_span_context().span_id


_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
              "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")


@pytest.mark.parametrize("environ", [
    pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "CALLWATCH_OTLP": "false"},
                 id="CALLWATCH_OTLP=false turns export off"),
    pytest.param({}, id="no endpoint and no application provider"),
])
def test_export_stays_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    for name in _ENDPOINTS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    callwatch.configure(log_dir=tmp_path / "logs", console=False)
    try:
        assert _otel.current() is None
    finally:
        callwatch.shutdown()


def test_a_collector_that_is_down_costs_counted_drops_said_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cret-token")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    before = STATS.otlp_dropped
    callwatch.configure(log_dir=tmp_path / "logs", console=False, environment="production")
    for n in range(50):
        log.info("while the collector is down", extra={"n": n})
    callwatch.shutdown()
    written = [line for p in (tmp_path / "logs" / "app").glob("*.log")
               for line in p.read_text().splitlines()]
    # Each record counted once (the outage's own WARNING record too, if exported in time).
    assert 50 <= STATS.otlp_dropped - before <= len(written)
    assert get_metrics()["logging"]["otlp_dropped"] == STATS.otlp_dropped
    exposition = prometheus_exposition()[0].decode()
    assert f"callwatch_otlp_dropped_total {float(STATS.otlp_dropped)}" in exposition
    err = capfd.readouterr().err
    assert err.count("OTLP export to http://127.0.0.1:9 failing") == 1
    assert "s3cret" not in err
    text = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert "s3cret" not in text
    assert text.count("OTLP export failing") <= 1


def test_a_call_still_live_at_shutdown_ends_its_span_saying_so(memory: Memory) -> None:
    record_call_start("otel-call-3")
    callwatch.shutdown()
    call = memory.span("call")
    assert call.status.status_code is StatusCode.ERROR
    assert "end was recorded" in call.status.description


class GatedLogExporter(InMemoryLogRecordExporter):
    """A collector that takes nothing until the gate opens (one that is behind)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def export(self, batch: Any) -> Any:
        self.gate.wait(30)
        return super().export(batch)


def test_a_burst_beyond_the_batch_queue_waits_for_a_slow_collector_instead_of_dropping(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = GatedLogExporter()
    monkeypatch.setattr(providers, "build", lambda app_name, environ: providers.own_signals(
        Resource.create({"service.name": app_name}), logs))
    before = STATS.otlp_dropped
    callwatch.configure(log_dir=tmp_path / "logs", console=False, environment="production")
    try:
        exporter = _otel.current()
        lines = providers.QUEUE + 2000
        for n in range(lines):
            log.info("burst", extra={"n": n})
        deadline = time.monotonic() + 30
        while exporter.delivery.in_flight() < providers.QUEUE and time.monotonic() < deadline:
            time.sleep(0.01)
        assert exporter.delivery.in_flight() == providers.QUEUE  # the batch queue is full
        logs.gate.set()
        while exporter.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        callwatch.shutdown()
    numbers = sorted(r.log_record.attributes["n"] for r in logs.get_finished_logs()
                     if r.log_record.body == "burst")
    assert numbers == list(range(lines))
    assert STATS.otlp_dropped == before
