"""One call as an adapter records it: start, turns, usage and cost, errors, end.

The Pipecat and LiveKit adapters translate their framework's events into
these few calls; everything callwatch writes for a framework call is written
here, under the call's id, so both frameworks produce the same records.
"""

from __future__ import annotations

import re
import time
from typing import Any

from callwatch import _runtime
from callwatch._alerts.budget import TurnBudget
from callwatch._metrics.usage import USAGE_KEYS
from callwatch.context import bind_call
from callwatch.logger import audit_log, get_logger
from callwatch.monitoring import (
    production_monitor,
    record_call_end,
    record_call_start,
    record_error,
    record_turn,
    record_usage,
)

__all__ = ["CallRecorder", "log", "service_label"]

_FRACTIONAL = ("cost_usd", "stt_audio_seconds")
_INSTANCE_SUFFIX = re.compile(r"#\d+$")
_MAX_LABEL = 100

log = get_logger("callwatch.integrations")


def service_label(name: object) -> str:
    """A processor's name without its instance number: every call's ``XTTSService#12`` is one."""
    return _INSTANCE_SUFFIX.sub("", str(name))[:_MAX_LABEL] or "unknown"


class CallRecorder:
    """What callwatch records for one framework call; every record carries its call id."""

    def __init__(self, call_id: str, fields: dict[str, Any]) -> None:
        self.call_id = call_id
        self.fields = fields
        self.turns = 0
        self.failed = False
        self.started = False
        self.ended = False
        self._started_at = time.monotonic()
        self.budget = TurnBudget(call_id, _runtime.settings().turn_budget_ms)

    def bound(self) -> bind_call:
        """The call's id and fields bound for a block."""
        return bind_call(self.call_id, **self.fields)

    def start(self, **details: Any) -> None:
        if self.started:
            return
        self.started = True
        self._started_at = time.monotonic()
        record_call_start(self.call_id)
        with self.bound():
            log.info("Call started", extra=details)

    def add_usage(
        self,
        service: str,
        model: str | None,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        characters: int = 0,
        audio_seconds: float = 0.0,
    ) -> float:
        """Count usage for the call and the fleet, priced by the price file; returns its cost."""
        prices = _runtime.settings().prices
        cost = 0.0
        if prices is not None:
            if service == "llm":
                cost = prices.llm(model, prompt_tokens, completion_tokens)
            elif service == "tts":
                cost = prices.tts(model, characters)
            elif service == "stt":
                cost = prices.stt(model, audio_seconds)
        amounts = {
            "llm_prompt_tokens": prompt_tokens,
            "llm_completion_tokens": completion_tokens,
            "tts_characters": characters,
            "stt_audio_seconds": audio_seconds,
            "cost_usd": cost,
        }
        record_usage(call_id=self.call_id, **amounts)
        return cost

    def usage(self) -> dict[str, float]:
        """The call's usage so far (tokens and characters as whole numbers)."""
        counted = production_monitor.call_usage(self.call_id) or {}
        return {key: round(counted.get(key, 0.0), 6) if key in _FRACTIONAL
                else int(counted.get(key, 0.0)) for key in USAGE_KEYS}

    def turn(
        self, latency_ms: float | None, *, interrupted: bool,
        stages: dict[str, dict[str, Any]], **details: Any
    ) -> int:
        """Write the next turn's record; returns its number."""
        self.turns += 1
        with self.bound():
            record_turn(self.call_id, self.turns, latency_ms, interrupted=interrupted,
                        stages=stages, **details)
        return self.turns

    def error(self, error_type: str, message: str, *, fatal: bool, **context: Any) -> None:
        """A framework error: counted by type, logged, and fatal ones fail the call."""
        if fatal:
            self.failed = True
        record_error(error_type, message, {"call_id": self.call_id, "fatal": fatal, **context})
        with self.bound():
            log.error("Voice framework error",
                      extra={"error_type": error_type, "error": message, "fatal": fatal, **context})

    def end(self, *, reason: str | None = None, success: bool | None = None) -> None:
        """The call is over: its metrics, its ``Call ended`` record with cost, its audit record."""
        if self.ended:
            return
        self.ended = True
        self.budget.stop()
        ok = (not self.failed) if success is None else success
        duration = time.monotonic() - self._started_at
        if not self.started:
            record_call_start(self.call_id)
        record_call_end(self.call_id, duration, success=ok)
        usage = self.usage()
        summary = {"duration_sec": round(duration, 3), "success": ok, "reason": reason,
                   "turns": self.turns, "cost_usd": usage["cost_usd"], "usage": usage}
        with self.bound():
            log.info("Call ended", extra=summary)
            audit_log("Call completed" if ok else "Call failed", call_id=self.call_id,
                      duration_sec=summary["duration_sec"], success=ok, turns=self.turns,
                      cost_usd=usage["cost_usd"], reason=reason)
