"""record_turn: one record per turn, in performance/ and app/, feeding the percentiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import callwatch
from callwatch import monitoring
from callwatch.logger import set_call_id
from callwatch.monitoring import get_metrics, production_monitor, record_turn
from tests.helpers import read_records


@pytest.fixture(autouse=True)
def fresh(log_dir: Path) -> Iterator[None]:
    production_monitor.reset()
    yield
    production_monitor.reset()


def test_turn_is_one_record_in_performance_and_app(log_dir: Path) -> None:
    record_turn(
        "c-7",
        2,
        812.5,
        interrupted=True,
        stages={"llm": {"ttfb_ms": 310.25, "prompt_tokens": 90, "model": "m"},
                "tts": {"ttfb_ms": 120.0, "characters": 41}},
        caller="+15550100",
    )
    for folder in ("performance", "app"):
        (record,) = [r for r in read_records(log_dir, folder) if r["message"] == "turn"]
        assert record["call_id"] == "c-7"
        extra = record["extra"]
        assert extra["turn"] == 2 and extra["turn_id"] == "c-7:2"
        assert extra["latency_ms"] == 812.5 and extra["interrupted"] is True
        assert extra["stages"] == {"llm": {"ttfb_ms": 310.25, "prompt_tokens": 90, "model": "m"},
                                   "tts": {"ttfb_ms": 120.0, "characters": 41}}
        assert extra["caller"] == "+15550100"


def test_turn_feeds_response_time_and_stage_histograms() -> None:
    record_turn("c-1", 1, 400.0, stages={"llm": {"ttfb_ms": 300.0}, "stt": {"ttfb_ms": 80.0}})
    record_turn("c-1", 2, 600.0, stages={"llm": {"ttfb_ms": 500.0, "prompt_tokens": 12}})
    metrics = get_metrics()
    assert metrics["calls"]["average_response_time_ms"] == 500.0
    perf = metrics["performance"]
    assert perf["llm_ttfb"]["count"] == 2 and perf["llm_ttfb"]["max_ms"] == 500.0
    assert perf["stt_ttfb"]["count"] == 1
    assert "llm_prompt" not in perf and "llm_prompt_tokens" not in perf


def test_turn_without_audio_has_no_latency_and_no_response_time(log_dir: Path) -> None:
    record_turn("c-2", 1, None)
    assert get_metrics()["calls"]["average_response_time_ms"] == 0
    (record,) = [r for r in read_records(log_dir, "performance") if r["message"] == "turn"]
    assert record["extra"]["latency_ms"] is None
    assert record["extra"]["stages"] == {}


def test_turn_names_its_own_call_and_leaves_the_context_alone(log_dir: Path) -> None:
    set_call_id("other-call")
    try:
        record_turn("c-3", 1, 100.0)
        assert callwatch.logger.get_call_id() == "other-call"
    finally:
        set_call_id(None)
    (record,) = [r for r in read_records(log_dir, "performance") if r["message"] == "turn"]
    assert record["call_id"] == "c-3"


def test_bad_figures_are_left_out_and_never_raise(log_dir: Path) -> None:
    record_turn("c-4", 1, float("nan"), stages={"llm": {"ttfb_ms": float("inf"), "x": object()}})
    (record,) = [r for r in read_records(log_dir, "performance") if r["message"] == "turn"]
    assert record["extra"]["latency_ms"] is None
    assert record["extra"]["stages"] == {"llm": {}}


def test_record_turn_is_public() -> None:
    assert "record_turn" in monitoring.__all__
    assert callwatch.record_turn is record_turn
