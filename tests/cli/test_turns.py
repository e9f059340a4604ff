"""``callwatch trace``'s turn table, from turn records callwatch itself wrote."""

from __future__ import annotations

from pathlib import Path

import orjson

from callwatch import _runtime
from callwatch.monitoring import record_turn
from tests.cli.conftest import run_cli


def _two_turns() -> None:
    record_turn("tr-1", 1, 512.25, stages={
        "stt": {"ttfb_ms": 90.0}, "llm": {"ttfb_ms": 310.5, "prompt_tokens": 812,
                                           "completion_tokens": 41},
        "tts": {"ttfb_ms": 101.0, "characters": 166}})
    record_turn("tr-1", 2, 1433.0, interrupted=True, stages={"llm": {"ttfb_ms": 1200.0}})
    record_turn("tr-2", 1, 99.0)
    _runtime.flush()


def test_json_lists_the_turns_once_each_in_order(log_dir: Path) -> None:
    _two_turns()
    result = run_cli("trace", "tr-1", "--log-dir", log_dir, "--json")
    assert result.returncode == 0, result.stderr
    turns = orjson.loads(result.stdout)["turns"]
    assert [t["turn_id"] for t in turns] == ["tr-1:1", "tr-1:2"]
    assert turns[0]["latency_ms"] == 512.25 and turns[0]["interrupted"] is False
    assert turns[0]["stages"]["llm"]["prompt_tokens"] == 812
    assert turns[1]["interrupted"] is True


def test_the_table_shows_latency_stage_times_tokens_and_interruptions(log_dir: Path) -> None:
    _two_turns()
    result = run_cli("trace", "tr-1", "--log-dir", log_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "latency ms" in line)
    first, second = lines[header + 1].split(), lines[header + 2].split()
    assert first == ["1", "512.2", "90.0", "310.5", "101.0", "812/41", "166"]
    assert second == ["2", "1433.0", "-", "1200.0", "-", "-", "-", "interrupted"]
