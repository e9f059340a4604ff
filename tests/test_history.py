"""The per-minute history: what an on-call engineer sees of the past after a restart."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from callwatch import _history, alerting, monitoring
from callwatch._alerts.console import ConsoleHandler
from callwatch._history import HistoryRecorder, aggregate
from callwatch.logger import perf_timer

MINUTE = 60.0


def recorder_in(log_dir: Path, *, writer: bool = True, days: int = 7) -> HistoryRecorder:
    recorder = HistoryRecorder(is_writer=lambda: writer)
    recorder.directory = log_dir / "history"
    recorder.days = days
    return recorder


def a_minute_ago() -> float:
    return (time.time() // MINUTE - 1) * MINUTE


def calls(prefix: str, n: int, *, failed: int = 0, latency_ms: float = 450.0) -> None:
    for i in range(n):
        call_id = f"{prefix}-{i}"
        monitoring.record_call_start(call_id)
        monitoring.record_response_time(latency_ms, call_id=call_id)
        if i < failed:
            monitoring.record_error("LLM_ERROR", "model overloaded", {"call_id": call_id})
        monitoring.record_call_end(call_id, 12.0, success=i >= failed)


def test_a_minute_of_calls_becomes_one_point_on_disk(log_dir: Path) -> None:
    recorder = recorder_in(log_dir)
    start = time.time() - MINUTE
    in_flight = monitoring.get_metrics()["calls"]["active_calls"]  # left by other tests
    assert recorder.sample(start) is None  # the baseline
    calls("hist", 10, failed=2, latency_ms=450.0)
    monitoring.record_call_start("still-talking")
    with perf_timer("llm_generation"):
        pass
    end = time.time()
    point = recorder.sample(end)
    assert point is not None
    assert point["t"] == _history.stamp(round(end / MINUTE) * MINUTE - MINUTE)
    assert (point["calls"], point["ended"], point["failed"]) == (11, 10, 2)
    assert point["error_rate"] == 20.0
    assert point["turns"] == 10
    assert 400.0 <= point["p50_ms"] <= 450.0  # within the 400-500 ms bucket, never above the max
    assert point["p99_ms"] <= 450.0
    assert point["active_calls"] == in_flight + 1
    assert "llm_generation" in point["stages_p95_ms"]
    assert {"hist-0", "hist-1"} <= set(point["failed_calls"])
    files = list((log_dir / "history").glob("*.jsonl"))
    assert len(files) == 1
    assert [orjson.loads(line) for line in files[0].read_bytes().splitlines()] == [point]
    monitoring.record_call_end("still-talking", 1.0)


def test_the_history_outlives_the_recorder(log_dir: Path) -> None:
    first = recorder_in(log_dir)
    start = a_minute_ago() - 2 * MINUTE
    first.sample(start)
    calls("before-restart", 3)
    first.sample(start + MINUTE)
    calls("before-restart-2", 5)
    first.sample(start + 2 * MINUTE)
    restarted = recorder_in(log_dir)  # a new process: nothing in memory
    points = restarted.read(10)
    assert [p["calls"] for p in points] == [3, 5]
    assert [p["t"] for p in points] == [_history.stamp(start), _history.stamp(start + MINUTE)]
    assert restarted.read(1, now=start + 2 * MINUTE) == points[1:]


def test_only_the_writing_worker_writes(log_dir: Path) -> None:
    reader = recorder_in(log_dir, writer=False)
    start = a_minute_ago() - MINUTE
    reader.sample(start)
    calls("not-written", 2)
    point = reader.sample(start + MINUTE)
    assert point is not None and point["calls"] == 2  # it still measures, to take over at once
    assert not (log_dir / "history").exists()


async def test_an_alert_sent_in_the_minute_is_marked_on_its_point(log_dir: Path) -> None:
    alerting.alert_manager.unregister_handler("console")
    recorder = recorder_in(log_dir)
    now = time.time()
    recorder.sample(now - MINUTE)
    await alerting.send_alert("critical", "STT down", "no transcripts", "stt")
    point = recorder.sample(now + 1)
    alerting.alert_manager.reset()
    alerting.alert_manager.register_handler(ConsoleHandler())
    assert point is not None
    assert point["alerts_fired"] == 1
    assert [(a["status"], a["title"]) for a in point["alerts"]] == [("firing", "STT down")]


def test_old_days_are_pruned_to_the_horizon(log_dir: Path) -> None:
    recorder = recorder_in(log_dir, days=2)
    start = a_minute_ago() - 4 * 86400
    recorder.sample(start)
    recorder.sample(start + MINUTE)
    old = sorted((log_dir / "history").glob("*.jsonl"))
    assert len(old) == 1
    recorder.sample(start + 4 * 86400)
    recorder.sample(start + 4 * 86400 + MINUTE)
    kept = sorted((log_dir / "history").glob("*.jsonl"))
    assert old[0] not in kept and len(kept) == 1


def test_a_torn_last_line_does_not_swallow_the_next_point(log_dir: Path) -> None:
    recorder = recorder_in(log_dir)
    start = a_minute_ago() - MINUTE
    recorder.sample(start)
    day = time.strftime("%Y-%m-%d", time.gmtime(start + MINUTE))
    (log_dir / "history").mkdir()
    (log_dir / "history" / f"{day}.jsonl").write_bytes(b'{"t": "2026-01-01T00:0')  # a crash
    calls("after-crash", 4)
    recorder.sample(start + MINUTE)
    assert [p["calls"] for p in recorder_in(log_dir).read(10, now=start + MINUTE)] == [4]


def test_long_ranges_are_aggregated_counts_summed_latency_at_its_worst() -> None:
    points = [
        {"t": "2026-01-01T00:00:00Z", "calls": 3, "ended": 3, "failed": 0, "p95_ms": 500.0,
         "active_calls": 2, "stages_p95_ms": {"stt": 100.0}},
        {"t": "2026-01-01T00:01:00Z", "calls": 5, "ended": 4, "failed": 2, "p95_ms": 900.0,
         "active_calls": 7, "stages_p95_ms": {"stt": 80.0}},
        {"t": "2026-01-01T00:05:00Z", "calls": 1, "ended": 1, "failed": 0, "p95_ms": None,
         "active_calls": 1},
    ]
    merged = aggregate(points, 5)
    assert [p["t"] for p in merged] == ["2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"]
    first = merged[0]
    assert (first["calls"], first["failed"], first["error_rate"]) == (8, 2, 28.57)
    assert (first["p95_ms"], first["active_calls"], first["stages_p95_ms"]) == (900.0, 7, {"stt": 100.0})
    assert merged[1]["p95_ms"] is None
    assert aggregate(points, 1) == points


@pytest.mark.parametrize("days", ["0", "-3", "seven"])
def test_the_horizon_setting_is_validated(days: str) -> None:
    from callwatch.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="CALLWATCH_HISTORY_DAYS"):
        load_settings({"CALLWATCH_HISTORY_DAYS": days})
    assert load_settings({"CALLWATCH_HISTORY_DAYS": "30"}).history_days == 30
    assert load_settings({}).history_days == 7


def test_the_longest_and_failed_calls_of_a_minute_are_named(log_dir: Path) -> None:
    recorder = recorder_in(log_dir)
    monitor = monitoring.production_monitor
    monitor.add_call_listener(recorder.ended.on_start, recorder.ended.on_end)
    try:
        start = time.time() - MINUTE
        recorder.sample(start)
        for n in range(15):
            monitoring.record_call_start(f"long-{n}")
            monitoring.record_call_end(f"long-{n}", 10.0 + n, success=n != 3)
        point = recorder.sample(time.time())
    finally:
        monitor.remove_call_listener(recorder.ended.on_start, recorder.ended.on_end)
    assert point is not None
    assert [c["call_id"] for c in point["longest_calls"]] == [f"long-{n}" for n in range(14, 4, -1)]
    assert point["longest_calls"][0]["duration_sec"] == 24.0
    assert point["failed_calls"][0] == "long-3"
    merged = aggregate([point, {**point, "t": point["t"]}], 60)
    assert len(merged[0]["longest_calls"]) == 10


def test_calls_that_ended_in_other_workers_are_named_on_the_writers_minute(log_dir: Path) -> None:
    writer, other = recorder_in(log_dir), recorder_in(log_dir, writer=False)
    start = time.time() - MINUTE
    writer.sample(start)
    other.sample(start)
    other.ended.on_end("other-long", 300.0, success=True)
    other.ended.on_end("other-failed", 5.0, success=False)
    writer.ended.on_end("writer-long", 200.0, success=True)
    end = time.time()
    other.sample(end)  # the minute's notes may land before or after the writer's point
    writer.sample(end)
    (point,) = recorder_in(log_dir).read(5)
    assert [c["call_id"] for c in point["longest_calls"]][:3] == [
        "other-long", "writer-long", "other-failed"]
    assert "other-failed" in point["failed_calls"]
    # The writer's figures, untouched by the note: no call started in that minute.
    assert (point["calls"], point["ended"]) == (0, 0) and "worker" not in point
