"""The demo's voice agent as a real Pipecat pipeline: simulated STT → LLM → TTS processors.

The processors report what real Pipecat services report, through Pipecat's
own metrics API (time to first byte, processing time, tokens, characters,
audio seconds), and push the frames a transport would (the bot started and
stopped speaking). The call is instrumented only by ``CallwatchObserver``.
A :class:`Services` object decides how long each stage takes and what it
says, so the demo can use its lognormal latency model and a test fixed values.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import LLMTokenUsage, MetricsData, STTUsage
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker, ProcessorUnusablePolicy
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from callwatch.cli.demo.agent import CallResult, LatencyModel

__all__ = [
    "ModelServices",
    "Reply",
    "Services",
    "SimulatedLLMService",
    "SimulatedSTTService",
    "SimulatedTTSService",
    "Transcript",
    "build_worker",
    "converse",
    "handle_pipecat_call",
    "run_call",
]


@dataclass(frozen=True)
class Transcript:
    text: str
    audio_seconds: float


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int


class Services(Protocol):
    """How the simulated services behave: each coroutine takes as long as its stage does."""

    async def transcribe(self, turn: int) -> Transcript: ...

    async def respond(self, text: str) -> Reply: ...

    async def synthesize(self, text: str) -> None: ...

    def speech_sec(self, text: str) -> float: ...


class _Simulated(FrameProcessor):
    """A processor that reports Pipecat metrics under its model's name."""

    def __init__(self, services: Services, model: str) -> None:
        super().__init__()
        self.services = services
        self.set_core_metrics_data(MetricsData(processor=self.name, model=model))

    def can_generate_metrics(self) -> bool:
        return True

    async def _fail(self, exc: Exception) -> None:
        """A failed request leaves the service unusable: the worker's policy ends the call."""
        await self.push_error(str(exc), exception=exc, force_treat_as_permanent=True)


class SimulatedSTTService(_Simulated):
    """Turns the end of the caller's speech into a transcript, in a task of its own."""

    def __init__(self, services: Services, model: str = "simulated-stt") -> None:
        super().__init__(services, model)
        self.turn = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            self.turn += 1
            self.create_task(self._transcribe(self.turn))

    async def _transcribe(self, turn: int) -> None:
        await self.start_ttfb_metrics()
        try:
            transcript = await self.services.transcribe(turn)
        except Exception as exc:
            await self._fail(exc)
            return
        await self.stop_ttfb_metrics()
        await self.push_frame(
            TranscriptionFrame(transcript.text, "caller", time.strftime("%Y-%m-%dT%H:%M:%S")))
        await self.push_frame(UserStoppedSpeakingFrame())
        await self.start_stt_usage_metrics(STTUsage(audio_seconds=transcript.audio_seconds))


class SimulatedLLMService(_Simulated):
    """Answers each transcript with one streamed reply and its token usage."""

    def __init__(self, services: Services, model: str = "simulated-llm") -> None:
        super().__init__(services, model)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, TranscriptionFrame):
            await self.push_frame(frame, direction)
            return
        await self.start_processing_metrics()
        await self.start_ttfb_metrics()
        try:
            reply = await self.services.respond(frame.text)
        except Exception as exc:
            await self._fail(exc)
            return
        await self.stop_ttfb_metrics()
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(reply.text))
        await self.push_frame(LLMFullResponseEndFrame())
        await self.stop_processing_metrics()
        await self.start_llm_usage_metrics(LLMTokenUsage(
            prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
            total_tokens=reply.prompt_tokens + reply.completion_tokens))


class SimulatedTTSService(_Simulated):
    """Speaks each reply: first audio after synthesis, then plays it (or is cut off)."""

    def __init__(self, services: Services, model: str = "simulated-tts") -> None:
        super().__init__(services, model)
        self.speaking = asyncio.Event()
        self.finished = asyncio.Event()
        self._cut_off = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStartedSpeakingFrame) and self.speaking.is_set():
            self._cut_off.set()  # a system frame: it arrives while the reply plays
        if not isinstance(frame, LLMTextFrame):
            await self.push_frame(frame, direction)
            return
        await self.start_ttfb_metrics()
        try:
            await self.services.synthesize(frame.text)
        except Exception as exc:
            await self._fail(exc)
            return
        await self.stop_ttfb_metrics()
        await self.start_tts_usage_metrics(frame.text)
        await self._play(frame.text)

    async def _play(self, text: str) -> None:
        self.finished.clear()
        self._cut_off.clear()
        self.speaking.set()
        await self.push_frame(BotStartedSpeakingFrame())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._cut_off.wait(), self.services.speech_sec(text))
        self.speaking.clear()
        await self.push_frame(BotStoppedSpeakingFrame())
        self.finished.set()


