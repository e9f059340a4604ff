"""instrument_session on a real LiveKit AgentSession, offline: a fake llm.LLM, no room, no keys."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import read_records
from tests.integrations.conftest import need_package

need_package("livekit.agents", "livekit")

from livekit.agents import Agent, AgentSession, APIStatusError, llm  # noqa: E402
from livekit.agents.llm import ChatChunk, ChatMessage, ChoiceDelta, CompletionUsage  # noqa: E402
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions  # noqa: E402
from livekit.agents.voice.events import (  # noqa: E402
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    UserStateChangedEvent,
)

import callwatch  # noqa: E402
from callwatch._alerts.budget import TITLE  # noqa: E402
from callwatch.alerting import alert_manager  # noqa: E402
from callwatch.integrations.livekit import instrument_session  # noqa: E402
from callwatch.monitoring import get_metrics  # noqa: E402

FIRST_TOKEN_SEC = 0.06
TOLERANCE_MS = 500.0


class _Stream(llm.LLMStream):
    async def _run(self) -> None:
        fake = self._llm
        assert isinstance(fake, FakeLLM)
        fake.requests += 1
        await asyncio.sleep(FIRST_TOKEN_SEC)
        if fake.requests == fake.fail_on:
            raise APIStatusError("model overloaded", status_code=400, retryable=False)
        self._event_ch.send_nowait(ChatChunk(
            id=str(fake.requests), delta=ChoiceDelta(role="assistant", content="Sure thing.")))
        self._event_ch.send_nowait(ChatChunk(id=str(fake.requests), usage=CompletionUsage(
            prompt_tokens=40 + fake.requests, completion_tokens=3,
            total_tokens=43 + fake.requests)))


class FakeLLM(llm.LLM):
    """Answers every request after FIRST_TOKEN_SEC, reporting its token usage."""

    def __init__(self, fail_on: int | None = None) -> None:
        super().__init__()
        self.requests = 0
        self.fail_on = fail_on

    @property
    def model(self) -> str:
        return "fake-llm-1"

    @property
    def provider(self) -> str:
        return "fake"

    def chat(self, *, chat_ctx: Any, tools: Any = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             **_: Any) -> llm.LLMStream:
        return _Stream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


async def _talk(call_id: str, turns: int, fake: FakeLLM | None = None, **fields: Any) -> None:
    session: AgentSession[None] = AgentSession(llm=fake or FakeLLM())
    instrument_session(session, call_id, **fields)
    await session.start(Agent(instructions="Answer briefly."))
    try:
        for n in range(turns):
            await session.run(user_input=f"question {n + 1}")
    finally:
        await session.aclose()


def _turns(log_dir: Path, call_id: str) -> list[dict[str, Any]]:
    return [r for r in read_records(log_dir, "performance")
            if r["message"] == "turn" and r["call_id"] == call_id]


def _ended(log_dir: Path, call_id: str) -> dict[str, Any]:
    (record,) = [r for r in read_records(log_dir, "app")
                 if r["message"] == "Call ended" and r["call_id"] == call_id]
    return dict(record["extra"])


async def test_a_session_records_turns_usage_and_its_close(log_dir: Path) -> None:
    await _talk("lk-1", 2, caller="+15550199")
    turns = _turns(log_dir, "lk-1")
    assert [t["extra"]["turn_id"] for t in turns] == ["lk-1:1", "lk-1:2"]
    assert [t["extra"]["interrupted"] for t in turns] == [False, False]
    for n, turn in enumerate(turns, start=1):
        llm_stage = turn["extra"]["stages"]["llm"]
        assert llm_stage["prompt_tokens"] == 40 + n and llm_stage["completion_tokens"] == 3
        assert llm_stage["model"] == "fake-llm-1"
        ttft = FIRST_TOKEN_SEC * 1000
        assert ttft - 1 <= llm_stage["ttfb_ms"] <= ttft + TOLERANCE_MS
        # A text turn has no audio to time: no latency, so no response time either.
        assert turn["extra"]["latency_ms"] is None
        assert turn["extra"]["caller"] == "+15550199"
    ended = _ended(log_dir, "lk-1")
    assert ended["success"] is True and ended["reason"] == "user_initiated"
    assert ended["usage"]["llm_prompt_tokens"] == 41 + 42
    assert ended["usage"]["llm_completion_tokens"] == 6
    metrics = get_metrics()
    assert metrics["usage"]["llm_prompt_tokens"] == 83
    assert metrics["usage"]["llm_completion_tokens"] == 6
    assert metrics["calls"]["successful_calls"] == 1
    assert metrics["performance"]["llm_ttfb"]["count"] == 2


async def test_an_unrecoverable_error_fails_the_call(log_dir: Path) -> None:
    with pytest.raises(APIStatusError, match="overloaded"):  # the run reports it too
        await _talk("lk-err", 2, FakeLLM(fail_on=2))
    errors = get_metrics()["errors"]
    assert errors["errors_by_type"].get("APIStatusError") == 1
    assert errors["recent_errors"][0]["call_id"] == "lk-err"
    ended = _ended(log_dir, "lk-err")
    assert ended["success"] is False
    assert get_metrics()["calls"]["failed_calls"] == 1


async def test_a_spoken_turn_takes_its_latency_from_e2e_latency(log_dir: Path) -> None:
    session: AgentSession[None] = AgentSession(llm=FakeLLM())
    instrument_session(session, "lk-voice")
    user = ChatMessage(role="user", content=["hello"],
                       metrics={"transcription_delay": 0.12, "end_of_turn_delay": 0.3})
    answer = ChatMessage(role="assistant", content=["hi"], interrupted=True,
                         metrics={"e2e_latency": 0.845, "llm_node_ttft": 0.31,
                                  "tts_node_ttfb": 0.09})
    for item in (user, answer):
        session.emit("conversation_item_added", ConversationItemAddedEvent(item=item))
    (turn,) = _turns(log_dir, "lk-voice")
    assert turn["extra"]["latency_ms"] == 845.0 and turn["extra"]["interrupted"] is True
    assert turn["extra"]["stages"] == {
        "stt": {"ttfb_ms": 120.0, "end_of_turn_delay_ms": 300.0},
        "llm": {"ttfb_ms": 310.0},
        "tts": {"ttfb_ms": 90.0},
    }
    assert get_metrics()["calls"]["average_response_time_ms"] == 845.0


async def test_concurrent_sessions_never_mix_their_ids(log_dir: Path) -> None:
    await asyncio.gather(*(_talk(f"lk-par-{n}", 2, caller=str(n)) for n in range(3)))
    for n in range(3):
        turns = _turns(log_dir, f"lk-par-{n}")
        assert [t["extra"]["turn"] for t in turns] == [1, 2]
        assert {t["extra"]["caller"] for t in turns} == {str(n)}
        assert _ended(log_dir, f"lk-par-{n}")["usage"]["llm_prompt_tokens"] == 41 + 42


async def test_the_latency_budget_follows_the_user_and_agent_states(log_dir: Path) -> None:
    callwatch.configure(log_dir=log_dir, console=False, environment="production",
                        turn_budget_ms=50.0)
    late: AgentSession[None] = AgentSession(llm=FakeLLM())
    quick: AgentSession[None] = AgentSession(llm=FakeLLM())
    instrument_session(late, "lk-late")
    instrument_session(quick, "lk-quick")
    for session in (late, quick):
        session.emit("user_state_changed",
                     UserStateChangedEvent(old_state="speaking", new_state="listening"))
        session.emit("agent_state_changed",
                     AgentStateChangedEvent(old_state="listening", new_state="thinking"))
    quick.emit("agent_state_changed",
               AgentStateChangedEvent(old_state="thinking", new_state="speaking"))
    await asyncio.sleep(0.2)
    (alert,) = [a for a in alert_manager.active_alerts() if a["title"] == TITLE]
    assert alert["labels"]["call_id"] == "lk-late" and alert["labels"]["service"] == "llm"
