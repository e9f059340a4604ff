"""Framework spans carry their call's id: stamped as they start, inherited from their parent."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests._otel.support import need_module

need_module("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from callwatch._otel import joining  # noqa: E402
from callwatch.context import bind_call  # noqa: E402


def _traced() -> tuple[Any, InMemorySpanExporter]:
    """A framework's tracer on the application's SDK provider, joined by callwatch."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    assert joining.join(provider) and joining.join(provider)  # once, however often asked
    return provider.get_tracer("framework"), memory


def _call_ids(memory: InMemorySpanExporter) -> dict[str, Any]:
    return {span.name: span.attributes.get("call_id") for span in memory.get_finished_spans()}


def test_a_span_started_in_a_call_passes_its_id_to_every_span_below_it() -> None:
    tracer, memory = _traced()
    with bind_call("join-1"):
        conversation = tracer.start_span("conversation")
    context = trace.set_span_in_context(conversation)

    def framework_thread() -> None:  # the framework's own thread, where no call is bound
        with tracer.start_as_current_span("turn", context=context):
            tracer.start_span("stt").end()

    worker = threading.Thread(target=framework_thread)
    worker.start()
    worker.join()
    tracer.start_span("unrelated").end()
    with bind_call("join-1"):
        tracer.start_span("own", attributes={"call_id": "set-by-its-creator"}).end()
    conversation.end()
    assert _call_ids(memory) == {"conversation": "join-1", "turn": "join-1", "stt": "join-1",
                                 "unrelated": None, "own": "set-by-its-creator"}


def test_an_adopted_span_and_the_spans_started_below_it_carry_the_call() -> None:
    tracer, memory = _traced()
    session = tracer.start_span("session")  # opened before the call was known
    joining.adopt(session.get_span_context(), "join-2")
    tracer.start_span("agent_turn", context=trace.set_span_in_context(session)).end()
    session.end()
    assert _call_ids(memory) == {"session": "join-2", "agent_turn": "join-2"}


async def test_concurrent_calls_never_stamp_each_others_spans() -> None:
    tracer, memory = _traced()

    async def call(call_id: str) -> None:
        with bind_call(call_id):
            root = tracer.start_span(f"conversation {call_id}")
        context = trace.set_span_in_context(root)
        for turn in range(3):
            await asyncio.sleep(0)
            tracer.start_span(f"turn {call_id} {turn}", context=context).end()
        root.end()

    await asyncio.gather(call("join-a"), call("join-b"))
    stamped = _call_ids(memory)
    assert len(stamped) == 8
    for name, call_id in stamped.items():
        assert name.split()[1] == call_id


def test_the_apis_stand_in_provider_has_nothing_to_join() -> None:
    assert joining.join(trace.NoOpTracerProvider()) is False
    assert joining.join(None) is False
