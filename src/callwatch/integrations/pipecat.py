"""Pipecat: ``PipelineWorker(pipeline, observers=[CallwatchObserver(call_id="c-1")])``.

Everything comes from the pipeline's own frames:

* ``StartFrame`` starts the call; ``EndFrame``/``CancelFrame`` (a hang-up, a
  client disconnect) end it, successfully unless a fatal ``ErrorFrame`` (or an
  error that left its processor unusable) was seen.
* A turn runs from the user's real end of speech (``VADUserStoppedSpeakingFrame``
  time minus its ``stop_secs``, as Pipecat's ``UserBotLatencyObserver`` measures)
  to ``BotStartedSpeakingFrame``. It is ``interrupted`` only when the user starts
  speaking, or the call ends, while the bot is still speaking; an answer heard
  to its end is complete, the call's last one too.
* ``MetricsFrame`` TTFB and processing times become the turn's stage figures and
  histograms (``llm_ttfb``, ``tts_ttfb``, …); usage metrics count tokens,
  characters and audio seconds for the call and the fleet, priced into cost.
* ``ErrorFrame`` goes to ``record_error`` with the call id.

The observer binds the call id into the pipeline's tasks as they are set up,
so Pipecat's own log lines (see :mod:`callwatch.integrations.loguru`) carry it.
With Pipecat's tracing on (``enable_tracing=True``), the call joins Pipecat's
trace: Pipecat's conversation span is opened under the call as the pipeline
starts (by Pipecat's own observer, which opens it once), callwatch's ``call``
span becomes its child, and every Pipecat span of the pipeline carries the
``call_id`` (:mod:`callwatch._otel.joining`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    MetricsFrame,
    StartFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import (
    LLMUsageMetricsData,
    MetricsData,
    ProcessingMetricsData,
    STTUsageMetricsData,
    TTFBMetricsData,
    TTSUsageMetricsData,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection

from callwatch.context import bind_call
from callwatch.integrations._call import CallRecorder, service_label

__all__ = ["CallwatchObserver"]

# Pipecat's own default for a bot that pauses and goes on within one answer.
TURN_END_TIMEOUT_SECS = 2.5
_SERVICE_BASES = {"STTService": "stt", "LLMService": "llm", "TTSService": "tts"}
_FIRST_ONLY = ("ttfb_ms",)


class CallwatchObserver(BaseObserver):
    """Records one Pipecat call: its start and end, turns, stages, usage, cost and errors.

    ``call_id`` defaults to a new id (Pipecat exposes no conversation id to
    observers); ``fields`` (``caller="+1555…"``) go on every record of the call.
    """

    def __init__(
        self,
        call_id: str | None = None,
        *,
        turn_end_timeout_secs: float = TURN_END_TIMEOUT_SECS,
        **fields: Any,
    ) -> None:
        super().__init__(observe_every_push=False)
        self.call_id = str(call_id) if call_id is not None else f"pipecat-{uuid.uuid4().hex}"
        self.call = CallRecorder(self.call_id, fields)
        self._turn_end_timeout = turn_end_timeout_secs
        self._binding: bind_call | None = None
        self._user_stopped_at: float | None = None  # wall clock, as Pipecat's frames
        self._vad_stop_seen = False
        self._answer: tuple[float | None, bool] | None = None  # (latency_ms, answered)
        self._bot_speaking = False
        self._transcribed = False
        self._stages: dict[str, dict[str, Any]] = {}
        self._conclude_timer: asyncio.TimerHandle | None = None

    # -- Pipecat's observer hooks ---------------------------------------------------------

    async def setup(self, task_manager: Any) -> None:
        await super().setup(task_manager)
        # Processors are set up (and create their tasks) after observers: they inherit this.
        self._binding = self.call.bound()
        self._binding.__enter__()

    async def cleanup(self) -> None:
        """The pipeline is torn down: end a call no EndFrame or CancelFrame ended."""
        self._cancel_conclude()
        if self.call.started and not self.call.ended:
            self._finish(reason="pipeline stopped")
        binding, self._binding = self._binding, None
        if binding is not None:
            with contextlib.suppress(ValueError, RuntimeError):  # set in another task's context
                binding.__exit__(None, None, None)
        await super().cleanup()  # type: ignore[no-untyped-call]

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, ErrorFrame):  # errors travel upstream
            self._error(frame)
            return
        if data.direction != FrameDirection.DOWNSTREAM:
            return
        if isinstance(frame, StartFrame):
            await self._start(data)
            return
        kind = type(frame)
        handler = _HANDLERS[kind] if kind in _HANDLERS else _handler_for(kind)
        if handler is not None:
            handler(self, frame, data.source)

    # -- frames -----------------------------------------------------------------------------

    async def _start(self, data: FramePushed) -> None:
        """The call starts: inside Pipecat's conversation span when Pipecat traces the pipeline."""
        if self.call.started:
            return
        conversation = await self._open_conversation(data)
        if conversation is None:
            self.call.start(framework="pipecat")
            return
        from opentelemetry import context as otel_context  # noqa: PLC0415 - tracing is on

        token = otel_context.attach(conversation)
        try:
            self.call.start(framework="pipecat")
        finally:
            otel_context.detach(token)

    async def _open_conversation(self, data: FramePushed) -> Any:
        """Pipecat's conversation span (as a Context), opened under this call; ``None`` untraced."""
        try:
            worker = data.source.pipeline_worker
            tracing = data.source.processor_setup.tracing_context
        except Exception:  # a source that was never set up: nothing to join
            return None
        tracer = worker.turn_trace_observer
        if tracer is None or tracing is None:
            return None
        from opentelemetry import trace  # noqa: PLC0415 - tracing is on

        from callwatch._otel import joining  # noqa: PLC0415

        joining.join(trace.get_tracer_provider())
        with self.call.bound():  # the span opened here is stamped with the call id
            await tracer.on_push_frame(data)  # Pipecat's own start of it, done once
        conversation = tracing.get_conversation_context()
        if conversation is not None:  # opened before this frame reached us: its spans join too
            joining.adopt(trace.get_current_span(conversation).get_span_context(), self.call_id)
        return conversation

    def _end(self, frame: Frame, source: Any) -> None:
        reason = getattr(frame, "reason", None)
        if isinstance(frame, CancelFrame):
            reason = f"cancelled: {reason}" if reason else "cancelled"
        self._finish(reason=None if reason is None else str(reason))

    def _finish(self, *, reason: str | None) -> None:
        self._cancel_conclude()
        self._conclude(interrupted=self._bot_speaking)
        if self._user_stopped_at is not None:  # the caller hung up waiting for an answer
            self._answer = (None, False)
            self._conclude(interrupted=False)
        self.call.end(reason=reason)

    def _user_started(self, frame: Frame, source: Any) -> None:
        if isinstance(frame, VADUserStartedSpeakingFrame):
            # The user went on speaking: the wait being measured was not the end of the turn.
            self._user_stopped_at = None
            self._vad_stop_seen = False
            self.call.budget.stop()
        if self._answer is not None and (
            not self._bot_speaking or isinstance(frame, UserStartedSpeakingFrame)
        ):
            self._conclude(interrupted=self._bot_speaking)

    def _user_stopped(self, frame: Frame, source: Any) -> None:
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            stopped_at = frame.timestamp - frame.stop_secs
            self._vad_stop_seen = True
        elif self._vad_stop_seen or self._user_stopped_at is not None:
            return  # the VAD already said when the user really stopped
        else:
            stopped_at = time.time()
        if self._answer is not None:
            self._conclude(interrupted=self._bot_speaking)
        if self._user_stopped_at is None:
            self._stages = {}
            self._transcribed = False
        self._user_stopped_at = stopped_at
        self.call.budget.start(self.call.turns + 1, self._waiting_on)

    def _bot_started(self, frame: Frame, source: Any) -> None:
        self._bot_speaking = True
        self._cancel_conclude()
        if self._user_stopped_at is not None and self._answer is None:
            self.call.budget.stop()
            self._answer = ((time.time() - self._user_stopped_at) * 1000.0, True)
            self._user_stopped_at = None
            self._vad_stop_seen = False

    def _bot_stopped(self, frame: Frame, source: Any) -> None:
        self._bot_speaking = False
        if self._answer is not None:
            self._cancel_conclude()
            self._conclude_timer = asyncio.get_running_loop().call_later(
                self._turn_end_timeout, self._conclude, False)

    def _transcription(self, frame: Frame, source: Any) -> None:
        self._transcribed = True

    def _metrics(self, frame: Frame, source: Any) -> None:
        assert isinstance(frame, MetricsFrame)
        for item in frame.data:
            self._metric(item, source)

    def _metric(self, item: MetricsData, source: Any) -> None:
        model = item.model
        if isinstance(item, LLMUsageMetricsData):
            usage = item.value
            self.call.add_usage("llm", model, prompt_tokens=usage.prompt_tokens,
                                completion_tokens=usage.completion_tokens)
            self._add("llm", item, prompt_tokens=usage.prompt_tokens,
                      completion_tokens=usage.completion_tokens)
        elif isinstance(item, TTSUsageMetricsData):
            self.call.add_usage("tts", model, characters=item.value)
            self._add("tts", item, characters=item.value)
        elif isinstance(item, STTUsageMetricsData):
            seconds = item.value.audio_seconds
            self.call.add_usage("stt", model, audio_seconds=seconds)
            self._add("stt", item, audio_seconds=seconds)
        elif isinstance(item, TTFBMetricsData) and item.value > 0:
            self._add(_stage_of(source, item.processor), item, ttfb_ms=item.value * 1000.0)
        elif isinstance(item, ProcessingMetricsData):
            self._add(_stage_of(source, item.processor), item, processing_ms=item.value * 1000.0)

    def _add(self, stage: str, item: MetricsData, **figures: float) -> None:
        """Add figures to the turn being measured: times first-seen, counts summed."""
        if self._user_stopped_at is None and self._answer is None:
            return  # outside a turn (a greeting): counted in the call's usage only
        entry = self._stages.setdefault(stage, {"service": service_label(item.processor)})
        if item.model:
            entry.setdefault("model", str(item.model))
        for name, value in figures.items():
            if name in _FIRST_ONLY:
                entry.setdefault(name, value)
            else:
                entry[name] = entry.get(name, 0) + value

    def _error(self, frame: ErrorFrame) -> None:
        processor = frame.processor
        fatal = bool(frame.fatal) or (
            processor is not None and getattr(processor, "is_usable", True) is False)
        exception = frame.exception
        category = getattr(frame.category, "value", frame.category)
        error_type = (type(exception).__name__ if exception is not None
                      else str(category or "PIPECAT_ERROR"))
        self.call.error(error_type, str(frame.error), fatal=fatal,
                        processor=service_label(processor.name) if processor else None,
                        category=None if category is None else str(category))

    # -- turns ------------------------------------------------------------------------------

    def _conclude(self, interrupted: bool) -> None:
        """Write the answered turn (if any) and start afresh."""
        self._cancel_conclude()
        answer, self._answer = self._answer, None
        if answer is None:
            return
        latency_ms, answered = answer
        stages, self._stages = self._stages, {}
        details = {} if answered else {"answered": False}
        self.call.turn(latency_ms, interrupted=interrupted, stages=stages, **details)

    def _cancel_conclude(self) -> None:
        timer, self._conclude_timer = self._conclude_timer, None
        if timer is not None:
            timer.cancel()

    def _waiting_on(self) -> str:
        """The service a late turn is still waiting for, for the budget alert."""
        if not self._transcribed and "stt" not in self._stages:
            return "stt"
        if "ttfb_ms" not in self._stages.get("llm", {}):
            return "llm"
        return "tts"


