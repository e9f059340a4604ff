"""A traced Pipecat call reaches a real rotel collector as one tree, decoded by our receiver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests._otel.servers import OtlpReceiver, attributes_of, rotel, rotel_to_otlp, wait_for
from tests.integrations.test_framework_spans import one_tree_per_call, traced_spans

pytestmark = pytest.mark.integration


def span_of(span: Any) -> dict[str, Any]:
    """A decoded OTLP span in the shape the framework span tests read."""
    attributes = attributes_of(span.attributes)
    return {"name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
            "parent_id": span.parent_span_id.hex() or None,
            "call_id": attributes.get("call_id"),
            "conversation_id": attributes.get("conversation.id")}


def test_pipecat_and_callwatch_spans_arrive_as_one_tree_per_call(tmp_path: Path) -> None:
    receiver = OtlpReceiver()
    try:
        with rotel(rotel_to_otlp(receiver)) as endpoint:
            traced_spans("pipecat", tmp_path, endpoint)  # the application exports over OTLP

            def arrived(name: str) -> int:
                return sum(span.name == name for span in receiver.spans())

            # The calls' and the conversations' spans end last.
            wait_for(lambda: arrived("call") == 2 and arrived("conversation") == 2)
    finally:
        receiver.close()
    calls = one_tree_per_call([span_of(span) for span in receiver.spans()], "pipecat",
                              "conversation")
    for tree in calls.values():
        assert {"conversation", "turn", "stt", "call"} <= {span["name"] for span in tree}
