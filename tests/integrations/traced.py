"""An application that traces its calls with Pipecat's or LiveKit's own tracing.

    python -m tests.integrations.traced pipecat|livekit LOG_DIR [OTLP_ENDPOINT]

It sets its own global tracer provider (spans kept in memory, or sent over
OTLP/HTTP to OTLP_ENDPOINT), turns the framework's tracing on, runs two
concurrent calls (``<framework>-a`` and ``<framework>-b``; Pipecat's ``b``
gets its observer with ``add_observer``) recorded by callwatch's adapter, and
prints the finished spans as one JSON line.
Global providers are set once per process: each run is a fresh process.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from collections.abc import AsyncGenerator
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import callwatch

CALLS = ("a", "b")
CALL_TIMEOUT_SEC = 30.0  # a pipeline that died early leaves the caller waiting


async def pipecat_call(call_id: str, added_later: bool = False) -> None:
    """One Pipecat call, its tracing on: Pipecat's traced STT base, the demo's LLM and TTS.

    ``added_later``: the observer joins with ``worker.add_observer`` instead of ``observers=``.
    """
    from pipecat.frames.frames import (
        Frame,
        TranscriptionFrame,
        UserStoppedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection
    from pipecat.services.settings import STTSettings
    from pipecat.services.stt_service import STTService
    from pipecat.utils.tracing.service_decorators import traced_stt
    from pipecat.workers.runner import WorkerRunner

    from callwatch.cli.demo.pipecat_agent import (
        SimulatedLLMService,
        SimulatedTTSService,
        converse,
    )
    from callwatch.integrations.pipecat import CallwatchObserver
    from tests.integrations.test_pipecat import FixedServices

    services = FixedServices()

    class TracedSTT(STTService):  # type: ignore[misc]
        """An STT service as Pipecat's are: transcripts pushed after the caller stops."""

        def __init__(self) -> None:
            super().__init__(settings=STTSettings(model="fixed-stt", language=None))
            self.turn = 0

        @traced_stt
        async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
            yield None  # no audio offline: the transcript follows the VAD's stop

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, VADUserStoppedSpeakingFrame):
                self.turn += 1
                self.create_task(self._transcribe(self.turn))

        async def _transcribe(self, turn: int) -> None:
            transcript = await services.transcribe(turn)
            await self.push_frame(TranscriptionFrame(
                transcript.text, "caller", time.strftime("%Y-%m-%dT%H:%M:%S"), finalized=True))
            await self.push_frame(UserStoppedSpeakingFrame())

    tts = SimulatedTTSService(services)
    worker = PipelineWorker(
        Pipeline([TracedSTT(), SimulatedLLMService(services), tts]),
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
        observers=[] if added_later else [CallwatchObserver(call_id=call_id)],
        enable_rtvi=False, idle_timeout_secs=None,
        enable_tracing=True, conversation_id=f"conversation-{call_id}",
    )
    if added_later:  # after Pipecat's own observers: they see the StartFrame first
        worker.add_observer(CallwatchObserver(call_id=call_id))
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    caller = converse(worker, tts, 2, speech_sec=0.05, stop_secs=0.0, pause_sec=0.05)
    await asyncio.gather(runner.run(), asyncio.wait_for(caller, CALL_TIMEOUT_SEC))


async def livekit_call(call_id: str, added_later: bool = False) -> None:
    """One LiveKit session, offline (a fake LLM), as the LiveKit adapter's tests run it."""
    from tests.integrations.test_livekit import _talk

    await _talk(call_id, 2)


def span_of(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "call_id": span.attributes.get("call_id"),
        "conversation_id": span.attributes.get("conversation.id"),
    }


def main() -> None:
    framework, log_dir = sys.argv[1], sys.argv[2]
    endpoint = sys.argv[3] if len(sys.argv) > 3 else None
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    if endpoint is None:
        provider.add_span_processor(SimpleSpanProcessor(memory))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    trace.set_tracer_provider(provider)
    if framework == "livekit":
        from livekit.agents import telemetry

        telemetry.set_tracer_provider(provider)
    run = pipecat_call if framework == "pipecat" else livekit_call
    importlib.import_module(f"tests.integrations.test_{framework}")  # imports, then configure
    callwatch.configure(log_dir=log_dir, console=False)

    async def calls() -> None:
        await asyncio.gather(*(run(f"{framework}-{name}", name == "b") for name in CALLS))

    asyncio.run(calls())
    callwatch.shutdown()
    provider.shutdown()
    print(json.dumps([span_of(span) for span in memory.get_finished_spans()]))


if __name__ == "__main__":
    main()