def _stage_of(source: Any, processor_name: str) -> str:
    """stt, llm or tts, from the reporting processor's base class, else its name."""
    for cls in type(source).__mro__:
        stage = _SERVICE_BASES.get(cls.__name__)
        if stage is not None:
            return stage
    name = processor_name.lower()
    for stage in ("stt", "llm", "tts"):
        if stage in name:
            return stage
    return "other"


def _handler_for(kind: type[Frame]) -> Any:
    """The handler of a frame class's nearest handled base (or None), found once per class."""
    handler = next((h for base, h in list(_HANDLERS.items()) if issubclass(kind, base)), None)
    _HANDLERS[kind] = handler
    return handler


# Frame class -> its handler; subclasses (and unhandled classes, as None) are added on first sight.
_HANDLERS: dict[type[Frame], Any] = {
    EndFrame: CallwatchObserver._end,
    CancelFrame: CallwatchObserver._end,
    VADUserStartedSpeakingFrame: CallwatchObserver._user_started,
    UserStartedSpeakingFrame: CallwatchObserver._user_started,
    VADUserStoppedSpeakingFrame: CallwatchObserver._user_stopped,
    UserStoppedSpeakingFrame: CallwatchObserver._user_stopped,
    BotStartedSpeakingFrame: CallwatchObserver._bot_started,
    BotStoppedSpeakingFrame: CallwatchObserver._bot_stopped,
    TranscriptionFrame: CallwatchObserver._transcription,
    MetricsFrame: CallwatchObserver._metrics,
}
