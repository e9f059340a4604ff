"""LiveKit Agents: ``instrument_session(session, call_id)`` before ``session.start(...)``.

Only the session's current events are used (``metrics_collected`` is
deprecated in LiveKit Agents 1.x and left alone):

* ``conversation_item_added`` with an assistant ``ChatMessage``: one turn, its
  latency ``metrics["e2e_latency"]`` (user stopped speaking → agent began
  speaking), ``interrupted`` from the message, and its stages from the metrics
  (``llm_node_ttft``, ``tts_node_ttfb``, and the user message's
  ``transcription_delay`` and ``end_of_turn_delay``);
* ``session_usage_updated``: the session's running totals, counted as they
  grow (tokens, characters, audio seconds) and priced into cost;
* ``user_state_changed``/``agent_state_changed``: the live latency budget,
  armed when the user stops speaking and cleared when the agent speaks;
* ``agent_false_interruption``, ``error`` (unrecoverable ones fail the call)
  and ``close`` with its reason, which ends the call.

The call starts when the session does (its agent leaves ``initializing``),
inside LiveKit's ``agent_session`` span when LiveKit traces: callwatch's
``call`` span is its child. The call id is bound from ``instrument_session``
until then, so the tasks the session starts inherit it, and every LiveKit span
of the session carries the ``call_id`` (:mod:`callwatch._otel.joining`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from livekit.agents import AgentSession, telemetry
from livekit.agents.llm import ChatMessage
from livekit.agents.metrics import LLMModelUsage, STTModelUsage, TTSModelUsage
from livekit.agents.voice.events import (
    AgentFalseInterruptionEvent,
    AgentStateChangedEvent,
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    ErrorEvent,
    SessionUsageUpdatedEvent,
    UserStateChangedEvent,
)

from callwatch.context import bind_call
from callwatch.integrations._call import CallRecorder, log

__all__ = ["instrument_session"]

# MetricsReport key (seconds) -> (stage, figure in ms)
_ASSISTANT_FIGURES = {"llm_node_ttft": ("llm", "ttfb_ms"), "tts_node_ttfb": ("tts", "ttfb_ms")}
_USER_FIGURES = {
    "transcription_delay": ("stt", "ttfb_ms"),
    "end_of_turn_delay": ("stt", "end_of_turn_delay_ms"),
}
_METADATA = {"llm_metadata": "llm", "tts_metadata": "tts", "stt_metadata": "stt"}


def instrument_session(session: AgentSession[Any], call_id: str, **fields: Any) -> CallRecorder:
    """Record ``session`` as call ``call_id``: its start, turns, usage, errors, end at close."""
    watcher = _SessionWatcher(CallRecorder(str(call_id), fields))
    _join_livekit_spans()
    session.on("conversation_item_added", watcher.item_added)
    session.on("session_usage_updated", watcher.usage_updated)
    session.on("user_state_changed", watcher.user_state)
    session.on("agent_state_changed", watcher.agent_state)
    session.on("agent_false_interruption", watcher.false_interruption)
    session.on("error", watcher.error)
    session.on("close", watcher.close)
    if session.agent_state == "initializing":  # not started yet: its tasks will inherit the id
        watcher.bind_until_started()
    else:
        watcher.started()
    return watcher.call


def _join_livekit_spans() -> None:
    """Stamp the call id on LiveKit's spans: its own provider, else the global one."""
    from opentelemetry import trace  # noqa: PLC0415 - a dependency of livekit-agents

    from callwatch._otel import joining  # noqa: PLC0415

    # LiveKit's tracer keeps the provider given to telemetry.set_tracer_provider().
    if not joining.join(getattr(telemetry.tracer, "_tracer_provider", None)):
        joining.join(trace.get_tracer_provider())


