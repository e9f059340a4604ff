"""The simulated voice agent: calls of several turns, each turn STT → LLM → TTS.

Stage latencies are lognormal, as real speech and model services are: most
turns are quick, a few are slow. Rare failures raise the errors a real agent
meets (``STT_TIMEOUT``, ``LLM_ERROR``). During the slow episode the LLM takes
three times longer, which pushes the turn response time past the demo's alert
threshold until the episode ends.

The call handler is instrumented exactly as the guide's Complete Example.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from callwatch.alerting import check_and_alert
from callwatch.logger import audit_log, clear_context, log, perf_timer, set_call_id
from callwatch.monitoring import (
    get_metrics,
    record_call_end,
    record_call_start,
    record_error,
    record_response_time,
)

__all__ = [
    "AgentError",
    "CallResult",
    "LatencyModel",
    "handle_voice_call",
]

VOICE_BUDGET_MS = 800.0
_REPLIES = (
    "Sure, I can help with that.",
    "Your appointment is confirmed for Tuesday at ten.",
    "Let me check your balance for you.",
    "I have transferred you to the billing team.",
)


class AgentError(Exception):
    """A failure of one of the agent's services, named as the monitoring counts it."""

    error_type = "AGENT_ERROR"


class STTTimeoutError(AgentError):
    error_type = "STT_TIMEOUT"


class LLMError(AgentError):
    error_type = "LLM_ERROR"


@dataclass(frozen=True)
class LatencyModel:
    """Median milliseconds and spread of each stage, failure odds, and the slow episode."""

    started_at: float  # wall clock (time.time()) when the demo started, shared by all workers
    slow_at: float = 60.0
    slow_for: float = 40.0
    slow_factor: float = 3.0
    stt_ms: float = 200.0
    llm_ms: float = 320.0
    tts_ms: float = 100.0
    pause_ms: float = 900.0  # the caller speaking before each turn
    stt_timeout_odds: float = 0.003
    llm_error_odds: float = 0.002
    stt_timeout_ms: float = 1500.0

    def slow_now(self) -> bool:
        elapsed = time.time() - self.started_at
        return self.slow_at <= elapsed < self.slow_at + self.slow_for

    def sample(self, median_ms: float, sigma: float) -> float:
        """Seconds, lognormal around ``median_ms``."""
        return random.lognormvariate(math.log(median_ms), sigma) / 1000.0

    async def transcribe(self, turn: int) -> str:
        if random.random() < self.stt_timeout_odds:
            await asyncio.sleep(self.stt_timeout_ms / 1000.0)
            raise STTTimeoutError(
                f"speech recognition timed out after {self.stt_timeout_ms:.0f} ms"
            )
        await asyncio.sleep(self.sample(self.stt_ms, 0.3))
        return f"caller utterance {turn}"

    async def generate(self, text: str) -> str:
        median = self.llm_ms * (self.slow_factor if self.slow_now() else 1.0)
        await asyncio.sleep(self.sample(median, 0.4))
        if random.random() < self.llm_error_odds:
            raise LLMError("language model returned 503 Service Unavailable")
        return random.choice(_REPLIES)

    async def synthesize(self, reply: str) -> bytes:
        await asyncio.sleep(self.sample(self.tts_ms, 0.25))
        return reply.encode()


@dataclass(frozen=True)
class CallResult:
    call_id: str
    success: bool
    duration_sec: float
    turns: int
    error_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "success": self.success,
            "duration_sec": round(self.duration_sec, 3),
            "turns": self.turns,
            "error_type": self.error_type,
        }


async def handle_voice_call(
    call_id: str, caller: str, turns: int, model: LatencyModel
) -> CallResult:
    """One phone call, logged and measured as the guide's Complete Example does."""
    set_call_id(call_id)
    record_call_start(call_id)
    log.info("Call started", extra={"caller": caller, "planned_turns": turns})
    start_time = time.time()
    done = 0
    try:
        for turn in range(1, turns + 1):
            await asyncio.sleep(model.sample(model.pause_ms, 0.4))
            await _turn(call_id, turn, model)
            done = turn
        duration = time.time() - start_time
        log.info("Call completed successfully", extra={"duration_sec": duration, "turns": done})
        audit_log(
            "Call completed",
            call_id=call_id,
            caller=caller,
            duration_sec=duration,
            turns=done,
            success=True,
        )
        record_call_end(call_id, duration, success=True)
        return CallResult(call_id, True, duration, done)
    except AgentError as exc:
        log.exception("Call failed", extra={"turn": done + 1})
        record_error(
            error_type=exc.error_type,
            error_message=str(exc),
            context={"call_id": call_id, "caller": caller, "turn": done + 1},
        )
        duration = time.time() - start_time
        audit_log(
            "Call failed",
            call_id=call_id,
            caller=caller,
            duration_sec=duration,
            turns=done,
            success=False,
            error_type=exc.error_type,
        )
        record_call_end(call_id, duration, success=False)
        return CallResult(call_id, False, duration, done, exc.error_type)
    finally:
        clear_context()
        await check_and_alert(get_metrics())


async def _turn(call_id: str, turn: int, model: LatencyModel) -> None:
    """User stopped speaking → first agent audio: the response time the caller hears."""
    began = time.perf_counter()
    with perf_timer("stt_transcription", turn=turn):
        text = await model.transcribe(turn)
    with perf_timer("llm_generation", turn=turn):
        reply = await model.generate(text)
    with perf_timer("tts_synthesis", turn=turn):
        audio = await model.synthesize(reply)
    response_ms = (time.perf_counter() - began) * 1000.0
    record_response_time(response_ms, call_id=call_id)
    log.info(
        "Turn completed",
        extra={
            "turn": turn,
            "response_ms": round(response_ms, 1),
            "within_budget": response_ms <= VOICE_BUDGET_MS,
            "reply_chars": len(reply),
            "audio_bytes": len(audio),
        },
    )