def build_worker(
    services: Services, observers: Iterable[BaseObserver]
) -> tuple[PipelineWorker, SimulatedTTSService]:
    """A worker running STT → LLM → TTS with metrics and usage reporting on."""
    tts = SimulatedTTSService(services)
    pipeline = Pipeline([SimulatedSTTService(services), SimulatedLLMService(services), tts])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
        observers=list(observers),
        enable_rtvi=False,
        idle_timeout_secs=None,
        processor_unusable_policy=ProcessorUnusablePolicy.CANCEL,
    )
    return worker, tts


async def converse(
    worker: PipelineWorker,
    tts: SimulatedTTSService,
    turns: int,
    *,
    speech_sec: float = 0.3,
    stop_secs: float = 0.2,
    pause_sec: float = 0.2,
    cut_in: Iterable[int] = (),
    cut_in_after_sec: float = 0.1,
) -> None:
    """The caller: speaks ``turns`` times, as a VAD reports it, then hangs up (EndFrame).

    On a turn in ``cut_in`` the caller starts speaking again while the bot answers.
    """
    interrupting = set(cut_in)
    for turn in range(1, turns + 1):
        await worker.queue_frames([VADUserStartedSpeakingFrame(), UserStartedSpeakingFrame()])
        await asyncio.sleep(speech_sec + stop_secs)  # speech, then the silence the VAD waits for
        await worker.queue_frame(VADUserStoppedSpeakingFrame(stop_secs=stop_secs))
        await tts.speaking.wait()
        if turn in interrupting and turn < turns:
            await asyncio.sleep(cut_in_after_sec)
            continue
        await tts.finished.wait()
        await asyncio.sleep(pause_sec)
    await worker.queue_frame(EndFrame())


async def run_call(
    services: Services, observers: Iterable[BaseObserver], turns: int, **caller: Any
) -> None:
    """One whole call: the pipeline, run by Pipecat's runner, and the caller talking to it."""
    worker, tts = build_worker(services, observers)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    talking = asyncio.create_task(converse(worker, tts, turns, **caller))
    try:
        await runner.run()
    finally:
        talking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await talking


class ModelServices:
    """The demo's latency model (lognormal stages, rare failures, the slow episode) as services."""

    def __init__(self, model: LatencyModel) -> None:
        self.model = model

    async def transcribe(self, turn: int) -> Transcript:
        text = await self.model.transcribe(turn)
        return Transcript(text, audio_seconds=round(self.model.sample(self.model.pause_ms, 0.4), 3))

    async def respond(self, text: str) -> Reply:
        reply = await self.model.generate(text)
        # Roughly four characters a token: the instructions and history, then the reply.
        return Reply(reply, prompt_tokens=_SYSTEM_PROMPT_TOKENS + len(text) // 4,
                     completion_tokens=max(1, len(reply) // 4))

    async def synthesize(self, text: str) -> None:
        await self.model.synthesize(text)

    def speech_sec(self, text: str) -> float:
        return _SPEECH_SEC_PER_WORD * len(text.split())


_SYSTEM_PROMPT_TOKENS = 180
_SPEECH_SEC_PER_WORD = 0.1


async def handle_pipecat_call(
    call_id: str, caller: str, turns: int, model: LatencyModel
) -> CallResult:
    """One demo call as a Pipecat pipeline, recorded only by ``CallwatchObserver``."""
    from callwatch.integrations.pipecat import CallwatchObserver  # noqa: PLC0415

    observer = CallwatchObserver(call_id=call_id, caller=caller)
    started = time.monotonic()
    await run_call(ModelServices(model), [observer], turns,
                   speech_sec=model.sample(model.pause_ms, 0.4), pause_sec=0.3)
    recorder = observer.call
    return CallResult(call_id, not recorder.failed, time.monotonic() - started, recorder.turns,
                      None if not recorder.failed else "PIPELINE_ERROR")
