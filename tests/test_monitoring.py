"""The guide's monitoring face: samples, the metrics shape, bad input, Prometheus text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import callwatch
from callwatch import monitoring
from callwatch._alerts.thresholds import thresholds
from callwatch._logging.stats import STATS
from callwatch._metrics.labels import MAX_LABEL_VALUES
from callwatch.logger import perf_timer
from callwatch.monitoring import (
    get_health,
    get_metrics,
    production_monitor,
    prometheus_exposition,
    record_call_end,
    record_call_start,
    record_error,
    record_response_time,
    record_usage,
)
from callwatch.testing import capture_logs


@pytest.fixture(autouse=True)
def fresh(log_dir: Path) -> Iterator[None]:
    production_monitor.reset()
    yield
    production_monitor.reset()


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = prometheus_exposition()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_all_contract_names_are_exported() -> None:
    for name in ("record_call_start", "record_call_end", "record_error", "record_response_time",
                 "get_metrics", "get_health", "get_liveness", "get_readiness",
                 "prometheus_exposition", "production_monitor"):
        assert name in monitoring.__all__
        assert getattr(callwatch, name) is getattr(monitoring, name)


def test_guide_recording_sample_runs() -> None:
    call_id = "ast-123-456"
    record_call_start(call_id)
    record_call_end(call_id=call_id, duration_sec=15.5, success=True)
    record_error(error_type="STT_TIMEOUT", error_message="Speech recognition timed out",
                 context={"call_id": call_id, "duration": 30})
    metrics = get_metrics()
    assert metrics["calls"]["successful_calls"] == 1
    assert metrics["errors"]["errors_by_type"] == {"STT_TIMEOUT": 1}
    assert metrics["errors"]["recent_errors"][0]["call_id"] == call_id


def test_metrics_shape_and_values() -> None:
    for i, (duration, ok) in enumerate([(10.0, True), (20.0, True), (30.0, False)]):
        record_call_start(f"c{i}")
        record_call_end(f"c{i}", duration, success=ok)  # the guide's positional form
    record_call_start("live")
    for latency in (500.0, 700.0, 900.0, 2500.0):
        record_response_time(latency, call_id="c0")
    metrics = get_metrics()
    calls = metrics["calls"]
    assert {k: calls[k] for k in ("total_calls", "active_calls", "successful_calls",
                                  "failed_calls")} == {"total_calls": 4, "active_calls": 1,
                                                       "successful_calls": 2, "failed_calls": 1}
    assert calls["average_duration_sec"] == 20.0
    assert calls["average_response_time_ms"] == 1150.0
    assert calls["calls_per_minute"] == 4.0
    assert calls["window_calls"] == 3
    assert calls["error_rate"] == pytest.approx(33.33, abs=0.01)
    assert 500 <= calls["response_time_ms"]["p50"] <= 800
    assert 2000 <= calls["response_time_ms"]["p95"] <= 2500
    assert set(calls["duration_sec"]) == {"p50", "p95", "p99"}
    assert {"cpu_percent", "memory_percent", "disk_percent", "memory_available_mb",
            "disk_free_gb", "process_memory_mb", "open_files"} <= set(metrics["system"])
    assert set(metrics) == {"calls", "system", "errors", "performance", "logging", "usage",
                            "timestamp"}
    assert metrics["timestamp"].endswith("Z")


def test_recent_errors_are_newest_first_bounded_and_redacted() -> None:
    for i in range(60):
        record_error("LLM_ERROR", f"failure {i} with Bearer eyJhbGciOiJIUzI1NiJ9secretpayload{i}",
                     {"api_key": "sk-123", "n": i})
    errors = get_metrics()["errors"]
    assert errors["total_errors"] == 60
    recent = errors["recent_errors"]
    assert len(recent) == 50
    assert recent[0]["message"].startswith("failure 59")
    assert "eyJhbGciOiJIUzI1NiJ9secretpayload" not in str(recent) and "sk-123" not in str(recent)
    assert recent[0]["context"]["n"] == 59


def test_error_types_are_capped_in_metrics_and_exposition() -> None:
    for i in range(MAX_LABEL_VALUES + 30):
        record_error(f"type-{i}", "boom")
    errors = get_metrics()["errors"]
    assert len(errors["errors_by_type"]) == MAX_LABEL_VALUES + 1
    assert errors["errors_by_type"]["other"] == 30
    assert _samples()[("callwatch_errors_total", (("error_type", "other"),))] == 30


def test_performance_comes_from_perf_timer() -> None:
    with perf_timer("llm_generation"):
        time.sleep(0.02)
    perf = get_metrics()["performance"]["llm_generation"]
    assert perf["count"] == 1
    assert 15 <= perf["max_ms"] <= 2000
    assert perf["p50_ms"] <= perf["max_ms"]
    assert set(perf) >= {"count", "avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}


def test_dropped_log_records_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATS, "dropped", 7)
    assert get_metrics()["logging"]["dropped_records"] == 7
    assert _samples()[("callwatch_log_records_dropped_total", ())] == 7


@pytest.mark.parametrize(
    ("steps", "expected", "anomaly"),
    [
        ([("end", "x", 5.0)], (1, 1, 0), "end_without_start"),
        ([("start", "x"), ("end", "x", 5.0), ("end", "x", 5.0)], (1, 1, 0), "double_end"),
        ([("start", "x"), ("start", "x"), ("end", "x", 5.0)], (1, 1, 0), "double_start"),
        ([("start", "x"), ("end", "x", -3.0)], (1, 1, 0), "invalid_duration"),
        ([("start", "x"), ("end", "x", float("nan"))], (1, 1, 0), "invalid_duration"),
    ],
)
def test_bad_input_has_a_defined_answer(
    steps: list[tuple[object, ...]], expected: tuple[int, int, int], anomaly: str
) -> None:
    production_monitor._warned.clear()
    with capture_logs() as records:
        for step in steps:
            if step[0] == "start":
                record_call_start(step[1])
            else:
                record_call_end(step[1], step[2], success=True)
    calls = get_metrics()["calls"]
    assert (calls["total_calls"], calls["successful_calls"], calls["active_calls"]) == expected
    assert calls["average_duration_sec"] >= 0.0
    assert any(r["extra"].get("anomaly") == anomaly for r in records)
    assert _samples()[("callwatch_call_anomalies_total", (("kind", anomaly),))] == 1


def test_invalid_response_time_is_ignored() -> None:
    record_response_time(float("nan"))
    record_response_time(-1)
    record_response_time(250)
    calls = get_metrics()["calls"]
    assert calls["average_response_time_ms"] == 250.0


def test_never_ending_call_is_reaped_as_failed_and_logged() -> None:
    record_call_start("stuck")
    time.sleep(0.02)
    settings = callwatch.configure(log_dir=callwatch._runtime.settings().log_dir, console=False,
                                   max_call_age_sec=0.01)
    with capture_logs() as records:
        production_monitor.tick(settings)
    calls = get_metrics()["calls"]
    assert (calls["active_calls"], calls["failed_calls"]) == (0, 1)
    assert any(r["extra"].get("reaped_call_id") == "stuck" for r in records)


def test_duration_can_be_omitted_or_passed_as_duration() -> None:
    record_call_start("a")
    record_call_end("a")
    record_call_end("b", duration=4.0)
    calls = get_metrics()["calls"]
    assert calls["successful_calls"] == 2 and calls["average_duration_sec"] < 4.0


def test_exposition_has_call_counters_histograms_and_system_gauges() -> None:
    record_call_start("a")
    record_call_end("a", 42.0, success=False)
    record_response_time(800)
    samples = _samples()
    assert samples[("callwatch_calls_started_total", ())] == 1
    assert samples[("callwatch_calls_ended_total", (("outcome", "failure"),))] == 1
    assert samples[("callwatch_call_duration_seconds_sum", ())] == 42.0
    assert samples[("callwatch_response_time_seconds_bucket", (("le", "0.8"),))] == 1
    assert samples[("callwatch_response_time_seconds_bucket", (("le", "0.7"),))] == 0
    assert 0.0 <= samples[("callwatch_system_cpu_usage_ratio", ())] <= 1.0
    assert samples[("callwatch_process_resident_memory_bytes", ())] > 1e6


def test_memory_is_flat_over_many_calls() -> None:
    for i in range(20_000):
        record_call_start(i)
        record_call_end(i, 1.0)
    calls = production_monitor.calls
    assert calls.active == 0 and len(calls._ended) <= 4096
    assert calls.duration.count == 20_000 and len(calls.duration.counts) < 30


async def test_health_has_guide_shape_with_capacity_threshold() -> None:
    production_monitor.health_checker._cache = None
    health = await get_health()
    assert set(health) == {"healthy", "status", "checks", "timestamp"}
    assert health["checks"]["capacity"]["max_calls"] == thresholds["active_calls"]["critical"]
    assert health["checks"]["system"]["service"] == "system"
    assert "latency_ms" in health["checks"]["system"]


async def test_readiness_turns_false_when_capacity_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(thresholds, "active_calls", {"warning": 1, "critical": 2})
    for i in range(2):
        record_call_start(f"full-{i}")
    production_monitor.health_checker._cache = None
    readiness = await monitoring.get_readiness()
    assert readiness["ready"] is False and "capacity" in readiness["failing_checks"]
    assert monitoring.get_liveness()["status"] == "alive"


def test_usage_adds_up_in_metrics_and_exposition_and_ignores_odd_amounts() -> None:
    record_usage(call_id="u-1", llm_prompt_tokens=1200, llm_completion_tokens=300,
                 tts_characters=450, stt_audio_seconds=12.5, cost_usd=0.0123)
    record_usage(call_id="u-1", llm_prompt_tokens=800, cost_usd=0.0077)
    record_usage(llm_prompt_tokens=-5, tts_characters=float("nan"), cost_usd=float("inf"),
                 stt_audio_seconds="lots")  # type: ignore[arg-type]
    record_usage(call_id={"unhashable": 1}, tts_characters=50)  # type: ignore[arg-type]
    assert get_metrics()["usage"] == {
        "llm_prompt_tokens": 2000, "llm_completion_tokens": 300, "tts_characters": 500,
        "stt_audio_seconds": 12.5, "cost_usd": 0.02}
    assert production_monitor.call_usage("u-1") == {
        "llm_prompt_tokens": 2000.0, "llm_completion_tokens": 300.0, "tts_characters": 450.0,
        "stt_audio_seconds": 12.5, "cost_usd": pytest.approx(0.02)}
    assert production_monitor.call_usage("unknown") is None
    samples = _samples()
    assert samples[("callwatch_llm_prompt_tokens_total", ())] == 2000
    assert samples[("callwatch_cost_usd_total", ())] == pytest.approx(0.02)
    assert samples[("callwatch_stt_audio_seconds_total", ())] == 12.5


def test_call_listeners_hear_starts_and_ends_and_cannot_break_recording() -> None:
    heard: list[tuple[object, ...]] = []

    def on_start(call_id: object) -> None:
        heard.append(("start", call_id))

    def on_end(call_id: object, duration: float | None, success: bool) -> None:
        heard.append(("end", call_id, duration, success))

    def broken(*args: object) -> None:
        raise RuntimeError("listener bug")

    production_monitor.add_call_listener(on_start, on_end)
    production_monitor.add_call_listener(broken, broken)
    try:
        with capture_logs() as records:
            record_call_start("l-1")
            record_call_end("l-1", 3.5, success=False)
            record_call_end("l-2")  # an end without a start: no duration known
    finally:
        assert production_monitor.remove_call_listener(on_start, on_end)
        assert production_monitor.remove_call_listener(broken, broken)
    assert heard == [("start", "l-1"), ("end", "l-1", 3.5, False), ("end", "l-2", None, True)]
    assert get_metrics()["calls"]["failed_calls"] == 1
    assert any(r["message"] == "Call listener failed" for r in records)
    record_call_start("l-3")
    assert len(heard) == 3 and not production_monitor.remove_call_listener(on_start, on_end)


class _Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


def test_recording_never_raises_on_odd_arguments() -> None:
    odd: list[object] = [{"a": 1}, ["x"], _Hostile(), None, 3.5]
    for value in odd:
        record_call_start(value)  # type: ignore[arg-type]
        record_call_end(value, duration_sec=value, success=True)  # type: ignore[arg-type]
        record_response_time(value)  # type: ignore[arg-type]
        record_error(value, value, value)  # type: ignore[arg-type]
        record_error("T", "m", {"call_id": value, value if isinstance(value, str) else "k": value})
        record_usage(call_id=value, cost_usd=value)  # type: ignore[arg-type]
        with perf_timer(value):  # type: ignore[arg-type]
            pass
    metrics = get_metrics()
    calls = metrics["calls"]
    assert calls["total_calls"] == calls["successful_calls"] + calls["failed_calls"] + calls[
        "active_calls"]
    assert calls["successful_calls"] == len(odd)
    assert metrics["errors"]["total_errors"] == 2 * len(odd)
    assert _samples()[("callwatch_calls_started_total", ())] == len(odd)


def test_error_types_call_ids_and_operation_names_are_redacted_and_bounded() -> None:
    token = "Bearer eyJhbGciOiJIUzI1NiJ9secretpayload"
    record_error(f"DB_ERROR {token}", "boom", {"call_id": f"call {token} " + "x" * 5000})
    with perf_timer(f"llm {token}"):
        pass
    metrics = get_metrics()
    text = prometheus_exposition()[0].decode()
    for shown in (str(metrics), text):
        assert "eyJhbGciOiJIUzI1NiJ9secretpayload" not in shown
    assert len(metrics["errors"]["recent_errors"][0]["call_id"]) <= 200
    assert any(key.startswith("DB_ERROR") for key in metrics["errors"]["errors_by_type"])


def test_pii_in_error_messages_and_context_is_masked_when_asked(log_dir: Path) -> None:
    callwatch.configure(log_dir=log_dir, console=False, redact_pii=True)
    try:
        record_error("CRM", "caller jane.doe@example.com asked", {"email": "jane.doe@example.com"})
        shown = str(get_metrics()["errors"]["recent_errors"])
        assert "jane.doe@example.com" not in shown
    finally:
        callwatch.configure(log_dir=log_dir, console=False)


def test_many_timer_names_sharing_a_long_prefix_keep_a_bounded_map() -> None:
    from callwatch._metrics import operations

    prefix = "p" * 100
    for i in range(100_000):
        operations.observe(f"{prefix}{i}", 1.0)
    assert len(operations._by_name) <= operations.MAX_NAMES
    assert get_metrics()["performance"][prefix]["count"] == 100_000


def test_logging_internal_errors_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(STATS, "internal_errors", 3)
    assert get_metrics()["logging"]["internal_errors"] == 3
    assert _samples()[("callwatch_log_internal_errors_total", ())] == 3


def test_an_unusable_metrics_directory_leaves_a_working_lone_process(log_dir: Path) -> None:
    blocker = log_dir.parent / "not-a-directory"
    blocker.write_text("a file where the metrics directory should be")
    callwatch.configure(log_dir=log_dir, console=False, prometheus_multiproc_dir=blocker)
    try:
        assert production_monitor.fleet is None
        record_call_start("x")
        record_call_end("x", 1.0)
        assert get_metrics()["calls"]["successful_calls"] == 1
        callwatch._runtime.flush()
        logged = "".join(p.read_text() for p in (log_dir / "app").glob("*.log"))
        assert "cannot be used; this worker reports only itself" in logged
    finally:
        callwatch.configure(log_dir=log_dir, console=False)
