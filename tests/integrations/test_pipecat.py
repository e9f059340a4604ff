"""CallwatchObserver on a real Pipecat pipeline, run by Pipecat's own worker and runner.

The STT, LLM and TTS are hand-written FrameProcessors that report TTFB,
processing time and usage through Pipecat's metrics API. Token and character
counts must arrive exactly; latencies within a stated tolerance.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import callwatch
from tests.helpers import read_records
from tests.integrations.conftest import need_package

need_package("pipecat.pipeline.worker", "pipecat")

from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver  # noqa: E402

from callwatch.alerting import alert_manager  # noqa: E402
from callwatch.cli.demo.pipecat_agent import Reply, Transcript, run_call  # noqa: E402
from callwatch.integrations import loguru as loguru_bridge  # noqa: E402
from callwatch.integrations.pipecat import CallwatchObserver  # noqa: E402
from callwatch.monitoring import get_metrics  # noqa: E402

# Scheduling jitter on a shared 2-core machine; the stage sleeps are 40-80 ms.
TOLERANCE_MS = 500.0
STT_SEC, LLM_SEC, TTS_SEC, SPEECH_SEC = 0.04, 0.08, 0.05, 0.12
STOP_SECS = 0.2


class FixedServices:
    """Stages that take fixed times and report fixed usage."""

    def __init__(self, fail_llm_on_turn: int | None = None, llm_sec: float = LLM_SEC) -> None:
        self.fail_llm_on_turn = fail_llm_on_turn
        self.llm_sec = llm_sec
        self.turns = 0
        self.alerts_while_answering: list[list[dict[str, Any]]] = []

    async def transcribe(self, turn: int) -> Transcript:
        await asyncio.sleep(STT_SEC)
        return Transcript(f"question {turn}", audio_seconds=1.25)

    async def respond(self, text: str) -> Reply:
        self.turns += 1
        await asyncio.sleep(self.llm_sec)
        self.alerts_while_answering.append(alert_manager.active_alerts())
        if self.turns == self.fail_llm_on_turn:
            raise ConnectionError("language model returned 503")
        return Reply(f"answer to {text}", prompt_tokens=100 + self.turns, completion_tokens=7)

    async def synthesize(self, text: str) -> None:
        await asyncio.sleep(TTS_SEC)

    def speech_sec(self, text: str) -> float:
        return SPEECH_SEC


def _turns(log_dir: Path, call_id: str | None = None) -> list[dict[str, Any]]:
    return [r for r in read_records(log_dir, "performance")
            if r["message"] == "turn" and (call_id is None or r["call_id"] == call_id)]


def _one(log_dir: Path, message: str, call_id: str, folder: str = "app") -> dict[str, Any]:
    (record,) = [r for r in read_records(log_dir, folder)
                 if r["message"] == message and r["call_id"] == call_id]
    return record


async def test_a_call_records_turns_stages_usage_and_end(log_dir: Path) -> None:
    observer = CallwatchObserver(call_id="pc-1", caller="+15550100")
    pipecat_latency = UserBotLatencyObserver()
    measured: list[float] = []

    @pipecat_latency.event_handler("on_latency_measured")
    async def _measured(_observer: Any, seconds: float) -> None:
        measured.append(seconds * 1000.0)

    await run_call(FixedServices(), [observer, pipecat_latency], turns=3,
                   speech_sec=SPEECH_SEC, stop_secs=STOP_SECS, cut_in={2})

    turns = _turns(log_dir)
    assert [t["extra"]["turn"] for t in turns] == [1, 2, 3]
    assert {t["call_id"] for t in turns} == {"pc-1"}
    assert [t["extra"]["turn_id"] for t in turns] == ["pc-1:1", "pc-1:2", "pc-1:3"]
    # Only the answer the caller cut into is interrupted: the last one was heard to its end.
    assert [t["extra"]["interrupted"] for t in turns] == [False, True, False]
    # The same latency Pipecat's own UserBotLatencyObserver measures. Each observer gets
    # the frame in its own task, so on a loaded machine they read the clock a few
    # milliseconds apart; a turn measured from the VAD's decision instead of the user's
    # real silence would be STOP_SECS (200 ms) off.
    assert len(measured) == 3
    for turn, theirs in zip(turns, measured, strict=True):
        assert turn["extra"]["latency_ms"] == pytest.approx(theirs, abs=STOP_SECS * 1000 / 4)
        expected = (STOP_SECS + STT_SEC + LLM_SEC + TTS_SEC) * 1000.0
        assert expected - 5.0 <= turn["extra"]["latency_ms"] <= expected + 4 * TOLERANCE_MS
    stages = turns[0]["extra"]["stages"]
    assert stages["llm"]["prompt_tokens"] == 101 and stages["llm"]["completion_tokens"] == 7
    assert stages["llm"]["model"] == "simulated-llm"
    assert stages["llm"]["service"] == "SimulatedLLMService"
    assert stages["tts"]["characters"] == len("answer to question 1")
    assert stages["stt"]["audio_seconds"] == 1.25
    for stage, seconds in (("stt", STT_SEC), ("llm", LLM_SEC), ("tts", TTS_SEC)):
        assert seconds * 1000 - 1 <= stages[stage]["ttfb_ms"] <= seconds * 1000 + TOLERANCE_MS
    assert stages["llm"]["processing_ms"] >= LLM_SEC * 1000 - 1
    assert turns[0]["extra"]["caller"] == "+15550100"

    ended = _one(log_dir, "Call ended", "pc-1")["extra"]
    assert ended["success"] is True and ended["turns"] == 3
    assert ended["usage"]["llm_prompt_tokens"] == 101 + 102 + 103
    assert ended["usage"]["llm_completion_tokens"] == 21
    assert ended["usage"]["tts_characters"] == sum(
        len(f"answer to question {n}") for n in (1, 2, 3))
    assert ended["usage"]["stt_audio_seconds"] == 3.75
    audit = _one(log_dir, "Call completed", "pc-1", "audit")
    assert audit["extra"]["success"] is True and audit["extra"]["turns"] == 3

    metrics = get_metrics()
    assert metrics["usage"]["llm_prompt_tokens"] == 306
    assert metrics["usage"]["tts_characters"] == ended["usage"]["tts_characters"]
    assert metrics["calls"]["successful_calls"] == 1 and metrics["calls"]["active_calls"] == 0
    assert metrics["performance"]["llm_ttfb"]["count"] == 3
    assert metrics["performance"]["tts_ttfb"]["count"] == 3


async def test_usage_is_priced_from_the_price_file(
    log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text("[llm.default]\ninput_per_mtok = 1000.0\noutput_per_mtok = 2000.0\n"
                      '[llm."simulated-llm"]\ninput_per_mtok = 10000.0\noutput_per_mtok = 0\n'
                      "[tts.default]\nper_1k_chars = 100.0\n[stt.default]\nper_minute = 6.0\n")
    monkeypatch.setenv("CALLWATCH_PRICES_FILE", str(prices))
    callwatch.configure(log_dir=log_dir, console=False, environment="production")
    await run_call(FixedServices(), [CallwatchObserver(call_id="pc-cost")], turns=1,
                   speech_sec=SPEECH_SEC, stop_secs=STOP_SECS)
    # The model's own rates win over the default; 101 prompt tokens, 20 characters, 1.25 s.
    expected = 101 * 10000.0 / 1e6 + 20 * 100.0 / 1000 + 1.25 / 60 * 6.0
    ended = _one(log_dir, "Call ended", "pc-cost")["extra"]
    assert ended["cost_usd"] == pytest.approx(expected)
    assert _one(log_dir, "Call completed", "pc-cost", "audit")["extra"]["cost_usd"] == (
        pytest.approx(expected))
    assert get_metrics()["usage"]["cost_usd"] == pytest.approx(expected)


async def test_a_turn_over_budget_alerts_while_the_caller_waits(log_dir: Path) -> None:
    callwatch.configure(log_dir=log_dir, console=False, environment="production",
                        turn_budget_ms=300.0)
    slow = FixedServices(llm_sec=0.45)
    await asyncio.gather(
        run_call(slow, [CallwatchObserver(call_id="pc-slow")], turns=2,
                 speech_sec=SPEECH_SEC, stop_secs=0.0),
        run_call(FixedServices(), [CallwatchObserver(call_id="pc-quick")], turns=1,
                 speech_sec=SPEECH_SEC, stop_secs=0.0),
    )
    # Fired during the turn: already active while the LLM was still answering.
    (alert,) = slow.alerts_while_answering[0]
    assert alert["labels"]["call_id"] == "pc-slow" and alert["labels"]["service"] == "llm"
    assert alert["severity"] == "warning" and alert["threshold"] == 300.0
    # Once per call and service, however many of its turns are late; none for the quick call.
    sent = [a for a in alert_manager.history() if a["status"] == "firing"]
    assert [a["labels"]["call_id"] for a in sent] == ["pc-slow"]


async def test_a_failing_service_fails_the_call_with_its_error(log_dir: Path) -> None:
    observer = CallwatchObserver(call_id="pc-err")
    await run_call(FixedServices(fail_llm_on_turn=2), [observer], turns=3,
                   speech_sec=SPEECH_SEC, stop_secs=STOP_SECS)
    metrics = get_metrics()
    assert metrics["calls"]["failed_calls"] == 1
    assert metrics["errors"]["errors_by_type"] == {"ConnectionError": 1}
    (recent,) = metrics["errors"]["recent_errors"]
    assert recent["call_id"] == "pc-err" and "503" in recent["message"]
    ended = _one(log_dir, "Call ended", "pc-err")["extra"]
    assert ended["success"] is False and ended["reason"].startswith("cancelled")
    # Turn 1 was answered; turn 2's caller was left waiting when the call ended.
    turns = _turns(log_dir, "pc-err")
    assert [t["extra"]["turn"] for t in turns] == [1, 2]
    assert turns[1]["extra"]["latency_ms"] is None and turns[1]["extra"]["answered"] is False
    assert _one(log_dir, "Call failed", "pc-err", "audit")["extra"]["success"] is False


async def test_concurrent_calls_never_mix_their_ids(log_dir: Path) -> None:
    callwatch.configure(log_dir=log_dir, console=False, environment="production",
                        log_level="DEBUG")
    loguru_bridge.install()
    try:
        await asyncio.gather(*(
            run_call(FixedServices(), [CallwatchObserver(call_id=f"pc-par-{n}", caller=str(n))],
                     turns=2, speech_sec=SPEECH_SEC, stop_secs=STOP_SECS)
            for n in range(3)
        ))
    finally:
        loguru_bridge.uninstall()
    # Pipecat's own log lines, through loguru, carry the call they were logged in.
    usage_lines = [r for r in read_records(log_dir, "app")
                   if r["logger"].startswith("pipecat.") and "usage characters" in r["message"]]
    assert sorted(r["call_id"] for r in usage_lines) == sorted(
        f"pc-par-{n}" for n in range(3) for _turn in range(2))
    for n in range(3):
        call_id = f"pc-par-{n}"
        turns = _turns(log_dir, call_id)
        assert [t["extra"]["turn_id"] for t in turns] == [f"{call_id}:1", f"{call_id}:2"]
        assert {t["extra"]["caller"] for t in turns} == {str(n)}
        ended = _one(log_dir, "Call ended", call_id)
        assert ended["extra"]["caller"] == str(n)
        assert ended["extra"]["usage"]["llm_prompt_tokens"] == 101 + 102
    assert get_metrics()["calls"]["successful_calls"] == 3


def test_a_call_id_is_generated_when_none_is_given() -> None:
    first, second = CallwatchObserver(), CallwatchObserver()
    assert first.call_id.startswith("pipecat-") and first.call_id != second.call_id