class _SessionWatcher:
    """Turns one session's events into the call's records."""

    def __init__(self, call: CallRecorder) -> None:
        self.call = call
        self._seen: dict[tuple[str, str, str], tuple[float, float]] = {}
        self._user_metrics: dict[str, Any] = {}
        self._stages: dict[str, dict[str, Any]] = {}
        self._agent_state = "initializing"
        self._binding: bind_call | None = None

    def bind_until_started(self) -> None:
        """Bind the call id until the session starts: the tasks it starts inherit it."""
        self._binding = self.call.bound()
        self._binding.__enter__()

    def item_added(self, event: ConversationItemAddedEvent) -> None:
        item = event.item
        if not isinstance(item, ChatMessage):
            return
        metrics: dict[str, Any] = dict(item.metrics)
        if item.role == "user":
            self._user_metrics = metrics
            return
        if item.role != "assistant":
            return
        stages, self._stages = self._stages, {}
        _figures(stages, self._user_metrics, _USER_FIGURES)
        _figures(stages, metrics, _ASSISTANT_FIGURES)
        for key, stage in _METADATA.items():
            model = (metrics.get(key) or {}).get("model_name")
            if model and stage in stages:
                stages[stage].setdefault("model", str(model))
        self._user_metrics = {}
        e2e = metrics.get("e2e_latency")
        latency_ms = e2e * 1000.0 if isinstance(e2e, int | float) else None
        self.call.turn(latency_ms, interrupted=bool(item.interrupted), stages=stages)

    def usage_updated(self, event: SessionUsageUpdatedEvent) -> None:
        """The session reports running totals: count what grew since the last report."""
        for usage in event.usage.model_usage:
            if isinstance(usage, LLMModelUsage):
                first, second = self._grown(usage, usage.input_tokens, usage.output_tokens)
                self.call.add_usage("llm", usage.model, prompt_tokens=int(first),
                                    completion_tokens=int(second))
                self._stage_add("llm", usage.model, prompt_tokens=int(first),
                                completion_tokens=int(second))
            elif isinstance(usage, TTSModelUsage):
                first, _ = self._grown(usage, usage.characters_count, 0)
                self.call.add_usage("tts", usage.model, characters=int(first))
                self._stage_add("tts", usage.model, characters=int(first))
            elif isinstance(usage, STTModelUsage):
                first, _ = self._grown(usage, usage.audio_duration, 0)
                self.call.add_usage("stt", usage.model, audio_seconds=first)
                self._stage_add("stt", usage.model, audio_seconds=first)

    def _grown(self, usage: Any, first: float, second: float) -> tuple[float, float]:
        key = (usage.type, usage.provider, usage.model)
        before = self._seen.get(key, (0.0, 0.0))
        self._seen[key] = (first, second)
        return max(0.0, first - before[0]), max(0.0, second - before[1])

    def _stage_add(self, stage: str, model: str, **amounts: float) -> None:
        entry = self._stages.setdefault(stage, {})
        if model:
            entry.setdefault("model", model)
        for name, value in amounts.items():
            entry[name] = entry.get(name, 0) + value

    def user_state(self, event: UserStateChangedEvent) -> None:
        if event.old_state == "speaking" and event.new_state == "listening":
            self.call.budget.start(self.call.turns + 1, self._waiting_on)
        elif event.new_state == "speaking":
            self.call.budget.stop()

    def agent_state(self, event: AgentStateChangedEvent) -> None:
        if event.old_state == "initializing" and not self.call.started:
            self.started()
        self._agent_state = event.new_state
        if event.new_state == "speaking":
            self.call.budget.stop()

    def started(self) -> None:
        """The session started, in the task that started it: inside its span, if traced."""
        self.call.start(framework="livekit")
        binding, self._binding = self._binding, None
        if binding is not None:
            with contextlib.suppress(ValueError, RuntimeError):  # set in another task's context
                binding.__exit__(None, None, None)

    def _waiting_on(self) -> str:
        return "llm" if self._agent_state == "thinking" else "stt"

    def false_interruption(self, event: AgentFalseInterruptionEvent) -> None:
        with self.call.bound():
            log.info("Agent false interruption", extra={"resumed": event.resumed})

    def error(self, event: ErrorEvent) -> None:
        error = event.error
        cause = getattr(error, "error", None)
        recoverable = getattr(error, "recoverable", True)
        source = event.source
        self.call.error(
            type(cause).__name__ if isinstance(cause, BaseException) else type(error).__name__,
            str(cause if cause is not None else error),
            fatal=not recoverable,
            source=type(source).__name__,
            model=str(getattr(source, "model", "") or "") or None,
        )

    def close(self, event: CloseEvent) -> None:
        failed = event.reason == CloseReason.ERROR or event.error is not None
        self.call.end(reason=str(event.reason.value), success=False if failed else None)


def _figures(
    stages: dict[str, dict[str, Any]], metrics: dict[str, Any],
    names: dict[str, tuple[str, str]],
) -> None:
    for key, (stage, figure) in names.items():
        value = metrics.get(key)
        if isinstance(value, int | float):
            stages.setdefault(stage, {})[figure] = value * 1000.0
