"""With Pipecat's or LiveKit's tracing on, each call is one trace: theirs and callwatch's spans.

Each framework runs real calls offline in a fresh process (``tests.integrations.traced``)
whose application sets its own SDK tracer provider, keeping the spans in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests._otel.support import need_module
from tests.helpers import read_records

ROOT = Path(__file__).resolve().parents[2]


def traced_spans(framework: str, log_dir: Path, *endpoint: str) -> list[dict[str, Any]]:
    """The finished spans of two concurrent calls ``<framework>-a`` and ``-b``."""
    need_module("opentelemetry.sdk")
    need_module({"pipecat": "pipecat.pipeline.worker", "livekit": "livekit.agents"}[framework])
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OTEL_", "CALLWATCH_", "LOG_"))}
    done = subprocess.run(
        [sys.executable, "-m", "tests.integrations.traced", framework, str(log_dir), *endpoint],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    spans: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return spans


def one_tree_per_call(spans: list[dict[str, Any]], framework: str, root: str) -> dict[str, Any]:
    """Each call's spans, checked to be one tree under the framework's root span, by call id."""
    trees: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        trees.setdefault(span["trace_id"], []).append(span)
    by_call: dict[str, Any] = {}
    for tree in trees.values():
        (call_id,) = {span["call_id"] for span in tree}  # every span has it; one call a trace
        (top,) = [span for span in tree if span["parent_id"] is None]
        assert top["name"] == root
        ids = {span["span_id"] for span in tree}
        assert all(span["parent_id"] in ids for span in tree if span is not top)  # no orphan
        (call,) = [span for span in tree if span["name"] == "call"]
        assert call["parent_id"] == top["span_id"]
        by_call[call_id] = tree
    assert sorted(by_call) == [f"{framework}-a", f"{framework}-b"]
    return by_call


def names(tree: list[dict[str, Any]]) -> set[str]:
    return {span["name"] for span in tree}


def records_in_their_trace(log_dir: Path, calls: dict[str, Any]) -> None:
    """The call's start (and any record logged inside a framework span) is in the call's trace."""
    for call_id, tree in calls.items():
        records = [r for r in read_records(log_dir, "app") if r.get("call_id") == call_id]
        assert records[0]["message"] == "Call started"
        assert records[0]["trace_id"] == tree[0]["trace_id"]
        assert {r["trace_id"] for r in records if "trace_id" in r} == {tree[0]["trace_id"]}


def test_pipecat_spans_and_the_call_span_share_one_trace_per_call(tmp_path: Path) -> None:
    calls = one_tree_per_call(traced_spans("pipecat", tmp_path), "pipecat", "conversation")
    records_in_their_trace(tmp_path, calls)
    for call_id, tree in calls.items():
        assert {"conversation", "turn", "stt", "call"} <= names(tree)
        (conversation,) = [span for span in tree if span["name"] == "conversation"]
        assert conversation["conversation_id"] == f"conversation-{call_id}"
        # Pipecat's two turns (with their STT spans) and callwatch's two turn spans.
        assert len([span for span in tree if span["name"] == "turn"]) == 4
        assert len([span for span in tree if span["name"] == "stt"]) == 2


def test_livekit_spans_and_the_call_span_share_one_trace_per_call(tmp_path: Path) -> None:
    calls = one_tree_per_call(traced_spans("livekit", tmp_path), "livekit", "agent_session")
    records_in_their_trace(tmp_path, calls)
    for tree in calls.values():
        assert {"agent_session", "session_start", "agent_turn", "llm_node", "call"} <= names(tree)
        assert len([span for span in tree if span["name"] == "agent_turn"]) == 2


async def test_pipecat_tracing_without_a_provider_records_the_call_as_ever(log_dir: Path) -> None:
    need_module("pipecat.pipeline.worker")
    from opentelemetry import trace

    from tests.integrations.traced import pipecat_call

    assert not hasattr(trace.get_tracer_provider(), "add_span_processor")  # the API's stand-in
    await pipecat_call("pc-untraced")
    records = [r for r in read_records(log_dir, "app") if r.get("call_id") == "pc-untraced"]
    assert [r["message"] for r in records if "turn" not in r["message"]] == [
        "Call started", "Call ended", "Call completed"]
    assert records[-1]["extra"]["success"] is True
